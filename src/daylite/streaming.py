"""Server-sent events from a backend, relayed to the client with usage handled.

The relay forwards the backend's event bytes untouched wherever it can, so tool
call fragments and unknown fields arrive exactly as sent. It watches each event
for finish reasons and usage, holds back the usage-only chunk (the gateway
always asks for it), and knows when a stream is over even if the backend never
sends ``[DONE]``: at ``[DONE]``, at end of input, once every choice has finished
and usage has arrived, or after an idle timeout that comment lines do not reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from daylite.backends.base import BackendUnavailable, UpstreamResponse

DONE = b"data: [DONE]\n\n"


class SSEParser:
    """Splits a byte stream into events: ``(b"data", payload)`` or comments."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n")
        events = []
        while True:
            end = buffer.find(b"\n\n")
            if end < 0:
                break
            block, buffer = buffer[:end], buffer[end + 2 :]
            data = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    data.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b":"):
                    events.append((b":", line))
            if data:
                events.append((b"data", b"\n".join(data)))
        self._buffer = buffer
        return events


def output_bytes(choice: dict[str, Any]) -> int:
    delta = choice.get("delta")
    source = delta if isinstance(delta, dict) else choice
    size = 0
    for key in ("content", "text", "reasoning_content", "refusal"):
        value = source.get(key)
        if isinstance(value, str):
            size += len(value.encode())
    calls = source.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(function.get(key), str):
                    size += len(function[key].encode())
    return size


class StreamRelay:
    """Relays one backend stream; afterwards tells what happened and what it used."""

    def __init__(
        self, upstream: UpstreamResponse, *, choices: int, idle_timeout: float
    ) -> None:
        self._upstream = upstream
        self._chunks = upstream.aiter_bytes()
        self._parser = SSEParser()
        self._choices = choices
        self._idle = idle_timeout
        self._pending: list[tuple[bytes, bytes]] = []
        self.usage: dict[str, Any] | None = None
        self.finished: set[int] = set()
        self.output_bytes = 0
        self.content_chunks = 0
        self.outcome = "open"
        self.error_event: bytes | None = None
        self.template: dict[str, Any] = {}

    async def open(self) -> None:
        """Read until the first data event, so a dead backend can be skipped."""
        deadline = asyncio.get_running_loop().time() + self._idle
        while not any(kind == b"data" for kind, _ in self._pending):
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(self._chunks)
            except StopAsyncIteration:
                raise BackendUnavailable("stream ended before any event") from None
            except TimeoutError:
                raise BackendUnavailable("no event in time", timeout=True) from None
            self._pending.extend(self._parser.feed(chunk))
        first = next(data for kind, data in self._pending if kind == b"data")
        if first != b"[DONE]":
            try:
                event = orjson.loads(first)
            except orjson.JSONDecodeError:
                raise BackendUnavailable("stream data is not JSON") from None
            if (
                isinstance(event, dict)
                and "error" in event
                and not event.get("choices")
            ):
                raise BackendUnavailable("backend sent an error event")

    async def events(self) -> AsyncIterator[bytes]:
        """The client's bytes, up to but excluding the closing usage and [DONE]."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._idle
        while True:
            for kind, data in self._pending:
                if kind != b"data":
                    yield data + b"\n\n"
                    continue
                deadline = loop.time() + self._idle
                out = self._take(data)
                if out:
                    yield out
                if self.outcome != "open":
                    return
            self._pending = []
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self.outcome = "complete" if self.finished else "broken"
                return
            except TimeoutError:
                self.outcome = "complete" if self.finished else "idle"
                return
            except BackendUnavailable:
                self.outcome = "broken"
                return
            self._pending = self._parser.feed(chunk)

    def _all_finished(self) -> bool:
        return len(self.finished) >= self._choices

    def _take(self, data: bytes) -> bytes | None:
        if data == b"[DONE]":
            # The backend says it is done: fewer choices than asked is how
            # backends that ignore ``n`` (llama.cpp, Ollama) answer, not a fault.
            self.outcome = "complete"
            return None
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return b"data: " + data + b"\n\n"
        if not isinstance(event, dict):
            return b"data: " + data + b"\n\n"
        if "error" in event and not event.get("choices"):
            self.outcome = "broken"
            self.error_event = b"data: " + data + b"\n\n"
            return None
        if not self.template:
            self.template = {
                key: event[key]
                for key in ("id", "object", "created", "model", "system_fingerprint")
                if key in event
            }
        choices = event.get("choices")
        if not isinstance(choices, list):
            choices = []
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            size = output_bytes(choice)
            if size:
                self.output_bytes += size
                self.content_chunks += 1
            index = choice.get("index", 0)
            if choice.get("finish_reason") and isinstance(index, int):
                self.finished.add(index)
        usage = event.get("usage")
        if usage:
            self.usage = usage
        if self.usage and self._all_finished():
            # Every choice has finished and usage is in: whatever the backend
            # sends next (pings, or nothing at all) adds nothing.
            self.outcome = "complete"
        if not choices:
            # An event without choices breaks the common client loop over
            # ``chunk.choices[0]``; its usage goes out in the closing chunk.
            return None
        if usage:
            event["usage"] = None
            return b"data: " + orjson.dumps(event) + b"\n\n"
        return b"data: " + data + b"\n\n"

    async def aclose(self) -> None:
        await self._upstream.aclose()
