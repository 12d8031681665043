"""An OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp, Ollama, hosted).

Upstream calls use aiohttp: measured on this hot path it costs a fraction of
the CPU per request that httpx does (see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from daylite.backends.base import BackendUnavailable, Timeouts
from daylite.catalog import BackendSpec


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse, timeouts: Timeouts) -> None:
        self._response = response
        self._timeouts = timeouts
        self._finished = False
        self.status = response.status
        self.content_type = response.headers.get("content-type", "")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise BackendUnavailable("backend stopped sending", timeout=True) from None
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"stream broken: {type(exc).__name__}") from None
        self._finished = True

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout(self._timeouts.first_byte):
                body = await self._response.read()
        except TimeoutError:
            raise BackendUnavailable("backend timed out", timeout=True) from None
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"body broken: {type(exc).__name__}") from None
        finally:
            await self.aclose()
        self._finished = True
        return body

    async def aclose(self) -> None:
        if self._finished:
            self._response.release()
        else:
            # Closing the connection is how a backend learns that nobody is
            # listening any more, so it stops generating tokens we would pay for.
            self._response.close()


class OpenAICompatBackend:
    """Forwards to one base URL over a pooled keep-alive session."""

    def __init__(self, spec: BackendSpec) -> None:
        self.name = spec.name
        self._base = spec.base_url
        self._headers = {"content-type": "application/json"}
        key = spec.api_key()
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        self._session: aiohttp.ClientSession | None = None

    def _client(self, timeouts: Timeouts) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=30),
                # Only the connect limit lives here: a read limit on the session
                # would cut answers short of upstream_timeout. Waiting for an
                # answer and for stream events is bounded where it happens.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=timeouts.connect, sock_read=None
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(
        self, path: str, body: bytes, timeouts: Timeouts
    ) -> _AiohttpResponse:
        session = self._client(timeouts)
        try:
            async with asyncio.timeout(timeouts.first_byte):
                response = await session.post(
                    self._base + path, data=body, headers=self._headers
                )
        except TimeoutError:
            raise BackendUnavailable("no response in time", timeout=True) from None
        except aiohttp.ClientError as exc:
            raise BackendUnavailable(f"cannot reach: {type(exc).__name__}") from None
        return _AiohttpResponse(response, timeouts)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
