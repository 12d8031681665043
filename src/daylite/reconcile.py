"""Drift control: bring the counters in Redis back to what the database says.

The database is the truth: a settlement is written there, inside the ledger
transaction, before Redis hears of it. A replica killed between the two
leaves Redis short of that cost, and a settlement that races a load may be
counted twice. At start and every ``DAYLITE_RECONCILE_INTERVAL`` seconds one
replica (whichever takes the lock) compares every counter with the database,
logs each drift with both values, and repairs it.

Spend is measured by reading Redis first and the database second. A
settlement in flight between its commit and its Redis update then shows up as
drift in one direction only (the database ahead), so a counter found ahead of
the database is certainly too high, and one found behind is re-measured after
a pause, when such settlements have landed, before it is raised. Repairs add
the difference (never overwrite), so settlements landing meanwhile are kept.
Credit balances carry the history ``seq`` they were read at, so a repair
simply installs the database's newer reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.billing import redis_book as credit_scripts
from daylite.billing.book import Loaded
from daylite.billing.extension import account_loader
from daylite.billing.plans import plan_for
from daylite.budgets.store import read_spent
from daylite.money import format_usd
from daylite.storage.redis import KEY_TTL_MS, SharedRedis

log = logging.getLogger(__name__)

# Long enough for a settlement caught between its commit and its Redis update
# to land; those take milliseconds.
SETTLE_WINDOW_SECONDS = 1.0
_SCAN_LIMIT = 200_000
_CHUNK = 500
_LOCK_MS = 60_000

_APPLY = """
if redis.call('HGET', KEYS[1], 'loaded') ~= ARGV[1] then return 0 end
redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
return 1
"""
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class SpendReading:
    """One customer's month: Redis's counter and the database's total."""

    key: str
    generation: str
    account_id: str
    customer_id: str
    period_start: int
    redis: int
    database: int

    @property
    def drift(self) -> int:
        return self.database - self.redis


@dataclass(frozen=True, slots=True)
class CreditReading:
    key: str
    account_id: str
    period: str
    seq: int
    balance: int
    free_used: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one reconciliation found and repaired."""

    checked: int = 0
    repaired: int = 0
    skipped: bool = False


class Reconciler:
    """Runs reconciliation at start, every ``interval`` seconds, and on request."""

    def __init__(
        self,
        shared: SharedRedis,
        engine: AsyncEngine,
        *,
        interval: float,
        settle_window: float = SETTLE_WINDOW_SECONDS,
    ) -> None:
        self._shared = shared
        self._engine = engine
        self._interval = interval
        self._window = settle_window
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="daylite-reconcile")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except RedisError as exc:
                self._shared.warn(
                    "reconciliation could not reach Redis", error=str(exc)
                )
            except Exception:
                log.exception("reconciliation failed")
            await asyncio.sleep(self._interval)

    async def run_once(self) -> Outcome:
        """Reconcile every counter, unless another replica is doing it now."""
        lock = self._shared.key("reconcile-lock")
        token = secrets.token_hex(8)
        client = self._shared.client
        if not await client.set(lock, token, nx=True, px=_LOCK_MS):
            return Outcome(skipped=True)
        try:
            spend = await self._reconcile_spend()
            credit = await self._reconcile_credits()
        finally:
            await self._shared.run(_UNLOCK, [lock], [token])
        return Outcome(spend.checked + credit.checked, spend.repaired + credit.repaired)

    async def _scan(self, kind: str) -> list[str]:
        keys: list[str] = []
        pattern = self._shared.key(kind, "*")
        async for key in self._shared.client.scan_iter(match=pattern, count=1000):
            keys.append(key)
            if len(keys) >= _SCAN_LIMIT:
                log.warning("reconciliation stopped at %d %s counters", len(keys), kind)
                break
        return keys

    # -- budget spend ----------------------------------------------------------

    async def _reconcile_spend(self) -> Outcome:
        first = await self._read_spend(await self._scan("spend"))
        repaired = 0
        for reading in first:
            if reading.drift < 0:
                repaired += await self._repair_spend(reading)
        behind = {r.key: r for r in first if r.drift > 0}
        if behind:
            # Behind may be a settlement still on its way; after the pause a
            # counter still short of the first database total has lost one.
            await asyncio.sleep(self._window)
            rows = await self._redis_rows(behind, ("loaded", "spent"))
            lost = [
                key
                for key, row in rows.items()
                if int(row[1] or 0) < behind[key].database
            ]
            for reading in await self._read_spend(lost):
                if reading.drift != 0:
                    repaired += await self._repair_spend(reading)
        return Outcome(len(first), repaired)

    async def _read_spend(self, keys: list[str]) -> list[SpendReading]:
        readings: list[SpendReading] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            # Redis first, the database second: see the module docstring.
            counters = await self._redis_rows(chunk, ("loaded", "spent", "a", "c", "p"))
            groups: dict[tuple[str, int], list[str]] = defaultdict(list)
            for row in counters.values():
                groups[(row[2], int(row[4]))].append(row[3])
            totals: dict[tuple[str, int, str], int] = {}
            for (account_id, period), customers in groups.items():
                found = await read_spent(self._engine, account_id, period, customers)
                for customer in customers:
                    totals[(account_id, period, customer)] = found.get(customer, 0)
            for key, row in counters.items():
                account_id, customer, period = row[2], row[3], int(row[4])
                readings.append(
                    SpendReading(
                        key,
                        row[0],
                        account_id,
                        customer,
                        period,
                        int(row[1] or 0),
                        totals[(account_id, period, customer)],
                    )
                )
        return readings

    async def _redis_rows(
        self, keys: Iterable[str], fields: tuple[str, ...]
    ) -> dict[str, list[str]]:
        """The fields of each loaded hash among ``keys`` (others are skipped)."""
        pipe = self._shared.client.pipeline(transaction=False)
        keys = list(keys)
        for key in keys:
            pipe.hmget(key, list(fields))
        rows = await pipe.execute()
        return {
            key: row
            for key, row in zip(keys, rows, strict=True)
            if row[0] is not None and all(value is not None for value in row[2:])
        }

    async def _repair_spend(self, reading: SpendReading) -> int:
        applied = await self._shared.run(
            _APPLY, [reading.key], [reading.generation, reading.drift]
        )
        if not applied:
            return 0
        log.warning(
            "budget spend in Redis drifted from the database: customer %s of "
            "account %s, Redis %s USD, database %s USD; repaired",
            reading.customer_id,
            reading.account_id,
            format_usd(reading.redis),
            format_usd(reading.database),
            extra={
                "account": reading.account_id,
                "customer": reading.customer_id,
                "period_start": reading.period_start,
                "redis_pico": reading.redis,
                "database_pico": reading.database,
            },
        )
        return 1

    # -- credit balances -------------------------------------------------------

    async def _reconcile_credits(self) -> Outcome:
        first = await self._read_credits(await self._scan("credit"))
        suspects: dict[str, tuple[CreditReading, Loaded]] = {}
        for reading in first:
            truth = await self._load(reading)
            if _stale(reading, truth):
                suspects[reading.key] = (reading, truth)
        repaired = 0
        if suspects:
            await asyncio.sleep(self._window)
            for reading in await self._read_credits(list(suspects)):
                # Judged against the first database reading: anything newer
                # may be a settlement that is still on its way.
                if _stale(reading, suspects[reading.key][1]):
                    repaired += await self._repair_credits(reading)
        return Outcome(len(first), repaired)

    async def _load(self, reading: CreditReading) -> Loaded:
        return await account_loader(self._engine)(reading.account_id, reading.period)

    async def _read_credits(self, keys: list[str]) -> list[CreditReading]:
        readings: list[CreditReading] = []
        prefix = self._shared.key("credit", "")
        fields = ("loaded", "seq", "balance", "period", "free_used")
        for start in range(0, len(keys), _CHUNK):
            rows = await self._redis_rows(keys[start : start + _CHUNK], fields)
            for key, row in rows.items():
                readings.append(
                    CreditReading(
                        key,
                        key.removeprefix(prefix),
                        row[3],
                        int(row[1]),
                        int(row[2]),
                        int(row[4]),
                    )
                )
        return readings

    async def _repair_credits(self, reading: CreditReading) -> int:
        loaded = await self._load(reading)
        truth = loaded.snapshot
        args = [
            loaded.plan,
            plan_for(loaded.plan).free_requests_per_month,
            reading.period,
            truth.seq,
            truth.balance_pico,
            loaded.free_used,
            KEY_TTL_MS,
        ]
        keys = credit_scripts.credit_keys(self._shared, reading.account_id)
        await self._shared.run(credit_scripts.LOAD, keys, args)
        log.warning(
            "credit balance in Redis drifted from the database: account %s, "
            "Redis %s USD (seq %d, %d free requests), database %s USD (seq %d, "
            "%d free requests); repaired",
            reading.account_id,
            format_usd(reading.balance),
            reading.seq,
            reading.free_used,
            format_usd(truth.balance_pico),
            truth.seq,
            loaded.free_used,
            extra={"account": reading.account_id},
        )
        return 1


def _stale(reading: CreditReading, truth: Loaded) -> bool:
    """Whether Redis's copy is older than (or differs from) the database's."""
    snapshot = truth.snapshot
    return (
        snapshot.seq > reading.seq
        or (snapshot.seq == reading.seq and snapshot.balance_pico != reading.balance)
        or truth.free_used > reading.free_used
    )
