"""Checks on what a client sends, before anything is reserved or forwarded."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from daylite.errors import InvalidHeaderError, InvalidRequestError

_ATTRIBUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/\-]{0,127}")
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}


def attribution_id(headers: Mapping[str, str], name: str) -> str | None:
    """A customer or feature id from ``name``: 1-128 safe characters, or absent."""
    value = headers.get(name)
    if value is None:
        return None
    if _ATTRIBUTION_ID.fullmatch(value):
        return value
    shown = value if len(value) <= 40 else value[:40] + "..."
    raise InvalidHeaderError(
        f"Header {name} has an invalid value {shown!r} ({len(value)} characters): "
        "use 1 to 128 characters from letters, digits and . _ : @ + = / -, "
        "starting with a letter or digit.",
        param=name,
    )


def parse_payload(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise InvalidRequestError(
            "The request body is empty; send a JSON object such as "
            '{"model": "...", "messages": [...]}.'
        )
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = "is not valid UTF-8" if "utf-8" in str(exc).lower() else "is not JSON"
        raise InvalidRequestError(
            f"The request body {reason} ({exc.msg} at position {exc.pos})."
        ) from None
    if not isinstance(payload, dict):
        kind = type(payload).__name__.replace("str", "string").replace("list", "array")
        raise InvalidRequestError(
            f"The request body must be a JSON object, not a JSON {kind}."
        )
    return payload


def _whole(payload: dict[str, Any], key: str, low: int, high: int) -> None:
    value = payload.get(key)
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (low <= value <= high)
    ):
        raise InvalidRequestError(
            f"'{key}' must be a whole number from {low} to {high}; got {value!r}.",
            param=key,
        )


def _messages(payload: dict[str, Any]) -> None:
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        verb = "is required" if messages is None else "must be"
        raise InvalidRequestError(
            f"'messages' {verb}: a non-empty array of {{role, content}} objects.",
            param="messages",
        )
    for position, message in enumerate(messages):
        where = f"messages[{position}]"
        if not isinstance(message, dict):
            raise InvalidRequestError(f"{where} must be an object.", param=where)
        role = message.get("role")
        if not isinstance(role, str) or role not in _ROLES:
            raise InvalidRequestError(
                f"{where}.role is {role!r}; expected one of {sorted(_ROLES)}.",
                param=f"{where}.role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidRequestError(
                f"{where}.content must be a string or an array of parts.",
                param=f"{where}.content",
            )


def _present(payload: dict[str, Any], key: str) -> None:
    value = payload.get(key)
    if not isinstance(value, (str, list)) or (isinstance(value, list) and not value):
        raise InvalidRequestError(
            f"'{key}' is required: a string or a non-empty array.", param=key
        )


def check_payload(endpoint: str, payload: dict[str, Any]) -> None:
    """Raise InvalidRequestError naming the first field that is wrong."""
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be true or false.", param="stream")
    _whole(payload, "max_tokens", 0, 10**9)
    _whole(payload, "max_completion_tokens", 0, 10**9)
    _whole(payload, "n", 1, 128)
    options = payload.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequestError(
            "'stream_options' must be an object.", param="stream_options"
        )
    if endpoint == "chat":
        _messages(payload)
    elif endpoint == "completions":
        _present(payload, "prompt")
    else:
        _present(payload, "input")
        if stream:
            raise InvalidRequestError("Embeddings cannot be streamed.", param="stream")
