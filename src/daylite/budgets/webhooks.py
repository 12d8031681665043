"""Delivery of budget events from the outbox to each account's webhook.

A background task takes events that are due, claims each one by moving its
next attempt time forward (so two replicas never send the same attempt), POSTs
it signed with the account's secret, and marks it delivered on any 2xx. Any
other answer, or no answer, schedules a retry with exponential backoff. Retry
times and signature timestamps are wall-clock time, never the business clock,
because the receiver checks them against its own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from daylite.clock import Clock, SystemClock
from daylite.settings import Settings
from daylite.storage.tables import accounts, budget_events

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 15
MAX_BACKOFF_SECONDS = 3600.0
_BATCH = 50
_ERROR_CHARS = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Daylite-Signature value: ``t=<unix>,v1=<hex HMAC-SHA256>``."""
    signed = str(timestamp).encode() + b"." + body
    mac = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def backoff_seconds(attempts: int, base: float) -> float:
    """Wait after the ``attempts``-th failed attempt: base, 2x base, 4x base, ..."""
    return float(min(base * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS))


@dataclass(frozen=True, slots=True)
class _Due:
    id: str
    kind: str
    payload: bytes
    attempts: int
    url: str
    secret: str


def _due_query(now_us: int) -> Any:
    """Pending events whose next attempt is due, oldest first, with the endpoint."""
    return (
        select(
            budget_events.c.id,
            budget_events.c.kind,
            budget_events.c.payload,
            budget_events.c.attempts,
            budget_events.c.next_attempt_at,
            accounts.c.webhook_url,
            accounts.c.webhook_secret,
        )
        .join(accounts, accounts.c.id == budget_events.c.account_id)
        .where(
            budget_events.c.state == "pending",
            budget_events.c.next_attempt_at <= now_us,
        )
        .order_by(budget_events.c.created_at, budget_events.c.id)
        .limit(_BATCH)
    )


async def _take(connection: AsyncConnection, row: Any, lease_us: int) -> bool:
    """Claim one event by moving its next attempt to ``lease_us``.

    The update only matches if nobody moved it since it was read, so of two
    replicas reading the same event only one sends it; if this process dies
    mid-delivery, the lease runs out and the event is tried again.
    """
    result = await connection.execute(
        update(budget_events)
        .where(
            and_(
                budget_events.c.id == row.id,
                budget_events.c.state == "pending",
                budget_events.c.next_attempt_at == row.next_attempt_at,
            )
        )
        .values(next_attempt_at=lease_us)
    )
    return bool(result.rowcount == 1)


class WebhookSender:
    """Runs the delivery loop for one process."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        wall: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._engine = engine
        self._wall = wall or SystemClock()
        self._poll = settings.webhook_poll_interval
        self._base = settings.webhook_retry_base
        self._timeout = settings.webhook_timeout
        self._client = httpx.AsyncClient(
            timeout=settings.webhook_timeout,
            follow_redirects=False,
            transport=transport,
        )
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="daylite-webhooks")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            # Let a delivery in flight finish, so that it is marked and a
            # restart does not send it again; then give up on it.
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self._timeout + 1)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        await self._client.aclose()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = await self.deliver_due() >= _BATCH
            except Exception:
                log.exception("budget webhook delivery failed; retrying")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._poll)

    async def deliver_due(self) -> int:
        """Attempt every due event once; returns how many were attempted."""
        due = await self._claim()
        await asyncio.gather(*(self._attempt(event) for event in due))
        return len(due)

    async def _claim(self) -> list[_Due]:
        now = self._wall.now_us()
        lease = now + int((self._timeout + 30) * 1_000_000)
        claimed: list[_Due] = []
        async with self._engine.begin() as connection:
            for row in (await connection.execute(_due_query(now))).all():
                if not row.webhook_url or not row.webhook_secret:
                    await self._mark(
                        connection,
                        row.id,
                        state="skipped",
                        last_error="no webhook endpoint configured",
                    )
                elif await _take(connection, row, lease):
                    claimed.append(
                        _Due(
                            row.id,
                            row.kind,
                            row.payload.encode(),
                            row.attempts,
                            row.webhook_url,
                            row.webhook_secret,
                        )
                    )
        return claimed

    async def _attempt(self, event: _Due) -> None:
        timestamp = self._wall.now_us() // 1_000_000
        headers = {
            "content-type": "application/json",
            "user-agent": "Daylite-Webhooks/1",
            "x-daylite-event-id": event.id,
            "x-daylite-event-type": event.kind,
            "x-daylite-timestamp": str(timestamp),
            "x-daylite-signature": sign(event.secret, timestamp, event.payload),
        }
        try:
            response = await self._client.post(
                event.url, content=event.payload, headers=headers
            )
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= response.status_code < 300:
                await self._finish(event, "delivered", None)
                return
            error = f"status {response.status_code}"
        await self._fail(event, error)

    async def _fail(self, event: _Due, error: str) -> None:
        attempts = event.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.warning("budget webhook given up", extra={"event": event.id})
            await self._finish(event, "failed", error)
            return
        delay = backoff_seconds(attempts, self._base)
        retry_at = self._wall.now_us() + int(delay * 1_000_000)
        async with self._engine.begin() as connection:
            await self._mark(
                connection,
                event.id,
                attempts=attempts,
                next_attempt_at=retry_at,
                last_error=error[:_ERROR_CHARS],
            )

    async def _finish(self, event: _Due, state: str, error: str | None) -> None:
        values: dict[str, Any] = {"state": state, "attempts": event.attempts + 1}
        if state == "delivered":
            values["delivered_at"] = self._wall.now_us()
        if error is not None:
            values["last_error"] = error[:_ERROR_CHARS]
        async with self._engine.begin() as connection:
            await self._mark(connection, event.id, **values)

    @staticmethod
    async def _mark(connection: AsyncConnection, event_id: str, **values: Any) -> None:
        await connection.execute(
            update(budget_events).where(budget_events.c.id == event_id).values(**values)
        )
