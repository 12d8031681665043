"""The Redis that replicas share: one client, key names, scripts, and data-loss checks.

Everything replicas must agree on at admission time (budget reservations,
credit holds, key revocations) lives under one key prefix, changed only by Lua
scripts, so that each check-and-reserve is one atomic step for all replicas.

A marker key records which Redis "instance" the reservations live in. If Redis
comes back empty (a restart without persistence, a flush), the first process
to notice writes a new marker and pauses admission for a short grace period,
during which every running replica, having seen the marker change, writes the
reservations it holds back into Redis. Without that, requests already in
flight would be invisible to new admissions and a cap could be overspent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from daylite.errors import ServiceUnavailableError
from daylite.settings import ConfigError, Settings

log = logging.getLogger(__name__)

# A month is at most 31 days; a hash idle for longer belongs to a past month.
KEY_TTL_MS = 35 * 24 * 3600 * 1000
# Settlements waiting for Redis to come back; past this many they are dropped
# and the reconciler repairs the counters from the database.
RETRY_LIMIT = 10_000

Hook = Callable[[], Awaitable[None]]

_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
# Every replica checks the marker once a second, so three seconds lets all
# of them write their reservations back before anyone admits again.
RECOVERY_GRACE_MS = 3_000
WATCH_SECONDS = 1.0
POOL_SIZE = 64
_LOG_EVERY_SECONDS = 10.0

# Money is integer pico-dollars. Lua numbers are doubles, exact only below
# 2**53 (about 9,000 USD in pico-dollars), so scripts never do arithmetic on
# whole amounts: Redis adds them exactly (HINCRBY, 64-bit), and comparisons
# split each amount into two exact limbs, USD and the pico remainder.
LUA_MONEY = """
local BASE = 1000000000000
local function big(text)
  text = text or '0'
  local negative = string.sub(text, 1, 1) == '-'
  if negative then text = string.sub(text, 2) end
  local n = #text
  local hi, lo = 0, tonumber(text)
  if n > 12 then
    hi = tonumber(string.sub(text, 1, n - 12))
    lo = tonumber(string.sub(text, n - 11))
  end
  if negative then
    hi, lo = -hi, -lo
    if lo < 0 then lo = lo + BASE; hi = hi - 1 end
  end
  return {hi, lo}
end
local function minus(a, b)
  local hi, lo = a[1] - b[1], a[2] - b[2]
  if lo < 0 then lo = lo + BASE; hi = hi - 1 end
  return {hi, lo}
end
local function less(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end
local function text_of(a)
  if a[1] == 0 then return string.format('%d', a[2]) end
  return string.format('%d%012d', a[1], a[2])
end
local function negated(text)
  if string.sub(text, 1, 1) == '-' then return string.sub(text, 2) end
  if text == '0' then return '0' end
  return '-' .. text
end
"""

# Admission scripts start with this: KEYS[1] is the marker, KEYS[2] the
# recovery pause, ARGV[1] the marker this process last saw.
LUA_GUARD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {'lost'} end
local pause = redis.call('PTTL', KEYS[2])
if pause > 0 then return {'recovering', tostring(pause)} end
"""


def redis_unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError(
        "Admission is paused: the shared reservation store (Redis, "
        "DAYLITE_REDIS_URL) cannot be reached, and admitting without it could "
        "overspend a budget or a credit balance. Retry in a few seconds."
    )


class SharedRedis:
    """The connection to the shared Redis, with this deployment's key prefix."""

    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.instance: str | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._resets: list[Hook] = []
        self._ticks: list[Hook] = []
        self._recovery = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._logged: dict[str, float] = {}

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def script(self, source: str) -> AsyncScript:
        """The script for ``source``, registered with the client once."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return script

    def on_reset(self, hook: Hook) -> None:
        """Run ``hook`` after Redis lost its data, to write back what it held."""
        self._resets.append(hook)

    def every_second(self, hook: Hook) -> None:
        """Run ``hook`` about once a second while Redis answers (retries)."""
        self._ticks.append(hook)

    # -- lifecycle ----------------------------------------------------------

    async def start(self) -> None:
        """Adopt the instance marker and watch it; tolerates a Redis still down."""
        try:
            marker = self.key("instance")
            await self.client.set(marker, secrets.token_hex(8), nx=True)
            self.instance = await self.get(marker)
            await self._check_eviction()
        except RedisError as exc:
            # Serving 503s until Redis answers beats a crash loop, and the
            # watcher adopts the marker as soon as it can.
            log.error("Redis cannot be reached at start: %s", exc)
        self._watcher = asyncio.create_task(self._watch(), name="daylite-redis")

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.client.aclose()
        await self.client.connection_pool.disconnect()

    async def _check_eviction(self) -> None:
        try:
            config = await self.client.config_get("maxmemory*")
        except RedisError:
            return
        policy = config.get("maxmemory-policy", "noeviction")
        if config.get("maxmemory", "0") != "0" and policy != "noeviction":
            log.warning(
                "Redis may evict keys (maxmemory-policy %s); an evicted "
                "reservation can let a budget be overspent: set "
                "maxmemory-policy noeviction",
                policy,
            )

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                if await self.get(self.key("instance")) != self.instance:
                    await self.recover()
                for hook in self._ticks:
                    await hook()
            except RedisError as exc:
                self.warn("Redis cannot be reached", error=str(exc))
            except Exception:
                log.exception("Redis upkeep failed")

    # -- calls ---------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        value = await self.client.get(key)
        return None if value is None else str(value)

    async def run(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a script; Redis errors propagate (callers decide what they mean)."""
        return await self.script(source)(keys=list(keys), args=list(args))

    async def admit(
        self, source: str, keys: Sequence[str], args: Sequence[Any]
    ) -> list[str]:
        """Run an admission script (one that starts with ``LUA_GUARD``).

        Any failure to reach Redis refuses the request with a 503: admitting
        without the shared book could overspend.
        """
        guard = [self.key("instance"), self.key("recovering")]
        for _ in range(2):
            try:
                reply = await self.run(
                    source, [*guard, *keys], [self.instance or "", *args]
                )
            except RedisError as exc:
                self.warn("Redis cannot be reached; refusing", error=str(exc))
                raise redis_unavailable() from None
            if reply[0] == "lost":
                await self._recover_or_refuse()
                continue
            if reply[0] == "recovering":
                raise ServiceUnavailableError(
                    "Admission is paused for a few seconds: the shared reservation "
                    "store (Redis) restarted without its data and replicas are "
                    f"writing back their reservations. Retry in {reply[1]} ms."
                )
            return list(reply)
        raise redis_unavailable()

    async def _recover_or_refuse(self) -> None:
        try:
            await self.recover()
        except RedisError:
            raise redis_unavailable() from None

    async def recover(self) -> None:
        """Catch up with a Redis that lost its data (or that another replica reset)."""
        async with self._recovery:
            marker = self.key("instance")
            current = await self.get(marker)
            if current is not None and current == self.instance:
                return
            if current is None:
                if await self.client.set(marker, secrets.token_hex(8), nx=True):
                    await self.client.set(
                        self.key("recovering"), "1", px=RECOVERY_GRACE_MS
                    )
                    log.error(
                        "Redis lost its data (restarted without persistence, "
                        "flushed, or evicted keys); admission pauses for %d ms "
                        "while replicas write back their reservations",
                        RECOVERY_GRACE_MS,
                    )
                current = await self.get(marker)
            for hook in self._resets:
                await hook()
            self.instance = current

    def warn(self, message: str, **extra: Any) -> None:
        """Log ``message`` at most once per ten seconds (outages repeat a lot)."""
        now = time.monotonic()
        if now - self._logged.get(message, -_LOG_EVERY_SECONDS) >= _LOG_EVERY_SECONDS:
            self._logged[message] = now
            log.error(message, extra=extra)


def _client(settings: Settings, url: str) -> Redis:
    # A burst waits for a pooled connection rather than failing on the spot;
    # only a wait longer than the timeout turns into a 503.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=POOL_SIZE,
        timeout=settings.redis_timeout,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        # One immediate retry reconnects a pooled connection that a Redis
        # restart closed; more would only delay the 503 during an outage.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)


def create_shared_redis(settings: Settings) -> SharedRedis:
    """The shared Redis named by ``settings.redis_url`` (which must be set)."""
    url = settings.redis_url
    assert url is not None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"setting redis_url = {url!r} is not valid: expected redis://host:port/db"
        )
    if not _PREFIX.fullmatch(settings.redis_prefix):
        raise ConfigError(
            f"setting redis_prefix = {settings.redis_prefix!r} is not valid: use "
            "1-64 letters, digits, '.', '_' or '-'"
        )
    return SharedRedis(_client(settings, url), settings.redis_prefix)
