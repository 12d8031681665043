"""Wiring for many replicas: the shared Redis, revocations and drift control."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.auth import KeyStore
from daylite.revocation import DatabaseRevocationPoll
from daylite.settings import ConfigError, Settings

if TYPE_CHECKING:
    from daylite.reconcile import Reconciler
    from daylite.storage.redis import SharedRedis


@dataclass(slots=True)
class SharedState:
    """What one process runs to stay in step with the other replicas."""

    redis: SharedRedis | None
    poll: DatabaseRevocationPoll
    reconciler: Reconciler | None

    def start_reconciler(self) -> None:
        if self.reconciler is not None:
            self.reconciler.start()

    async def stop(self) -> None:
        if self.reconciler is not None:
            await self.reconciler.stop()
        await self.poll.stop()
        if self.redis is not None:
            await self.redis.close()


async def start_shared(
    settings: Settings, engine: AsyncEngine, keys: KeyStore
) -> SharedState:
    """Connect to Redis if configured, and start the revocation safety net."""
    poll = DatabaseRevocationPoll(engine, settings.revocation_poll_interval)
    if settings.redis_url is None:
        poll.start(keys)
        return SharedState(None, poll, None)
    try:
        from daylite.reconcile import Reconciler
        from daylite.revocation_redis import RedisRevocationFeed
        from daylite.storage.redis import create_shared_redis
    except ImportError:
        raise ConfigError(
            "DAYLITE_REDIS_URL is set but the redis package is not installed: "
            "pip install 'daylite[redis]'"
        ) from None
    redis = create_shared_redis(settings)
    await redis.start()
    keys.feed = RedisRevocationFeed(redis)
    poll.start(keys)
    reconciler = Reconciler(redis, engine, interval=settings.reconcile_interval)
    return SharedState(redis, poll, reconciler)
