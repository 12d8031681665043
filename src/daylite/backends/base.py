"""The backend protocol: send one request body, get a status and a byte stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class BackendUnavailable(Exception):
    """The backend could not be reached or gave up; the next one may answer."""

    def __init__(self, reason: str, *, timeout: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timeout = timeout


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect: float
    first_byte: float
    idle: float


class UpstreamResponse(Protocol):
    status: int
    content_type: str

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises BackendUnavailable if cut off."""

    async def read(self) -> bytes:
        """The whole body; raises BackendUnavailable on failure or timeout."""

    async def aclose(self) -> None:
        """Stop reading and release the connection, telling the backend to stop."""


class Backend(Protocol):
    name: str

    async def send(
        self, path: str, body: bytes, timeouts: Timeouts
    ) -> UpstreamResponse:
        """POST ``body`` to ``path``; returns once the status line has arrived."""

    async def close(self) -> None:
        """Release connections."""
