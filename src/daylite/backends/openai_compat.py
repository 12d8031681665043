"""An OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp, Ollama, hosted)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from daylite.backends.base import BackendUnavailable, Timeouts
from daylite.catalog import BackendSpec


class _HttpxResponse:
    def __init__(self, response: httpx.Response, timeouts: Timeouts) -> None:
        self._response = response
        self._timeouts = timeouts
        self.status = response.status_code
        self.content_type = response.headers.get("content-type", "")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except httpx.TimeoutException:
            raise BackendUnavailable("backend stopped sending", timeout=True) from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"stream broken: {type(exc).__name__}") from None

    async def read(self) -> bytes:
        try:
            async with asyncio.timeout(self._timeouts.first_byte):
                return await self._response.aread()
        except TimeoutError:
            raise BackendUnavailable("backend timed out", timeout=True) from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"body broken: {type(exc).__name__}") from None
        finally:
            await self._response.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()


class OpenAICompatBackend:
    """Forwards to one base URL with a pooled HTTP client."""

    def __init__(self, spec: BackendSpec, client: httpx.AsyncClient | None = None):
        self.name = spec.name
        self._base = spec.base_url
        self._headers = {"content-type": "application/json"}
        key = spec.api_key()
        if key:
            self._headers["authorization"] = f"Bearer {key}"
        self._client = client or httpx.AsyncClient(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
            trust_env=False,
        )

    async def send(self, path: str, body: bytes, timeouts: Timeouts) -> _HttpxResponse:
        request = self._client.build_request(
            "POST",
            self._base + path,
            content=body,
            headers=self._headers,
            timeout=httpx.Timeout(
                timeouts.first_byte, connect=timeouts.connect, read=timeouts.idle
            ),
        )
        try:
            async with asyncio.timeout(timeouts.first_byte):
                response = await self._client.send(request, stream=True)
        except TimeoutError:
            raise BackendUnavailable("no response in time", timeout=True) from None
        except httpx.TimeoutException:
            raise BackendUnavailable("connect timed out", timeout=True) from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"cannot reach: {type(exc).__name__}") from None
        return _HttpxResponse(response, timeouts)

    async def close(self) -> None:
        await self._client.aclose()
