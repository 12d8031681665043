"""Gateway settings from the operator's file and ``DAYLITE_*`` environment.

The environment wins over the file so that one image can run in many places.
Every value is checked at start-up; a bad one stops the process with a message
that names the setting, the value and what would be accepted.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """The operator's configuration cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path("data")
    config_path: Path | None = None
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "daylite"
    redis_timeout: float = 2.0
    reconcile_interval: float = 60.0
    revocation_poll_interval: float = 1.0
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 8 * 1024 * 1024
    connect_timeout: float = 5.0
    upstream_timeout: float = 120.0
    stream_idle_timeout: float = 60.0
    body_timeout: float = 30.0
    reservation_ttl: float = 900.0
    webhook_poll_interval: float = 1.0
    webhook_retry_base: float = 2.0
    webhook_timeout: float = 10.0
    image_token_allowance: int = 2_000
    message_token_allowance: int = 8
    log_level: str = "info"
    log_format: str = "json"
    simulate_unrouted: bool = True

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'daylite.db').resolve()}"


_FIELDS = {field.name: field for field in dataclasses.fields(Settings)}


def _convert(name: str, raw: object) -> Any:
    kind = str(_FIELDS[name].type)
    text = str(raw).strip()
    try:
        if kind == "int":
            value: Any = int(text)
            if value < 0:
                raise ValueError
            return value
        if kind == "float":
            value = float(text)
            if not value > 0:
                raise ValueError
            return value
        if kind == "bool":
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError
    except ValueError:
        expected = {"int": "a whole number >= 0", "float": "a number > 0"}
        raise ConfigError(
            f"setting {name} = {raw!r} is not valid: expected "
            f"{expected.get(kind, 'true or false')}"
        ) from None
    if kind in ("Path", "Path | None"):
        return Path(text)
    if kind == "str | None":
        return text or None
    return text


def _check(settings: Settings) -> Settings:
    if settings.log_level.lower() not in {"debug", "info", "warning", "error"}:
        raise ConfigError(
            f"setting log_level = {settings.log_level!r} is not valid: expected "
            "debug, info, warning or error"
        )
    if settings.log_format not in {"json", "text"}:
        raise ConfigError(
            f"setting log_format = {settings.log_format!r} is not valid: "
            "expected json or text"
        )
    if not 0 < settings.port < 65536:
        raise ConfigError(f"setting port = {settings.port} is not a TCP port")
    return settings


def load_settings(
    file_values: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from the file's ``[gateway]`` table, then the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, raw in (file_values or {}).items():
        if name not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ConfigError(f"unknown setting {name!r} in [gateway]; known: {known}")
        values[name] = _convert(name, raw)
    for name in _FIELDS:
        raw = environ.get(f"DAYLITE_{name.upper()}")
        if raw is not None:
            values[name] = _convert(name, raw)
    return _check(Settings(**values))


def locate_config(environ: Mapping[str, str] | None = None) -> Path | None:
    """The operator's config file, if one is named or sits in the data dir."""
    environ = os.environ if environ is None else environ
    named = environ.get("DAYLITE_CONFIG_PATH") or environ.get("DAYLITE_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise ConfigError(f"DAYLITE_CONFIG names {named!r}, which is not a file")
        return path
    default = Path(environ.get("DAYLITE_DATA_DIR", "data")) / "daylite.toml"
    return default if default.is_file() else None
