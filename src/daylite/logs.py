"""Structured logging: JSON lines, a request-id context, and secret redaction.

Loggers are named by audience: ``daylite.access`` carries one line per request,
everything else lives under ``daylite.*``. The request id, account and customer
ride in a context variable so every line written while serving a request names
them without being passed around.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
import time
from typing import Any

import orjson

request_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "daylite_request_context", default=None
)

_SECRET = re.compile(
    r"(dl-[A-Za-z0-9_\-]{8})[A-Za-z0-9_\-]+"
    r"|((?:bearer|authorization)[\"':= ]+)[^\s\"',]+"
    r"|(sk-[A-Za-z0-9_\-]{2})[A-Za-z0-9_\-]+"
    r"|((?:sk|rk)_(?:test|live)_)[A-Za-z0-9]+"
    r"|(whsec_)[A-Za-z0-9_\-]+",
    re.IGNORECASE,
)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


# Most lines hold no secret; a cheap scan for the markers spares them the
# full pattern, which showed up in profiles of the access log.
_HINT = re.compile(r"dl-|sk[-_]|rk_|whsec_|bearer|authorization", re.IGNORECASE)


def redact(text: str) -> str:
    """Hide secrets: keep a key's public prefix, drop the rest."""
    if _HINT.search(text) is None:
        return text

    def keep_prefix(match: re.Match[str]) -> str:
        prefix = next(group for group in match.groups() if group is not None)
        return prefix + "[REDACTED]"

    return _SECRET.sub(keep_prefix, text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        context = request_context.get()
        if context:
            entry.update(context)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        line = orjson.dumps(entry, default=str).decode()
        return redact(line)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        context = request_context.get() or {}
        extras = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        }
        fields = " ".join(f"{k}={v}" for k, v in {**context, **extras}.items())
        line = f"{record.levelname.lower():7} {record.name}: {record.getMessage()}"
        if fields:
            line = f"{line} {fields}"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return redact(line)


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("daylite")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
    # Our own access line replaces uvicorn's, which knows no request id.
    logging.getLogger("uvicorn.access").disabled = True
