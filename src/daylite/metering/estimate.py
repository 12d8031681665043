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

_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
# Message fields that are not prompt text, or are counted on their own.
_NOT_TEXT_FIELDS = frozenset({"role", "content", "images"})


def _part_texts(part: dict[str, Any], images: list[int]) -> Iterator[str]:
    kind = part.get("type")
    if kind in _IMAGE_PARTS or (kind is None and "image_url" in part):
        images[0] += 1
    elif kind in _TEXT_PARTS or (kind is None and "text" in part):
        yield from _texts(part.get("text", ""), images)
    else:
        # Audio, files and kinds not known here: the size on the wire is the
        # only bound that holds without knowing how a backend tokenizes them.
        yield orjson.dumps(part).decode()


def _texts(value: Any, images: list[int]) -> Iterator[str]:
    """Walk a message content value, yielding text and counting images."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict):
                yield from _part_texts(part, images)
            else:
                yield from _texts(part, images)
    elif value is not None and not isinstance(value, (int, float, bool)):
        yield orjson.dumps(value).decode()


def _message_texts(message: dict[str, Any], images: list[int]) -> Iterator[str]:
    yield from _texts(message.get("content"), images)
    pictures = message.get("images")
    if isinstance(pictures, list):
        # Ollama's message-level images: base64 pictures, each one an image.
        images[0] += len(pictures)
    for key, value in message.items():
        # Every other field (name, tool_calls, tool_call_id, reasoning_content,
        # ...) may be rendered into the prompt by a chat template.
        if key not in _NOT_TEXT_FIELDS and value is not None:
            yield orjson.dumps(value).decode()


def _input_texts(payload: dict[str, Any], images: list[int]) -> Iterator[str]:
    messages = payload.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                yield from _message_texts(message, images)
    for key in ("prompt", "input", "suffix"):
        if key in payload:
            yield from _texts(payload[key], images)
    for key in ("tools", "functions", "response_format", "documents"):
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
    """Completion tokens a backend may generate, over all ``n`` choices.

    When a body sets both ``max_tokens`` and ``max_completion_tokens``, a backend
    may honour either one, so the larger is the bound.
    """
    limits = [
        value
        for value in (payload.get("max_completion_tokens"), payload.get("max_tokens"))
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ]
    limit = min(max(limits), model_limit) if limits else model_limit
    return limit * output_choices(payload)


def output_choices(payload: dict[str, Any]) -> int:
    """How many completions a backend generates for this body (``n``, ``best_of``)."""
    choices = payload.get("n", 1)
    if not isinstance(choices, int) or isinstance(choices, bool) or choices < 1:
        choices = 1
    best_of = payload.get("best_of")
    if isinstance(best_of, int) and not isinstance(best_of, bool):
        choices = max(choices, best_of)
    return choices
