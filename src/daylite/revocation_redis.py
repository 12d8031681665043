"""Revocations through Redis: one GET per request tells a replica what to forget.

A revocation bumps a shared epoch and records the key id under it, in one
script. Before authenticating anything, every process reads the epoch; one
that sees it move forgets the keys revoked since it last looked. So a key
revoked through any replica is refused by every replica from its very next
request. The database poll in ``daylite.revocation`` remains as a safety net.
"""

from __future__ import annotations

import logging
from typing import cast

from redis.exceptions import RedisError

from daylite.auth import KeyStore
from daylite.storage.redis import SharedRedis

log = logging.getLogger(__name__)

_KEEP = 10_000

# KEYS: epoch, revoked ids by epoch. ARGV: key id.
_PUBLISH = f"""
local epoch = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], epoch, ARGV[1])
if redis.call('ZCARD', KEYS[2]) > {_KEEP} then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -{_KEEP + 1})
end
return epoch
"""


class RedisRevocationFeed:
    """Shares revocations through Redis; checked before every authentication."""

    def __init__(self, shared: SharedRedis) -> None:
        self._shared = shared
        self._epoch_key = shared.key("revocations", "epoch")
        self._ids_key = shared.key("revocations", "ids")
        self._seen: int | None = None
        self._unsent: list[str] = []
        shared.every_second(self._resend)

    async def refresh(self, keys: KeyStore) -> None:
        """Forget every key revoked anywhere since this process last looked."""
        try:
            raw = await self._shared.get(self._epoch_key)
        except RedisError as exc:
            # Without the feed the cache cannot be trusted: the database
            # answers every request until Redis is back.
            self._shared.warn("revocation feed unreachable", error=str(exc))
            keys.forget_all()
            self._seen = None
            return
        epoch = int(raw or 0)
        seen = self._seen
        if seen is not None and epoch == seen:
            return
        if seen is None or epoch < seen:
            # First look, or Redis lost its data: nothing cached can be vouched for.
            keys.forget_all()
            self._seen = epoch
            return
        await self._forget_since(keys, seen, epoch)
        self._seen = max(epoch, self._seen or 0)

    async def _forget_since(self, keys: KeyStore, seen: int, epoch: int) -> None:
        revoked = await self._shared.client.zrangebyscore(
            self._ids_key, f"({seen}", epoch, withscores=True
        )
        rows = cast(list[tuple[str, float]], revoked)
        pairs = [(str(key_id), int(score)) for key_id, score in rows]
        if not pairs or pairs[0][1] > seen + 1:
            # Older entries were trimmed away; start from a clean cache.
            keys.forget_all()
            return
        for key_id, _ in pairs:
            keys.forget(key_id)

    async def publish(self, key_id: str) -> None:
        """Tell every replica; if Redis is away, retry each second until it answers."""
        try:
            await self._shared.run(_PUBLISH, [self._epoch_key, self._ids_key], [key_id])
        except RedisError as exc:
            self._shared.warn(
                "could not publish a revocation; will retry", error=str(exc)
            )
            self._unsent.append(key_id)

    async def _resend(self) -> None:
        while self._unsent:
            key_id = self._unsent[0]
            await self._shared.run(_PUBLISH, [self._epoch_key, self._ids_key], [key_id])
            self._unsent.pop(0)
