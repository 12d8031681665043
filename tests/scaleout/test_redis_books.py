"""The Redis books, reconciler and revocation feed, driven directly on a real Redis.

Two book instances on one key prefix stand for two replicas. Amounts go far
past 2**53 pico-dollars (about 9,007 USD), where Lua's floating-point numbers
would start rounding, to show that every comparison stays exact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.accounts import create_account
from daylite.auth import KeyStore
from daylite.billing.book import Loaded
from daylite.billing.credits import Snapshot, add_credits
from daylite.billing.extension import account_loader
from daylite.billing.redis_book import RedisCreditBook
from daylite.budgets.redis_book import RedisReservationBook
from daylite.budgets.reservations import SpendKey
from daylite.budgets.store import add_spent
from daylite.clock import FixedClock
from daylite.errors import (
    AuthenticationError,
    InsufficientCreditsError,
    ServiceUnavailableError,
)
from daylite.reconcile import Reconciler
from daylite.revocation_redis import RedisRevocationFeed
from daylite.settings import Settings
from daylite.storage import redis as shared_redis
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.redis import SharedRedis, create_shared_redis
from tests.scaleout.services import fresh_prefix
from tests.support.gateway import free_port

T = TypeVar("T")
USD = 10**12
KEY = SpendKey("acct_1", "big", 0)


@pytest.fixture
def prefix() -> Iterator[tuple[str, str]]:
    with fresh_prefix() as found:
        yield found


@asynccontextmanager
async def connected(url: str, prefix: str) -> AsyncIterator[SharedRedis]:
    shared = create_shared_redis(Settings(redis_url=url, redis_prefix=prefix))
    await shared.start()
    try:
        yield shared
    finally:
        await shared.close()


def loader(spent: int) -> Callable[[SpendKey], Awaitable[int]]:
    async def load(key: SpendKey) -> int:
        return spent

    return load


def run(body: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(body())


def test_a_cap_past_2_to_the_53_pico_dollars_admits_to_the_last_pico(
    prefix: tuple[str, str],
) -> None:
    cap = 50_000 * USD
    clock = FixedClock(1_000)

    async def body() -> list[Any]:
        async with connected(*prefix) as one, connected(*prefix) as two:
            first = RedisReservationBook(one, loader(cap - 3), clock, 60)
            second = RedisReservationBook(two, loader(0), clock, 60)
            fits = await first.reserve(KEY, want=2, least=2, cap=cap)
            over = await second.reserve(KEY, want=2, least=2, cap=cap)
            clamped = await second.reserve(KEY, want=5 * USD, least=1, cap=cap)
            wide = SpendKey("acct_1", "wide", 0)
            whole = await second.reserve(wide, want=60_000 * USD, least=1, cap=cap)
            return [fits, over, clamped, await first.tally(KEY), whole]

    fits, over, clamped, tally, whole = run(body)

    assert fits.ticket is not None and fits.ticket.amount == 2
    assert over.ticket is None
    assert (over.spent, over.reserved) == (cap - 3, 2)
    assert clamped.ticket is not None and clamped.ticket.amount == 1
    assert (tally.spent, tally.reserved) == (cap - 3, 3)
    assert whole.ticket is not None and whole.ticket.amount == cap


def test_a_balance_of_a_million_dollars_is_spent_exactly_and_not_one_pico_more(
    prefix: tuple[str, str],
) -> None:
    balance = 1_000_000 * USD

    async def load(account_id: str, period: str) -> Loaded:
        return Loaded("pro", Snapshot(7, balance), 0)

    async def body() -> tuple[int, str]:
        async with connected(*prefix) as one, connected(*prefix) as two:
            first = RedisCreditBook(one, load, ttl=60, refresh_seconds=60)
            second = RedisCreditBook(two, load, ttl=60, refresh_seconds=60)
            held = await first.reserve("acct_1", balance - 1, "2026-03")
            await second.reserve("acct_1", 1, "2026-03")
            with pytest.raises(InsufficientCreditsError) as refused:
                await first.reserve("acct_1", 1, "2026-03")
            return held.amount_pico, refused.value.message

    held, message = run(body)

    assert held == balance - 1
    assert "only 0 USD is available (balance 1000000, 1000000 held" in message


def test_a_settlement_that_reaches_redis_before_the_load_is_never_lost(
    prefix: tuple[str, str],
) -> None:
    clock = FixedClock(1_000)

    async def body() -> Any:
        async with connected(*prefix) as shared:
            book = RedisReservationBook(shared, loader(500), clock, 60)
            # Another replica settles before this one has loaded the month.
            await book.settle(KEY, None, 40)
            await book.reserve(KEY, want=0, least=0, cap=None)
            return await book.tally(KEY)

    tally = run(body)

    assert (tally.spent, tally.reserved) == (540, 0)


def test_a_hold_expires_by_the_injected_clock_on_every_replica(
    prefix: tuple[str, str],
) -> None:
    clock = FixedClock(1_000_000)

    async def body() -> list[Any]:
        async with connected(*prefix) as one, connected(*prefix) as two:
            first = RedisReservationBook(one, loader(0), clock, 60)
            second = RedisReservationBook(two, loader(0), clock, 60)
            await first.reserve(KEY, want=700, least=700, cap=1000)
            pinned = await second.reserve(KEY, want=700, least=700, cap=1000)
            clock.set(clock.value + 60_000_000)
            freed = await second.reserve(KEY, want=700, least=700, cap=1000)
            return [pinned, freed]

    pinned, freed = run(body)

    assert pinned.ticket is None
    assert freed.ticket is not None and freed.reserved == 700


def test_lost_redis_data_pauses_admission_and_replicas_write_their_holds_back(
    prefix: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared_redis, "RECOVERY_GRACE_MS", 300)
    clock = FixedClock(1_000)
    url, name = prefix

    async def body() -> list[Any]:
        async with connected(url, name) as one, connected(url, name) as two:
            first = RedisReservationBook(one, loader(100), clock, 60)
            second = RedisReservationBook(two, loader(100), clock, 60)
            await first.reserve(KEY, want=600, least=600, cap=1000)
            keys = [key async for key in one.client.scan_iter(match=f"{name}:*")]
            await one.client.delete(*keys)
            with pytest.raises(ServiceUnavailableError) as paused:
                await second.reserve(KEY, want=300, least=300, cap=1000)
            await asyncio.sleep(1.5)
            after = await second.reserve(KEY, want=300, least=300, cap=1000)
            return [paused.value.message, after]

    message, after = run(body)

    assert "restarted without its data" in message
    # 100 spent (reloaded) + 600 written back by the first replica: 300 fits.
    assert after.ticket is not None
    assert (after.spent, after.reserved) == (100, 900)


def test_an_unreachable_redis_refuses_admission_with_503() -> None:
    settings = Settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_timeout=0.5
    )

    async def body() -> str:
        shared = create_shared_redis(settings)
        await shared.start()
        try:
            book = RedisReservationBook(shared, loader(0), FixedClock(0), 60)
            with pytest.raises(ServiceUnavailableError) as refused:
                await book.reserve(KEY, want=1, least=1, cap=10)
            # Settling must never raise: the ledger entry is already committed.
            await book.settle(KEY, None, 5)
            return refused.value.message
        finally:
            await shared.close()

    message = run(body)

    assert "cannot be reached" in message
    assert "DAYLITE_REDIS_URL" in message


async def _database(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'daylite.db'}")
    await upgrade(engine)
    return engine


def test_reconciler_repairs_drift_both_ways_and_logs_both_values(
    tmp_path: Path, prefix: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FixedClock(1_000)
    short = SpendKey("acct_1", "short", 0)
    over = SpendKey("acct_1", "over", 0)

    async def body() -> list[Any]:
        engine = await _database(tmp_path)
        try:
            async with connected(*prefix) as shared:
                book = RedisReservationBook(shared, loader(0), clock, 60)
                for key in (short, over):
                    await book.reserve(key, want=0, least=0, cap=None)
                # Committed, but the replica died before telling Redis.
                async with engine.begin() as connection:
                    await add_spent(connection, {short: 7 * USD, over: 2 * USD})
                await book.settle(over, None, 5 * USD)
                reconciler = Reconciler(shared, engine, interval=60, settle_window=0.05)
                outcome = await reconciler.run_once()
                again = await reconciler.run_once()
                return [outcome, again, await book.tally(short), await book.tally(over)]
        finally:
            await engine.dispose()

    with caplog.at_level(logging.WARNING, logger="daylite.reconcile"):
        outcome, again, short_tally, over_tally = run(body)

    assert (outcome.checked, outcome.repaired) == (2, 2)
    assert again.repaired == 0
    assert short_tally.spent == 7 * USD
    assert over_tally.spent == 2 * USD
    messages = [record.getMessage() for record in caplog.records]
    assert any("Redis 0 USD, database 7 USD" in m for m in messages), messages
    assert any("Redis 5 USD, database 2 USD" in m for m in messages), messages


def test_reconciler_installs_a_newer_credit_balance(
    tmp_path: Path, prefix: tuple[str, str]
) -> None:
    async def body() -> list[Any]:
        engine = await _database(tmp_path)
        try:
            account = await create_account(engine, FixedClock(0), "acme", "pro")
            async with connected(*prefix) as shared:
                book = RedisCreditBook(
                    shared, account_loader(engine), ttl=60, refresh_seconds=3600
                )
                await book.release(await book.reserve(account.id, 0, "2026-03"))
                # A grant the book never heard of (another process, say).
                async with engine.begin() as connection:
                    await add_credits(
                        connection, account.id, 3 * USD, kind="grant", at=0
                    )
                with pytest.raises(InsufficientCreditsError):
                    await book.reserve(account.id, USD, "2026-03")
                reconciler = Reconciler(shared, engine, interval=60, settle_window=0.05)
                outcome = await reconciler.run_once()
                held = await book.reserve(account.id, 3 * USD, "2026-03")
                return [outcome, held]
        finally:
            await engine.dispose()

    outcome, held = run(body)

    assert outcome.repaired == 1
    assert held.amount_pico == 3 * USD


def test_a_key_revoked_through_one_process_is_refused_by_another_at_once(
    tmp_path: Path, prefix: tuple[str, str]
) -> None:
    clock = FixedClock(0)

    async def body() -> list[Any]:
        engine = await _database(tmp_path)
        try:
            async with connected(*prefix) as one, connected(*prefix) as two:
                here, there = KeyStore(engine, clock), KeyStore(engine, clock)
                here.feed, there.feed = (
                    RedisRevocationFeed(one),
                    RedisRevocationFeed(two),
                )
                issued = await here.issue(None, "doomed", "operator")
                header = f"Bearer {issued.secret}"
                before = await there.authenticate(header)
                await here.revoke(issued.id)
                with pytest.raises(AuthenticationError):
                    await there.authenticate(header)
                # Redis losing the feed makes every process forget every key.
                other = await here.issue(None, "other", "operator")
                await there.authenticate(f"Bearer {other.secret}")
                cached = there.cached_key_ids()
                await two.client.delete(two.key("revocations", "epoch"))
                assert there.feed is not None
                await there.feed.refresh(there)
                return [before, cached, there.cached_key_ids()]
        finally:
            await engine.dispose()

    before, cached, after_loss = run(body)

    assert before.kind == "operator"
    assert len(cached) == 1
    assert after_loss == []
