"""The reservation book in Redis, shared by every replica of the gateway.

One hash per customer and month holds ``spent`` (settled pico-dollars),
``reserved`` (held by requests in flight) and one ``t:<ticket>`` field per
hold; a sorted set beside it orders the holds by expiry. The check
"spent + reserved + this request <= cap" and the hold are one Lua script, so
no two replicas can both take the last of a cap.

``spent`` is loaded from the database the first time a hash is used.
Settlements that reach Redis before the load are kept and the loaded total is
added to them, so a settlement racing the load may count twice (refusing a
little early) but can never be missed. A replica that dies between the ledger
commit and the Redis settlement leaves its hold to expire after the TTL and
its cost to the reconciler (``daylite.reconcile``), which repairs the drift.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from typing import Any

from redis.exceptions import RedisError

from daylite.budgets.reservations import (
    Admission,
    SpendKey,
    SpentLoader,
    Tally,
    Ticket,
)
from daylite.clock import Clock
from daylite.storage.redis import (
    KEY_TTL_MS,
    LUA_GUARD,
    LUA_MONEY,
    RETRY_LIMIT,
    SharedRedis,
    redis_unavailable,
)

log = logging.getLogger(__name__)


_EXPIRE = """
local function expire(h, z, now)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  for _, id in ipairs(gone) do
    local amount = redis.call('HGET', h, 't:' .. id)
    if amount then
      redis.call('HINCRBY', h, 'reserved', negated(amount))
      redis.call('HDEL', h, 't:' .. id)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', now) end
end
local function keep(ttl)
  redis.call('PEXPIRE', KEYS[#KEYS - 1], ttl)
  redis.call('PEXPIRE', KEYS[#KEYS], ttl)
end
"""

# KEYS: marker, recovering, hash, holds.
# ARGV: instance, want, least, cap ('' for none), now, expires, ticket, key ttl.
RESERVE = (
    LUA_MONEY
    + _EXPIRE
    + LUA_GUARD
    + """
local h, z = KEYS[3], KEYS[4]
if redis.call('HEXISTS', h, 'loaded') == 0 then return {'load'} end
expire(h, z, ARGV[5])
local spent = redis.call('HGET', h, 'spent') or '0'
local reserved = redis.call('HGET', h, 'reserved') or '0'
local granted = ARGV[2]
if ARGV[4] ~= '' then
  local room = minus(minus(big(ARGV[4]), big(spent)), big(reserved))
  if less(room, big(ARGV[3])) then return {'no', spent, reserved} end
  if less(room, big(ARGV[2])) then granted = text_of(room) end
end
redis.call('HSET', h, 't:' .. ARGV[7], granted)
redis.call('HINCRBY', h, 'reserved', granted)
redis.call('ZADD', z, ARGV[6], ARGV[7])
keep(ARGV[8])
return {'ok', granted, spent, redis.call('HGET', h, 'reserved')}
"""
)

# KEYS: hash, holds. ARGV: ticket ('' for none), cost, key ttl.
SETTLE = (
    LUA_MONEY
    + _EXPIRE
    + """
local h, z = KEYS[1], KEYS[2]
local found = 1
if ARGV[1] ~= '' then
  local amount = redis.call('HGET', h, 't:' .. ARGV[1])
  if amount then
    redis.call('HINCRBY', h, 'reserved', negated(amount))
    redis.call('HDEL', h, 't:' .. ARGV[1])
  else
    found = 0
  end
  redis.call('ZREM', z, ARGV[1])
end
if ARGV[2] ~= '0' then redis.call('HINCRBY', h, 'spent', ARGV[2]) end
keep(ARGV[3])
return found
"""
)

# KEYS: hash, holds. ARGV: spent from the database, account, customer,
# period start, generation, key ttl. Only the first load of a hash counts.
LOAD = (
    LUA_MONEY
    + _EXPIRE
    + """
local h = KEYS[1]
if redis.call('HSETNX', h, 'loaded', ARGV[5]) == 1 then
  if ARGV[1] ~= '0' then redis.call('HINCRBY', h, 'spent', ARGV[1]) end
  redis.call('HSET', h, 'a', ARGV[2], 'c', ARGV[3], 'p', ARGV[4])
end
keep(ARGV[6])
return 1
"""
)

# KEYS: hash, holds. ARGV: now. Spent and reserved, or nothing if not loaded.
TALLY = (
    LUA_MONEY
    + _EXPIRE
    + """
local h, z = KEYS[1], KEYS[2]
if redis.call('HEXISTS', h, 'loaded') == 0 then return {} end
expire(h, z, ARGV[1])
return {redis.call('HGET', h, 'spent') or '0', redis.call('HGET', h, 'reserved') or '0'}
"""
)

# KEYS: hash, holds. ARGV: ticket, amount, expires, key ttl.
WRITE_BACK = (
    LUA_MONEY
    + _EXPIRE
    + """
local h, z = KEYS[1], KEYS[2]
if redis.call('HSETNX', h, 't:' .. ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', h, 'reserved', ARGV[2])
  redis.call('ZADD', z, ARGV[3], ARGV[1])
end
keep(ARGV[4])
return 1
"""
)


def spend_keys(shared: SharedRedis, key: SpendKey) -> list[str]:
    """The hash and the holds set of one customer's month."""
    name = f"{key.account_id}:{key.period_start}:{key.customer_id}"
    return [shared.key("spend", name), shared.key("spend-holds", name)]


class RedisReservationBook:
    """A ``ReservationBook`` whose state every replica shares through Redis."""

    def __init__(
        self,
        shared: SharedRedis,
        load: SpentLoader,
        clock: Clock,
        ttl_seconds: float,
    ) -> None:
        self._shared = shared
        self._load = load
        self._clock = clock
        self._ttl_us = int(ttl_seconds * 1_000_000)
        # Ticket numbers are random so that two replicas never pick the same.
        self._random = random.Random()
        self._live: dict[int, tuple[SpendKey, int, int]] = {}
        self._retries: list[tuple[str, list[str], list[Any]]] = []
        self._loading: dict[SpendKey, asyncio.Future[None]] = {}
        shared.on_reset(self._write_back)
        shared.every_second(self._replay)

    async def reserve(
        self, key: SpendKey, *, want: int, least: int, cap: int | None
    ) -> Admission:
        now = self._clock.now_us()
        number = self._random.getrandbits(62)
        expires = now + self._ttl_us
        limit = "" if cap is None else str(cap)
        args = [want, least, limit, now, expires, number, KEY_TTL_MS]
        keys = spend_keys(self._shared, key)
        for _ in range(3):
            reply = await self._shared.admit(RESERVE, keys, args)
            if reply[0] == "load":
                await self._fill(key)
                continue
            if reply[0] == "no":
                return Admission(None, int(reply[1]), int(reply[2]))
            amount = int(reply[1])
            self._live[number] = (key, amount, expires)
            return Admission(Ticket(key, number, amount), int(reply[2]), int(reply[3]))
        raise redis_unavailable()

    async def _fill(self, key: SpendKey) -> None:
        # One database read per key at a time: a burst of first requests shares it.
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load_into_redis(key))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        await asyncio.shield(loading)

    async def _load_into_redis(self, key: SpendKey) -> None:
        spent = await self._load(key)
        args = [
            spent,
            key.account_id,
            key.customer_id,
            key.period_start,
            secrets.token_hex(8),
            KEY_TTL_MS,
        ]
        try:
            await self._shared.run(LOAD, spend_keys(self._shared, key), args)
        except RedisError:
            raise redis_unavailable() from None

    async def settle(self, key: SpendKey, ticket: Ticket | None, cost: int) -> None:
        if ticket is not None:
            self._live.pop(ticket.number, None)
        elif cost == 0:
            return
        number = "" if ticket is None else str(ticket.number)
        found = await self._send(SETTLE, spend_keys(self._shared, key), [number, cost])
        if ticket is not None and found == 0:
            log.warning(
                "a reservation expired before its request settled; spend may "
                "pass the cap: raise DAYLITE_RESERVATION_TTL above the longest "
                "request",
                extra={"customer": key.customer_id},
            )

    async def release(self, ticket: Ticket) -> None:
        self._live.pop(ticket.number, None)
        keys = spend_keys(self._shared, ticket.key)
        await self._send(SETTLE, keys, [ticket.number, 0])

    async def tally(self, key: SpendKey) -> Tally | None:
        keys = spend_keys(self._shared, key)
        try:
            reply = await self._shared.run(TALLY, keys, [self._clock.now_us()])
        except RedisError:
            # The API then shows the stored spend, which is all that is known.
            return None
        if not reply:
            return None
        return Tally(int(reply[0]), int(reply[1]))

    async def _send(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """Run a settling script; if Redis is away, keep it for a later replay."""
        args = [*args, KEY_TTL_MS]
        try:
            return await self._shared.run(source, keys, args)
        except RedisError as exc:
            self._shared.warn("could not settle in Redis; will retry", error=str(exc))
            if len(self._retries) < RETRY_LIMIT:
                self._retries.append((source, keys, args))
            return None

    async def _replay(self) -> None:
        """Send settlements that failed while Redis was away (called each second)."""
        while self._retries:
            source, keys, args = self._retries[0]
            await self._shared.run(source, keys, args)
            self._retries.pop(0)

    async def _write_back(self) -> None:
        """After Redis lost its data: hold again what this replica's requests hold."""
        now = self._clock.now_us()
        for number, (key, amount, expires) in list(self._live.items()):
            if expires > now:
                args = [number, amount, expires, KEY_TTL_MS]
                await self._shared.run(WRITE_BACK, spend_keys(self._shared, key), args)
