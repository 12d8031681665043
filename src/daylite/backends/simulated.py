"""A built-in backend that answers without any model, for trying the product.

Its text and token counts are a pure function of the request, so a demo shows
the same costs every time. It goes through the same metering path as a real
backend; only the bytes come from here instead of the network.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from daylite.backends.base import Timeouts
from daylite.metering.estimate import approximate_input

_REPLY_TEXT = (
    "This is Daylite's simulated backend. No model is configured for this "
    "model id, so this deterministic text stands in for a real answer. "
    "Add a backend in the configuration file to go live."
)
_REPLY = _REPLY_TEXT.split()


class _Reply:
    def __init__(self, status: int, content_type: str, chunks: list[bytes]) -> None:
        self.status = status
        self.content_type = content_type
        self._chunks = chunks

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    async def read(self) -> bytes:
        return b"".join(self._chunks)

    async def aclose(self) -> None:
        return None


def _words(payload: dict[str, Any]) -> list[str]:
    limit = payload.get("max_completion_tokens", payload.get("max_tokens"))
    count = len(_REPLY)
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        count = min(count, limit)
    return _REPLY[:count]


def _usage(payload: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = approximate_input(payload, per_image=85)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class SimulatedBackend:
    name = "simulated"

    async def send(self, path: str, body: bytes, timeouts: Timeouts) -> _Reply:
        payload = orjson.loads(body)
        if path == "/embeddings":
            return self._embeddings(payload)
        words = _words(payload)
        chat = path == "/chat/completions"
        if payload.get("stream") is True:
            return self._stream(payload, words, chat)
        text = " ".join(words)
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
            }
        else:
            choice = {"index": 0, "text": text}
        choice.update(finish_reason="stop", logprobs=None)
        reply = {
            "id": f"sim-{time.time_ns()}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": payload.get("model"),
            "choices": [choice],
            "usage": _usage(payload, len(words)),
        }
        return _Reply(200, "application/json", [orjson.dumps(reply)])

    def _stream(self, payload: dict[str, Any], words: list[str], chat: bool) -> _Reply:
        base = {
            "id": f"sim-{time.time_ns()}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": payload.get("model"),
        }
        chunks = []
        for position, word in enumerate(words):
            piece = word if position == 0 else " " + word
            if chat:
                choice: dict[str, Any] = {"index": 0, "delta": {"content": piece}}
            else:
                choice = {"index": 0, "text": piece}
            chunks.append(_event({**base, "choices": [choice]}))
        finish: dict[str, Any] = {"index": 0, "finish_reason": "stop"}
        if chat:
            finish["delta"] = {}
        else:
            finish["text"] = ""
        chunks.append(_event({**base, "choices": [finish]}))
        usage = _usage(payload, len(words))
        chunks.append(_event({**base, "choices": [], "usage": usage}))
        chunks.append(b"data: [DONE]\n\n")
        return _Reply(200, "text/event-stream", chunks)

    def _embeddings(self, payload: dict[str, Any]) -> _Reply:
        inputs = payload.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.0, 0.5, 1.0]}
            for i in range(len(items))
        ]
        prompt = approximate_input(payload, per_image=85)
        reply = {
            "object": "list",
            "data": data,
            "model": payload.get("model"),
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }
        return _Reply(200, "application/json", [orjson.dumps(reply)])

    async def close(self) -> None:
        return None
