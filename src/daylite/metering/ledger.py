"""The request ledger and its group-committing writer.

Every request the gateway accepts or refuses becomes one ledger entry. A
response that shows a cost is only completed after its entry is committed, so a
crash can lose no entry whose cost a client saw. To keep that promise cheap,
concurrent entries share one transaction: the writer takes whatever is queued,
commits it together, then wakes every waiting request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from daylite.storage.tables import ledger

log = logging.getLogger(__name__)

SettleHook = Callable[[AsyncConnection, "LedgerEntry"], Awaitable[None]]
BatchHook = Callable[[AsyncConnection, Sequence["LedgerEntry"]], Awaitable[None]]

_BATCH_LIMIT = 512


@dataclass(slots=True)
class LedgerEntry:
    id: str
    account_id: str
    key_id: str | None
    endpoint: str
    status: str
    http_status: int
    created_at: int
    customer: str | None = None
    feature: str | None = None
    model: str | None = None
    backend: str | None = None
    error_code: str | None = None
    stream: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    cost_pico: int = 0
    counted_by: str = "backend"
    latency_ms: int = 0

    def row(self) -> dict[str, Any]:
        # A flat copy; ``dataclasses.asdict`` deep-copies and shows in profiles.
        return {name: getattr(self, name) for name in _FIELDS}


_FIELDS = tuple(field.name for field in dataclasses.fields(LedgerEntry))


@dataclass(slots=True)
class _Pending:
    entry: LedgerEntry
    hooks: Sequence[SettleHook]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class LedgerWriter:
    """Commits ledger entries, with the settlement writes that go with them."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self.batch_hooks: list[BatchHook] = []
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="daylite-ledger")

    async def stop(self) -> None:
        if self._task is None:
            return
        # Drain first: entries already queued belong to answered requests.
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def write(self, entry: LedgerEntry, hooks: Sequence[SettleHook] = ()) -> None:
        """Return once ``entry`` and its settlement hooks are committed."""
        pending = _Pending(entry, hooks)
        self._queue.put_nowait(pending)
        # Shielded: a client that hangs up must not cancel its own record.
        await asyncio.shield(pending.done)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH_LIMIT and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            except Exception:
                log.exception("ledger batch failed; retrying entries one by one")
                for pending in batch:
                    await self._commit_alone(pending)
                continue
            for pending in batch:
                if not pending.done.done():
                    pending.done.set_result(None)

    async def _commit(self, batch: list[_Pending]) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                ledger.insert(), [pending.entry.row() for pending in batch]
            )
            for pending in batch:
                for hook in pending.hooks:
                    await hook(connection, pending.entry)
            # Hooks that see the whole batch turn N statements into one, which
            # is what keeps derived tables (rollups, counters) off the hot path.
            entries = [pending.entry for pending in batch]
            for batch_hook in self.batch_hooks:
                await batch_hook(connection, entries)

    async def _commit_alone(self, pending: _Pending) -> None:
        try:
            await self._commit([pending])
        except Exception as exc:
            log.exception(
                "ledger entry could not be committed",
                extra={"request_id": pending.entry.id},
            )
            if not pending.done.done():
                pending.done.set_exception(exc)
        else:
            if not pending.done.done():
                pending.done.set_result(None)
