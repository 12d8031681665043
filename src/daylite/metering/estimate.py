"""Token estimates from a request body, for reservations and for gateway counts.

Two different questions get two answers. ``input_bound`` is an upper bound a
backend's reported prompt tokens never exceed: every tokenizer in use spends at
least one UTF-8 byte per token, so the byte count of the text plus a per-message
allowance for chat-template tokens is safe. Images count as a fixed allowance
each, never as the length of their base64 text, and so do media parts that
point at a URL or an uploaded file. Prompts given as token ids count one token
per id. ``approximate_tokens`` is the gateway's own count when a backend reports
none: about four bytes a token.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
# Media named by reference: their size on the wire says nothing of their tokens.
_REFERENCE_PARTS = frozenset({"video_url", "audio_url", "input_file", "file"})
_TEXT_PARTS = frozenset({"text", "input_text", "output_text"})
# Message fields that are not prompt text, or are counted on their own.
_NOT_TEXT_FIELDS = frozenset({"role", "content", "images"})


def _part_texts(part: dict[str, Any], images: list[int]) -> Iterator[str]:
    kind = part.get("type")
    if not isinstance(kind, str) and kind is not None:
        yield orjson.dumps(part).decode()
    elif _is_media(kind, part):
        images[0] += 1
    elif kind in _TEXT_PARTS or (kind is None and "text" in part):
        yield from _texts(part.get("text", ""), images)
    else:
        # Audio, files and kinds not known here: the size on the wire is the
        # only bound that holds without knowing how a backend tokenizes them.
        yield orjson.dumps(part).decode()


def _is_media(kind: str | None, part: dict[str, Any]) -> bool:
    if kind in _IMAGE_PARTS or (kind is None and "image_url" in part):
        return True
    return kind in _REFERENCE_PARTS and not _carries_data(part)


def _carries_data(part: dict[str, Any]) -> bool:
    inner = part.get(part.get("type", ""), part)
    return isinstance(inner, dict) and any(
        key in inner for key in ("data", "file_data")
    )


def _texts(value: Any, images: list[int]) -> Iterator[str]:
    """Walk a message content value, yielding text and counting images."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, int) and not isinstance(value, bool):
        # A token id: one token, which one byte of bound covers.
        yield "#"
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, dict):
                yield from _part_texts(part, images)
            else:
                yield from _texts(part, images)
    elif value is not None and not isinstance(value, (float, bool)):
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


def prompt_count(payload: dict[str, Any]) -> int:
    """How many separate prompts a completions body holds (each gets answers)."""
    prompt = payload.get("prompt")
    if (
        isinstance(prompt, list)
        and prompt
        and not all(
            isinstance(item, int) and not isinstance(item, bool) for item in prompt
        )
    ):
        return len(prompt)
    return 1


def output_bound(payload: dict[str, Any], model_limit: int) -> int:
    """Completion tokens a backend may generate, over all ``n`` choices and prompts.

    When a body sets both ``max_tokens`` and ``max_completion_tokens``, a backend
    may honour either one, so the larger is the bound.
    """
    limits = [
        value
        for value in (payload.get("max_completion_tokens"), payload.get("max_tokens"))
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0
    ]
    limit = min(max(limits), model_limit) if limits else model_limit
    return limit * output_choices(payload) * prompt_count(payload)


def output_choices(payload: dict[str, Any]) -> int:
    """How many completions a backend generates for this body (``n``, ``best_of``)."""
    choices = payload.get("n", 1)
    if not isinstance(choices, int) or isinstance(choices, bool) or choices < 1:
        choices = 1
    best_of = payload.get("best_of")
    if isinstance(best_of, int) and not isinstance(best_of, bool):
        choices = max(choices, best_of)
    return choices
