"""Key revocation across processes: the database safety net.

Each process keeps valid keys in memory (``KeyStore``). A revocation made
through a process takes effect there at once; with Redis, every other replica
hears of it before its next request (``daylite.revocation_redis``). What
neither covers, revocations made outside a running gateway (``daylite keys
revoke``, SQL) or whose Redis update failed, this poll catches: every
``DAYLITE_REVOCATION_POLL_INTERVAL`` seconds it asks the database whether any
key still in memory has been revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.auth import KeyStore
from daylite.storage.tables import api_keys

log = logging.getLogger(__name__)

_CHUNK = 500


class DatabaseRevocationPoll:
    """Forgets cached keys that the database says are revoked, every few seconds."""

    def __init__(self, engine: AsyncEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._revoked_count: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, keys: KeyStore) -> None:
        self._task = asyncio.create_task(self._loop(keys), name="daylite-revocations")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self, keys: KeyStore) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll(keys)
            except Exception:
                log.exception("could not check the database for revoked keys")

    async def poll(self, keys: KeyStore) -> None:
        # Counting revoked keys is one cheap query; only a change in the count
        # is worth asking which cached keys it concerns.
        query = select(func.count()).where(api_keys.c.revoked_at.is_not(None))
        async with self._engine.connect() as connection:
            count = int((await connection.execute(query)).scalar_one())
            if count == self._revoked_count:
                return
            cached = keys.cached_key_ids()
            for start in range(0, len(cached), _CHUNK):
                chunk = cached[start : start + _CHUNK]
                revoked = select(api_keys.c.id).where(
                    api_keys.c.id.in_(chunk), api_keys.c.revoked_at.is_not(None)
                )
                for key_id in (await connection.execute(revoked)).scalars():
                    keys.forget(key_id)
        self._revoked_count = count
