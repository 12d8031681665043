"""Fake OpenAI-compatible upstream: a real uvicorn HTTP server for tests and benches."""

from __future__ import annotations

import argparse
import asyncio
import base64
import functools
import importlib.util
import itertools
import json
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOST = "127.0.0.1"
DEFAULT_MODEL = "fake-model"

# httptools parses much faster than h11, which matters when benchmarks hammer the fake.
_HTTP_IMPL = "httptools" if importlib.util.find_spec("httptools") else "h11"
_MAX_BODY_BYTES = 64 * 1024 * 1024
# Caps keep a typo in a prompt from turning into an endless response or sleep.
_MAX_WORDS = 100_000
_MAX_CHOICES = 128
_MAX_WAIT_S = 600.0
_MAX_SLOW_MS = 60_000.0
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_CUT_WAIT_S = 5.0
_PING_INTERVAL_S = 1.0

_API_KINDS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "text",
    "/v1/embeddings": "embed",
}
_FLAGS = frozenset(
    {"nousage", "nodone", "runningusage", "html", "toolcall", "extra", "colors"}
)
# List content is searched as JSON text, so quotes, brackets and escaped newlines
# can glue themselves to a directive; they all count as separators.
_TOKEN_SPLIT = re.compile(r'(?:\s|["\[\]{}]|\\[nrt])+')
_EXTRA_FIELDS: dict[str, Any] = {
    "system_fingerprint": "fp_fake",
    "service_tier": "default",
    "provider_meta": {"x": 1},
}
_TOOL_ID = "call_1"
_TOOL_NAME = "get_weather"
_TOOL_FRAGMENTS = ('{"city":', '"Oslo",', '"unit":"c"}')
_COLOR_EVENTS = ((0, "Red"), (1, "Blue"), (0, "."), (1, "."))
_COLOR_TEXTS = ("Red.", "Blue.")
_EMBEDDING = (0.1, 0.2, 0.3)
_EMBEDDING_B64 = base64.b64encode(struct.pack("<3f", *_EMBEDDING)).decode("ascii")
_MODELS_PAYLOAD = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": 1700000000, "owned_by": "fake"}
            for name in (DEFAULT_MODEL, "fake-model-mini", "fake-embedding")
        ],
    }
)
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
]
_DONE = b"data: [DONE]\n\n"
_PING = b": ping\n\n"
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}

# Stream frame phases: drop=K counts only content frames and never cuts role frames.
_HEAD = 0
_CONTENT = 1
_TAIL = 2


@dataclass(slots=True)
class Directives:
    """Behaviour switches parsed from the last user message of a request."""

    usage: tuple[int, int] | None = None
    cached: int | None = None
    reasoning: int | None = None
    words: int = 3
    nousage: bool = False
    fail: int | None = None
    hang: float = 0.0
    drop: int | None = None
    slow: float = 0.0
    n: int = 1
    nodone: bool = False
    pings: int = 0
    runningusage: bool = False
    html: bool = False
    toolcall: bool = False
    extra: bool = False
    colors: bool = False


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError(value)
    return number


def _seconds(value: str, limit: float) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return min(number, limit)


def _apply(directives: Directives, key: str, value: str) -> None:
    if key == "usage":
        prompt, completion = value.split(",")
        directives.usage = (_count(prompt), _count(completion))
    elif key == "cached":
        directives.cached = _count(value)
    elif key == "reasoning":
        directives.reasoning = _count(value)
    elif key == "words":
        directives.words = min(_count(value), _MAX_WORDS)
    elif key == "fail":
        status = int(value)
        if not 200 <= status <= 599:
            raise ValueError(value)
        directives.fail = status
    elif key == "hang":
        directives.hang = _seconds(value, _MAX_WAIT_S)
    elif key == "drop":
        directives.drop = _count(value)
    elif key == "slow":
        directives.slow = _seconds(value, _MAX_SLOW_MS) / 1000.0
    elif key == "n":
        directives.n = max(1, min(_count(value), _MAX_CHOICES))
    elif key == "pings":
        directives.pings = min(_count(value), int(_MAX_WAIT_S))


def parse_directives(text: str) -> Directives:
    """Read directives from prompt text; later duplicates win, junk is ignored."""
    directives = Directives()
    for raw in _TOKEN_SPLIT.split(text):
        token = raw.strip(",:")
        if not token:
            continue
        if token in _FLAGS:
            setattr(directives, token, True)
            continue
        key, sep, value = token.partition("=")
        if not sep:
            continue
        try:
            _apply(directives, key, value)
        except ValueError:
            # A malformed value is just prompt text, as it would be for a real model.
            continue
    return directives


def directive_text(kind: str, body: dict[str, Any]) -> str:
    """Return the text directives are read from for an endpoint kind and body."""
    if kind == "chat":
        messages = body.get("messages")
        if not isinstance(messages, list):
            return ""
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
                return "" if content is None else json.dumps(content)
        return ""
    source = body.get("prompt" if kind == "text" else "input")
    if isinstance(source, str):
        return source
    if isinstance(source, list):
        return "\n".join(item for item in source if isinstance(item, str))
    return ""


@functools.lru_cache(maxsize=64)
def _word_pieces(count: int) -> tuple[str, ...]:
    return tuple("w0" if k == 0 else f" w{k}" for k in range(count))


@functools.lru_cache(maxsize=64)
def _words_text(count: int) -> str:
    return "".join(_word_pieces(count))


def _choice_texts(directives: Directives) -> list[str]:
    if directives.colors:
        return list(_COLOR_TEXTS)
    return [_words_text(directives.words)] * directives.n


def _content_events(directives: Directives) -> tuple[int, list[tuple[int, str]]]:
    if directives.colors:
        return len(_COLOR_TEXTS), list(_COLOR_EVENTS)
    n = directives.n
    pieces = _word_pieces(directives.words)
    return n, [(index, piece) for piece in pieces for index in range(n)]


def _default_completion(kind: str, directives: Directives) -> int:
    if kind == "chat" and directives.toolcall:
        return len(_TOOL_FRAGMENTS)
    if directives.colors:
        return len(_COLOR_EVENTS) // len(_COLOR_TEXTS)
    return directives.words


def _usage(
    directives: Directives, default_completion: int, progress: int | None = None
) -> dict[str, Any]:
    if directives.usage is None:
        prompt, completion = 10, default_completion
    else:
        prompt, completion = directives.usage
    if progress is not None:
        completion = min(progress, completion)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if directives.cached is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": directives.cached}
    if directives.reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": directives.reasoning}
    return usage


def _tool_call_complete() -> dict[str, Any]:
    return {
        "id": _TOOL_ID,
        "type": "function",
        "function": {"name": _TOOL_NAME, "arguments": "".join(_TOOL_FRAGMENTS)},
    }


def _tool_deltas() -> list[dict[str, Any]]:
    first = {
        "index": 0,
        "id": _TOOL_ID,
        "type": "function",
        "function": {"name": _TOOL_NAME, "arguments": ""},
    }
    deltas: list[dict[str, Any]] = [{"tool_calls": [first]}]
    for fragment in _TOOL_FRAGMENTS:
        deltas.append(
            {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}
        )
    return deltas


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    return model if isinstance(model, str) else DEFAULT_MODEL


def error_payload(message: str, kind: str, code: str | None = None) -> bytes:
    """Encode an OpenAI-format error body."""
    error = {"message": message, "type": kind, "param": None, "code": code}
    return orjson.dumps({"error": error})


def _header_dict(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


async def _send_bytes(
    send: Send, status: int, payload: bytes, content_type: bytes = b"application/json"
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(payload)).encode("ascii")),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


async def _send_error(
    send: Send, status: int, message: str, kind: str, code: str | None = None
) -> None:
    await _send_bytes(send, status, error_payload(message, kind, code))


async def _send_failure(send: Send, status: int) -> None:
    await _send_error(send, status, f"fake failure {status}", "upstream_error")


class _BodyTooLarge(Exception):
    """Raised when a request body exceeds the fake's size cap."""


async def _read_body(receive: Receive) -> bytes | None:
    """Collect the request body; None means the client went away first."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            raise _BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _cut(send: Send, receive: Receive) -> None:
    """Close the TCP connection mid-exchange, like a crashing upstream would."""
    # ASGI cannot abort a response, but uvicorn's HTTP cycles expose their transport
    # on the bound send method; closing it ends the socket without a final chunk.
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.BaseTransport):
        raise ConnectionAbortedError("fake upstream dropped the connection")
    transport.close()
    # Waiting for uvicorn to see the loss stops it from logging or answering 500.
    try:
        async with asyncio.timeout(_CUT_WAIT_S):
            for _ in range(100):
                if (await receive())["type"] == "http.disconnect":
                    return
    except TimeoutError:
        return


class _App:
    """Raw ASGI app holding the request log shared with the controlling thread."""

    def __init__(
        self, *, fail_status: int | None, api_key: str | None, record: bool
    ) -> None:
        self.fail_status = fail_status
        self.api_key = api_key
        self.record = record
        self.lock = threading.Lock()
        self.calls = 0
        self.bodies: list[Any] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self._ids = itertools.count(1)
        self._closing: asyncio.Event | None = None

    def open(self) -> None:
        # The event is made inside the server loop because each start() has its own.
        self._closing = asyncio.Event()

    def close(self) -> None:
        if self._closing is not None:
            self._closing.set()

    def reset(self) -> None:
        with self.lock:
            self.calls = 0
            self.bodies.clear()
            self.paths.clear()
            self.headers.clear()

    async def _pause(self, seconds: float) -> bool:
        """Sleep; False means the server is shutting down and the caller must cut."""
        closing = self._closing
        if closing is None:
            await asyncio.sleep(seconds)
            return True
        if closing.is_set():
            return False
        try:
            async with asyncio.timeout(seconds):
                await closing.wait()
        except TimeoutError:
            return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        kind = _API_KINDS.get(path)
        if kind is not None:
            if method != "POST":
                await _send_error(
                    send, 405, "method not allowed", "invalid_request_error"
                )
                return
            await self._api(kind, path, scope, receive, send)
        elif path == "/__stats" and method == "GET":
            with self.lock:
                calls = self.calls
            await _send_bytes(send, 200, orjson.dumps({"calls": calls}))
        elif path == "/__reset" and method == "POST":
            self.reset()
            await _send_bytes(send, 200, orjson.dumps({"calls": 0}))
        elif path == "/v1/models" and method == "GET":
            if await self._unauthorized(_header_dict(scope), send):
                return
            if self.fail_status is not None:
                await _send_failure(send, self.fail_status)
                return
            await _send_bytes(send, 200, _MODELS_PAYLOAD)
        else:
            message = f"unknown path {method} {path}"
            await _send_error(send, 404, message, "invalid_request_error")

    async def _unauthorized(self, headers: dict[str, str], send: Send) -> bool:
        """Answer 401 when an API key is required and missing; True if answered."""
        if self.api_key is None:
            return False
        if headers.get("authorization") == f"Bearer {self.api_key}":
            return False
        message = "Incorrect API key provided"
        code = "invalid_api_key"
        await _send_error(send, 401, message, "invalid_request_error", code)
        return True

    async def _api(
        self, kind: str, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        try:
            raw = await _read_body(receive)
        except _BodyTooLarge:
            await _send_error(
                send, 413, "request body too large", "invalid_request_error"
            )
            return
        if raw is None:
            return
        headers = _header_dict(scope)
        body: dict[str, Any] | None = None
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            body = parsed
        with self.lock:
            self.calls += 1
            if self.record:
                self.bodies.append(parsed)
                self.paths.append(path)
                self.headers.append(headers)
        if await self._unauthorized(headers, send):
            return
        if body is None:
            message = "request body must be a JSON object"
            await _send_error(send, 400, message, "invalid_request_error")
            return
        directives = parse_directives(directive_text(kind, body))
        if directives.hang and not await self._pause(directives.hang):
            await _cut(send, receive)
            return
        status = self.fail_status if self.fail_status is not None else directives.fail
        if status is not None:
            await _send_failure(send, status)
            return
        if directives.html:
            await _send_bytes(send, 200, b"<html>oops</html>", b"text/html")
            return
        if kind != "embed" and body.get("stream") is True:
            await self._stream(kind, body, directives, send, receive)
            return
        if directives.drop is not None:
            await _cut(send, receive)
            return
        if directives.slow and not await self._pause(directives.slow):
            await _cut(send, receive)
            return
        if kind == "embed":
            payload = self._embeddings(body, directives)
        else:
            payload = self._completion(kind, body, directives)
        await _send_bytes(send, 200, orjson.dumps(payload))

    def _completion(
        self, kind: str, body: dict[str, Any], directives: Directives
    ) -> dict[str, Any]:
        chat = kind == "chat"
        response: dict[str, Any] = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake-{next(self._ids)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": _model(body),
        }
        if directives.extra:
            response.update(_EXTRA_FIELDS)
        choices: list[dict[str, Any]]
        if chat and directives.toolcall:
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [_tool_call_complete()],
            }
            choices = [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls",
                    "logprobs": None,
                }
            ]
        elif chat:
            choices = [
                {
                    "index": index,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for index, text in enumerate(_choice_texts(directives))
            ]
        else:
            choices = [
                {
                    "index": index,
                    "text": text,
                    "finish_reason": "stop",
                    "logprobs": None,
                }
                for index, text in enumerate(_choice_texts(directives))
            ]
        response["choices"] = choices
        if not directives.nousage:
            default = _default_completion(kind, directives)
            response["usage"] = _usage(directives, default)
        return response

    def _embeddings(
        self, body: dict[str, Any], directives: Directives
    ) -> dict[str, Any]:
        source = body.get("input")
        # A flat list of ints is one pre-tokenised input, not many inputs.
        many = isinstance(source, list) and source and not isinstance(source[0], int)
        count = len(source) if many and isinstance(source, list) else 1
        vector: Any = list(_EMBEDDING)
        if body.get("encoding_format") == "base64":
            vector = _EMBEDDING_B64
        response: dict[str, Any] = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": index, "embedding": vector}
                for index in range(count)
            ],
            "model": _model(body),
        }
        if directives.extra:
            response.update(_EXTRA_FIELDS)
        if not directives.nousage:
            prompt = 8 if directives.usage is None else directives.usage[0]
            response["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
        return response

    def _frames(
        self, kind: str, body: dict[str, Any], directives: Directives
    ) -> Iterator[tuple[int, bytes]]:
        """Yield (phase, SSE bytes) for a streamed completion, built lazily."""
        chat = kind == "chat"
        base: dict[str, Any] = {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake-{next(self._ids)}",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": _model(body),
        }
        if directives.extra:
            base.update(_EXTRA_FIELDS)
        options = body.get("stream_options")
        include_usage = (
            isinstance(options, dict)
            and options.get("include_usage") is True
            and not directives.nousage
        )
        running = directives.runningusage and not directives.nousage
        default = _default_completion(kind, directives)

        def frame(choices: list[dict[str, Any]], progress: int | None) -> bytes:
            chunk = dict(base)
            chunk["choices"] = choices
            if running:
                chunk["usage"] = _usage(directives, default, progress)
            elif include_usage:
                chunk["usage"] = None
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        def piece(index: int, text: str) -> dict[str, Any]:
            if chat:
                return {
                    "index": index,
                    "delta": {"content": text},
                    "logprobs": None,
                    "finish_reason": None,
                }
            return {
                "index": index,
                "text": text,
                "logprobs": None,
                "finish_reason": None,
            }

        toolcall = chat and directives.toolcall
        events: list[tuple[int, str]] = []
        choices_count = 1
        if not toolcall:
            choices_count, events = _content_events(directives)
        if chat:
            role = {"role": "assistant", "content": ""}
            for index in range(choices_count):
                start = {
                    "index": index,
                    "delta": role,
                    "logprobs": None,
                    "finish_reason": None,
                }
                yield _HEAD, frame([start], 0)
        if toolcall:
            for step, delta in enumerate(_tool_deltas()):
                tool = {
                    "index": 0,
                    "delta": delta,
                    "logprobs": None,
                    "finish_reason": None,
                }
                yield _CONTENT, frame([tool], step)
        for position, (index, text) in enumerate(events):
            yield _CONTENT, frame([piece(index, text)], position // choices_count + 1)
        reason = "tool_calls" if toolcall else "stop"
        for index in range(choices_count):
            finish: dict[str, Any]
            if chat:
                finish = {
                    "index": index,
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": reason,
                }
            else:
                finish = {
                    "index": index,
                    "text": "",
                    "logprobs": None,
                    "finish_reason": reason,
                }
            yield _TAIL, frame([finish], None)
        if include_usage:
            chunk = dict(base)
            chunk["choices"] = []
            chunk["usage"] = _usage(directives, default)
            yield _TAIL, b"data: " + orjson.dumps(chunk) + b"\n\n"
        if not directives.nodone and not directives.pings:
            yield _TAIL, _DONE

    async def _stream(
        self,
        kind: str,
        body: dict[str, Any],
        directives: Directives,
        send: Send,
        receive: Receive,
    ) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS}
        )
        drop = directives.drop
        sent_content = 0
        first = True
        for phase, data in self._frames(kind, body, directives):
            past_quota = phase == _TAIL or sent_content >= (drop or 0)
            if drop is not None and phase != _HEAD and past_quota:
                await _cut(send, receive)
                return
            waited = directives.slow and not first
            if waited and not await self._pause(directives.slow):
                await _cut(send, receive)
                return
            await send({"type": "http.response.body", "body": data, "more_body": True})
            first = False
            if phase == _CONTENT:
                sent_content += 1
        for _ in range(directives.pings):
            await send({"type": "http.response.body", "body": _PING, "more_body": True})
            if not await self._pause(_PING_INTERVAL_S):
                await _cut(send, receive)
                return
        await send(_END)


class _Server(uvicorn.Server):
    """uvicorn server that wakes sleeping handlers as soon as shutdown begins."""

    def __init__(self, config: uvicorn.Config, app: _App) -> None:
        super().__init__(config)
        self._app = app

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.open()
        await super().startup(sockets=sockets)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._app.close()
        await super().shutdown(sockets=sockets)


def _bind(port: int) -> socket.socket:
    # An explicit IPPROTO_TCP makes asyncio set TCP_NODELAY on accepted sockets;
    # without it Nagle plus delayed ACKs add ~40 ms to every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _config(app: _App, *, quiet_logging: bool) -> uvicorn.Config:
    extra: dict[str, Any] = {}
    if quiet_logging:
        # Leave the host process's logging setup alone when embedded in tests.
        extra["log_config"] = None
    return uvicorn.Config(
        app,
        host=HOST,
        loop="asyncio",
        http=_HTTP_IMPL,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=3,
        **extra,
    )


class FakeUpstream:
    """Fake OpenAI-compatible server on 127.0.0.1, run in a daemon thread."""

    def __init__(
        self,
        *,
        fail_status: int | None = None,
        api_key: str | None = None,
        port: int = 0,
        record: bool = True,
    ) -> None:
        self._app = _App(fail_status=fail_status, api_key=api_key, record=record)
        self._requested_port = port
        self._port: int | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeUpstream:
        """Start serving and block until the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("FakeUpstream is already running")
        sock = _bind(self._requested_port)
        port: int = sock.getsockname()[1]
        server = _Server(_config(self._app, quiet_logging=True), self._app)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"fake-upstream-{port}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"fake upstream failed to start on port {port}")
            time.sleep(0.002)
        self._port = port
        self._server = server
        self._thread = thread
        return self

    def stop(self) -> None:
        """Shut the server down; in-flight hangs and streams are cut short."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(_STOP_TIMEOUT_S)
        self._server = None
        self._thread = None
        self._port = None

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeUpstream is not running")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    @property
    def calls(self) -> int:
        with self._app.lock:
            return self._app.calls

    @property
    def bodies(self) -> list[Any]:
        with self._app.lock:
            return list(self._app.bodies)

    @property
    def paths(self) -> list[str]:
        with self._app.lock:
            return list(self._app.paths)

    @property
    def headers(self) -> list[dict[str, str]]:
        with self._app.lock:
            return [dict(entry) for entry in self._app.headers]

    def reset(self) -> None:
        self._app.reset()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake in the foreground until the process is signalled."""
    parser = argparse.ArgumentParser(description="Fake OpenAI-compatible upstream.")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--fail-status", type=int, default=None)
    parser.add_argument("--api-key", default=None)
    args = parser.parse_args(argv)
    # Long benchmark runs would otherwise grow the request log without bound.
    app = _App(fail_status=args.fail_status, api_key=args.api_key, record=False)
    sock = _bind(args.port)
    server = _Server(_config(app, quiet_logging=False), app)
    print(f"fake upstream serving http://{HOST}:{sock.getsockname()[1]}/v1", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
