"""The model catalog: prices, context lengths and the backends behind each model.

Loaded once at start-up from the operator's TOML file (or the bundled default)
and frozen. Prices are kept as integer micro-dollars per million tokens, so a
token count times a price is an exact number of pico-dollars.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from daylite.money import MoneyFormatError, usd_to_pico
from daylite.settings import ConfigError

log = logging.getLogger(__name__)

SIMULATED = "simulated"
_PRICE_FLOOR_MICRO = 1_000  # 0.001 USD per 1M: below it, a per-1K or per-token slip
_PRICE_CEILING_MICRO = 1_000 * 10**6  # 1,000 USD per 1M


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens, as integer micro-dollars."""

    input: int
    output: int
    cached_input: int
    batch_input: int | None
    batch_output: int | None


@dataclass(frozen=True, slots=True)
class BackendSpec:
    name: str
    base_url: str
    api_key_env: str | None

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


@dataclass(frozen=True, slots=True)
class Route:
    backend: BackendSpec
    upstream_model: str
    priority: int


@dataclass(frozen=True, slots=True)
class Model:
    id: str
    context_length: int
    max_output_tokens: int
    price: Price
    routes: tuple[Route, ...]

    @property
    def simulated(self) -> bool:
        return self.routes[0].backend.name == SIMULATED


@dataclass(frozen=True, slots=True)
class Catalog:
    models: Mapping[str, Model]
    source: str

    def get(self, model_id: str) -> Model | None:
        return self.models.get(model_id)


SIMULATED_BACKEND = BackendSpec(SIMULATED, "builtin:simulated", None)


def read_config_file(path: Path | None) -> tuple[dict[str, Any], str]:
    """Parse the operator's file, or the bundled default when there is none."""
    if path is None:
        text = resources.files("daylite").joinpath("default.toml").read_text()
        source = "bundled default"
    else:
        text = path.read_text(encoding="utf-8")
        source = str(path)
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None


def default_config_text() -> str:
    return resources.files("daylite").joinpath("default.toml").read_text()


def _price(model_id: str, table: Mapping[str, Any], key: str) -> int | None:
    if key not in table:
        return None
    try:
        micro = usd_to_pico(table[key], max_decimals=6) // 10**6
    except MoneyFormatError as exc:
        raise ConfigError(
            f"model {model_id!r}: price {key} = {table[key]!r} is not valid ({exc}); "
            'write USD per 1M tokens, e.g. "0.30"'
        ) from None
    if micro < 0:
        raise ConfigError(f"model {model_id!r}: price {key} is negative")
    if micro and not _PRICE_FLOOR_MICRO <= micro <= _PRICE_CEILING_MICRO:
        raise ConfigError(
            f"model {model_id!r}: price {key} = {table[key]!r} USD per 1M tokens is "
            "outside 0.001..1000; prices are per 1M tokens, not per 1K or per token"
        )
    return micro


def _required_price(model_id: str, table: Mapping[str, Any], key: str) -> int:
    value = _price(model_id, table, key)
    if value is None:
        raise ConfigError(
            f"model {model_id!r} has no {key} price; every model needs input and "
            "output prices (USD per 1M tokens) so that nothing is metered as free"
        )
    return value


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _int(model_id: str, table: Mapping[str, Any], key: str, default: int | None) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"model {model_id!r}: {key} must be a whole number > 0")
    return value


def _backends(raw: Mapping[str, Any]) -> dict[str, BackendSpec]:
    specs: dict[str, BackendSpec] = {}
    for name, table in raw.items():
        if not isinstance(table, Mapping) or not isinstance(table.get("base_url"), str):
            raise ConfigError(f'backend {name!r} needs base_url = "http://host/v1"')
        url = table["base_url"].rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"backend {name!r}: base_url {url!r} is not http(s)")
        key_env = table.get("api_key_env")
        if key_env is not None and not isinstance(key_env, str):
            raise ConfigError(f"backend {name!r}: api_key_env must be a variable name")
        specs[name] = BackendSpec(name, url, key_env)
    return specs


def _routes(
    model_id: str, raw: Any, backends: Mapping[str, BackendSpec]
) -> tuple[Route, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"model {model_id!r}: routes must be a list of tables")
    routes = []
    for position, entry in enumerate(raw):
        name = entry.get("backend") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or name not in backends:
            raise ConfigError(
                f"model {model_id!r}: route {position} names backend {name!r}, "
                f"which is not defined; defined: {sorted(backends)}"
            )
        upstream = entry.get("model", model_id)
        priority = entry.get("priority", position + 1)
        routes.append(Route(backends[name], str(upstream), int(priority)))
    return tuple(sorted(routes, key=lambda route: route.priority))


def build_catalog(
    config: Mapping[str, Any], source: str, *, simulate_unrouted: bool = True
) -> Catalog:
    """Validate the ``[models]`` and ``[backends]`` tables into a catalog."""
    models_raw = config.get("models")
    if not isinstance(models_raw, Mapping) or not models_raw:
        raise ConfigError(f'{source} defines no [models."NAME"] tables')
    backends = _backends(config.get("backends", {}))
    models: dict[str, Model] = {}
    for model_id, table in models_raw.items():
        context = _int(model_id, table, "context_length", None)
        input_price = _required_price(model_id, table, "input")
        price = Price(
            input=input_price,
            output=_required_price(model_id, table, "output"),
            cached_input=_or(_price(model_id, table, "cached_input"), input_price),
            batch_input=_price(model_id, table, "batch_input"),
            batch_output=_price(model_id, table, "batch_output"),
        )
        routes = _routes(model_id, table.get("routes"), backends)
        if not routes:
            if not simulate_unrouted:
                raise ConfigError(f"model {model_id!r} has no routes to a backend")
            routes = (Route(SIMULATED_BACKEND, model_id, 1),)
        max_out = _int(model_id, table, "max_output_tokens", context)
        models[model_id] = Model(model_id, context, max_out, price, routes)
    return Catalog(models, source)
