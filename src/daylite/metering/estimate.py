"""Token estimates from a request body, for reservations and for gateway counts.

Two different questions get two answers. ``input_bound`` is an upper bound a
backend's reported prompt tokens never exceed: every tokenizer in use spends at
least one UTF-8 byte per token, so the byte count of the text plus a per-message
allowance for chat-template tokens is safe. Images count as a fixed allowance
each, never as the length of their base64 text. ``approximate_tokens`` is the
gateway's own count when a backend reports none: about four bytes a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson


def _texts(value: Any, images: list[int]) -> Iterator[str]:
    """Walk a message content value, yielding text and counting images."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict):
                kind = part.get("type")
                if kind in ("image_url", "input_image", "image"):
                    images[0] += 1
                elif kind in ("input_audio", "file"):
                    # Opaque media: its size on the wire is the only safe bound.
                    yield orjson.dumps(part).decode()
                else:
                    yield from _texts(part.get("text", ""), images)
            else:
                yield from _texts(part, images)
    elif value is not None and not isinstance(value, (int, float, bool)):
        yield orjson.dumps(value).decode()


def _input_texts(payload: dict[str, Any], images: list[int]) -> Iterator[str]:
    messages = payload.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if not isinstance(message, dict):
                continue
            yield from _texts(message.get("content"), images)
            for key in ("tool_calls", "function_call", "name"):
                if message.get(key) is not None:
                    yield orjson.dumps(message[key]).decode()
    for key in ("prompt", "input", "suffix"):
        if key in payload:
            yield from _texts(payload[key], images)
    for key in ("tools", "functions", "response_format"):
        if payload.get(key) is not None:
            yield orjson.dumps(payload[key]).decode()


def _message_count(payload: dict[str, Any]) -> int:
    messages = payload.get("messages")
    if isinstance(messages, list):
        return len(messages)
    items = payload.get("input", payload.get("prompt"))
    return len(items) if isinstance(items, list) else 1


def input_bound(payload: dict[str, Any], *, per_message: int, per_image: int) -> int:
    """Prompt tokens no backend can exceed for this body."""
    images = [0]
    text_bytes = sum(len(text.encode()) for text in _input_texts(payload, images))
    return (
        text_bytes
        + per_message * (_message_count(payload) + 1)
        + (per_image * images[0])
    )


def approximate_tokens(text_bytes: int) -> int:
    """The gateway's own count of tokens for ``text_bytes`` of text."""
    return (text_bytes + 3) // 4


def approximate_input(payload: dict[str, Any], *, per_image: int) -> int:
    images = [0]
    text_bytes = sum(len(text.encode()) for text in _input_texts(payload, images))
    return (
        approximate_tokens(text_bytes)
        + 4 * _message_count(payload)
        + (per_image * images[0])
    )


def output_bound(payload: dict[str, Any], model_limit: int) -> int:
    """Completion tokens a backend may generate, over all ``n`` choices."""
    limit = model_limit
    for key in ("max_completion_tokens", "max_tokens"):
        value = payload.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            limit = min(value, model_limit)
            break
    choices = payload.get("n", 1)
    if not isinstance(choices, int) or isinstance(choices, bool) or choices < 1:
        choices = 1
    best_of = payload.get("best_of")
    if isinstance(best_of, int) and not isinstance(best_of, bool):
        choices = max(choices, best_of)
    return limit * choices
