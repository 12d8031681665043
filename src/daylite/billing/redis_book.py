"""The credit book in Redis, shared by every replica of the gateway.

Per account, one hash holds a copy of the plan, the free-request allowance,
the month's free requests used, the balance and the history ``seq`` it was
read at, plus ``reserved`` (credits held by requests in flight) and one
``c:<id>`` field per credit hold. Two sorted sets order the credit holds and
the free-request holds by expiry. "A free request is left" or "worst case <=
balance - reserved", and the hold, are one Lua script for all replicas.

The database stays the truth for the balance: the copy is replaced only by a
reading with a higher ``seq`` (so a slow reload never undoes a newer debit),
and it is read again when older than ``refresh_seconds`` so that grants made
outside the gateway (``daylite credits grant``) are seen. Hold lifetimes are
measured by Redis's own clock, the one clock all replicas share.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

from redis.exceptions import RedisError

from daylite.billing.book import (
    Loader,
    Reservation,
    Settlement,
    refusal,
)
from daylite.billing.credits import Snapshot
from daylite.billing.plans import plan_for
from daylite.storage.redis import (
    KEY_TTL_MS,
    LUA_GUARD,
    LUA_MONEY,
    RETRY_LIMIT,
    SharedRedis,
    redis_unavailable,
)

log = logging.getLogger(__name__)


_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function expire(h, holds, free, now)
  local gone = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, id in ipairs(gone) do
    local amount = redis.call('HGET', h, 'c:' .. id)
    if amount then
      redis.call('HINCRBY', h, 'reserved', negated(amount))
      redis.call('HDEL', h, 'c:' .. id)
    end
  end
  if #gone > 0 then redis.call('ZREMRANGEBYSCORE', holds, '-inf', now) end
  redis.call('ZREMRANGEBYSCORE', free, '-inf', now)
end
local function drop(h, holds, free, id)
  local amount = redis.call('HGET', h, 'c:' .. id)
  if amount then
    redis.call('HINCRBY', h, 'reserved', negated(amount))
    redis.call('HDEL', h, 'c:' .. id)
  end
  redis.call('ZREM', holds, id)
  redis.call('ZREM', free, id)
end
local function learn(h, seq, balance)
  if seq ~= '' and tonumber(seq) > tonumber(redis.call('HGET', h, 'seq') or '-1') then
    redis.call('HSET', h, 'seq', seq, 'balance', balance)
  end
end
local function keep(ttl)
  for i = #KEYS - 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
end
"""

# KEYS: marker, recovering, hash, holds, free. ARGV: instance, worst case,
# period, id, hold ttl (ms), refresh (ms), '1' if just loaded, key ttl.
RESERVE = (
    LUA_MONEY
    + _COMMON
    + LUA_GUARD
    + """
local h, holds, free = KEYS[3], KEYS[4], KEYS[5]
local now = now_ms()
local state = redis.call('HMGET', h, 'loaded', 'period', 'loaded_at')
if state[1] ~= '1' or state[2] ~= ARGV[3] then return {'load'} end
if ARGV[7] ~= '1' and now - tonumber(state[3] or '0') >= tonumber(ARGV[6]) then
  return {'load'}
end
expire(h, holds, free, now)
local allowance = redis.call('HGET', h, 'allowance') or '0'
local used = tonumber(redis.call('HGET', h, 'free_used') or '0')
if used + redis.call('ZCARD', free) < tonumber(allowance) then
  redis.call('ZADD', free, now + tonumber(ARGV[5]), ARGV[4])
  keep(ARGV[8])
  return {'free', allowance}
end
local balance = redis.call('HGET', h, 'balance') or '0'
local reserved = redis.call('HGET', h, 'reserved') or '0'
if less(minus(big(balance), big(reserved)), big(ARGV[2])) then
  return {'no', balance, reserved}
end
redis.call('HSET', h, 'c:' .. ARGV[4], ARGV[2])
redis.call('HINCRBY', h, 'reserved', ARGV[2])
redis.call('ZADD', holds, now + tonumber(ARGV[5]), ARGV[4])
keep(ARGV[8])
return {'credit'}
"""
)

# KEYS: hash, holds, free. ARGV: plan, allowance, period, seq, balance,
# free used, key ttl.
LOAD = (
    LUA_MONEY
    + _COMMON
    + """
local h = KEYS[1]
if tonumber(ARGV[4]) >= tonumber(redis.call('HGET', h, 'seq') or '-1') then
  redis.call('HSET', h, 'seq', ARGV[4], 'balance', ARGV[5])
end
if redis.call('HGET', h, 'period') ~= ARGV[3] then
  redis.call('HSET', h, 'period', ARGV[3], 'free_used', ARGV[6])
elseif tonumber(ARGV[6]) > tonumber(redis.call('HGET', h, 'free_used') or '0') then
  redis.call('HSET', h, 'free_used', ARGV[6])
end
redis.call('HSET', h, 'plan', ARGV[1], 'allowance', ARGV[2], 'loaded', '1',
  'loaded_at', now_ms())
keep(ARGV[7])
return 1
"""
)

# KEYS: hash, holds, free. ARGV: id ('' for none), seq ('' for none), balance,
# period, free used ('' for none), key ttl.
SETTLE = (
    LUA_MONEY
    + _COMMON
    + """
local h, holds, free = KEYS[1], KEYS[2], KEYS[3]
if ARGV[1] ~= '' then drop(h, holds, free, ARGV[1]) end
learn(h, ARGV[2], ARGV[3])
if ARGV[5] ~= '' and redis.call('HGET', h, 'period') == ARGV[4]
    and tonumber(ARGV[5]) > tonumber(redis.call('HGET', h, 'free_used') or '0') then
  redis.call('HSET', h, 'free_used', ARGV[5])
end
keep(ARGV[6])
return 1
"""
)

# KEYS: hash, holds, free. Credits held now.
RESERVED = (
    LUA_MONEY
    + _COMMON
    + """
expire(KEYS[1], KEYS[2], KEYS[3], now_ms())
return redis.call('HGET', KEYS[1], 'reserved') or '0'
"""
)

# KEYS: hash, holds, free. ARGV: id, amount ('' for a free request), hold ttl,
# key ttl.
WRITE_BACK = (
    LUA_MONEY
    + _COMMON
    + """
local h, holds, free = KEYS[1], KEYS[2], KEYS[3]
local expires = now_ms() + tonumber(ARGV[3])
if ARGV[2] == '' then
  redis.call('ZADD', free, 'NX', expires, ARGV[1])
elseif redis.call('HSETNX', h, 'c:' .. ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', h, 'reserved', ARGV[2])
  redis.call('ZADD', holds, expires, ARGV[1])
end
keep(ARGV[4])
return 1
"""
)


def credit_keys(shared: SharedRedis, account_id: str) -> list[str]:
    """The hash, the credit holds and the free-request holds of one account."""
    return [
        shared.key("credit", account_id),
        shared.key("credit-holds", account_id),
        shared.key("credit-free", account_id),
    ]


class RedisCreditBook:
    """A ``CreditBook`` whose holds every replica shares through Redis."""

    def __init__(
        self,
        shared: SharedRedis,
        loader: Loader,
        *,
        ttl: float,
        refresh_seconds: float,
    ) -> None:
        self._shared = shared
        self._loader = loader
        self._ttl_ms = max(1, int(ttl * 1000))
        self._refresh_ms = max(1, int(refresh_seconds * 1000))
        self._random = random.Random()
        self._live: dict[int, Reservation] = {}
        self._retries: list[tuple[str, list[str], list[Any]]] = []
        self._loading: dict[tuple[str, str], asyncio.Future[None]] = {}
        shared.on_reset(self._write_back)
        shared.every_second(self._replay)

    async def reserve(
        self, account_id: str, worst_case_pico: int, period: str
    ) -> Reservation:
        number = self._random.getrandbits(62)
        keys = credit_keys(self._shared, account_id)
        fresh = "0"
        for _ in range(3):
            args = [
                worst_case_pico,
                period,
                number,
                self._ttl_ms,
                self._refresh_ms,
                fresh,
                KEY_TTL_MS,
            ]
            reply = await self._shared.admit(RESERVE, keys, args)
            if reply[0] == "load":
                await self._fill(account_id, period)
                fresh = "1"
                continue
            if reply[0] == "no":
                raise refusal(worst_case_pico, int(reply[1]), int(reply[2]))
            if reply[0] == "free":
                reservation = Reservation(
                    number, account_id, period, True, 0, int(reply[1])
                )
            else:
                reservation = Reservation(
                    number, account_id, period, False, worst_case_pico
                )
            self._live[number] = reservation
            return reservation
        raise redis_unavailable()

    async def _fill(self, account_id: str, period: str) -> None:
        # One database read per account at a time: a burst shares it.
        key = (account_id, period)
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load_into_redis(account_id, period))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        await asyncio.shield(loading)

    async def _load_into_redis(self, account_id: str, period: str) -> None:
        loaded = await self._loader(account_id, period)
        allowance = plan_for(loaded.plan).free_requests_per_month
        args = [
            loaded.plan,
            allowance,
            period,
            loaded.snapshot.seq,
            loaded.snapshot.balance_pico,
            loaded.free_used,
            KEY_TTL_MS,
        ]
        try:
            await self._shared.run(LOAD, credit_keys(self._shared, account_id), args)
        except RedisError:
            raise redis_unavailable() from None

    async def settle(self, reservation: Reservation, settlement: Settlement) -> None:
        self._live.pop(reservation.id, None)
        snapshot = settlement.snapshot
        free_used = settlement.free_used
        args = [
            reservation.id,
            "" if snapshot is None else snapshot.seq,
            "" if snapshot is None else snapshot.balance_pico,
            reservation.period,
            "" if free_used is None else free_used,
        ]
        await self._send(SETTLE, reservation.account_id, args)

    async def release(self, reservation: Reservation) -> None:
        self._live.pop(reservation.id, None)
        args = [reservation.id, "", "", reservation.period, ""]
        await self._send(SETTLE, reservation.account_id, args)

    async def observe(self, account_id: str, snapshot: Snapshot) -> None:
        args = ["", snapshot.seq, snapshot.balance_pico, "", ""]
        await self._send(SETTLE, account_id, args)

    async def reserved_pico(self, account_id: str) -> int:
        keys = credit_keys(self._shared, account_id)
        try:
            return int(await self._shared.run(RESERVED, keys, []))
        except RedisError:
            return 0

    async def forget(self, account_id: str) -> None:
        # Every replica reads plan and balance again before the next request.
        hash_key = credit_keys(self._shared, account_id)[0]
        try:
            if await self._shared.client.exists(hash_key):
                await self._shared.client.hset(hash_key, "loaded_at", 0)
        except RedisError as exc:
            self._shared.warn("could not mark an account for reload", error=str(exc))

    async def _send(self, source: str, account_id: str, args: list[Any]) -> None:
        keys = credit_keys(self._shared, account_id)
        args = [*args, KEY_TTL_MS]
        try:
            await self._shared.run(source, keys, args)
        except RedisError as exc:
            self._shared.warn("could not settle in Redis; will retry", error=str(exc))
            if len(self._retries) < RETRY_LIMIT:
                self._retries.append((source, keys, args))

    async def _replay(self) -> None:
        while self._retries:
            source, keys, args = self._retries[0]
            await self._shared.run(source, keys, args)
            self._retries.pop(0)

    async def _write_back(self) -> None:
        """After Redis lost its data: hold again what this replica's requests hold."""
        for reservation in list(self._live.values()):
            amount = "" if reservation.free else reservation.amount_pico
            args = [reservation.id, amount, self._ttl_ms, KEY_TTL_MS]
            keys = credit_keys(self._shared, reservation.account_id)
            await self._shared.run(WRITE_BACK, keys, args)
