"""The in-memory credit book: atomic claims, expiry, and readings that never regress."""

from __future__ import annotations

import asyncio

import pytest

from daylite.billing.book import Loaded, LocalCreditBook, Reservation, Settlement
from daylite.billing.credits import Snapshot
from daylite.errors import InsufficientCreditsError

PERIOD = "2026-05"


class FakeDatabase:
    """What the loader reads; counts reads and can pause them."""

    def __init__(self, plan: str = "pro", balance: int = 1_000, used: int = 0) -> None:
        self.loaded = Loaded(plan, Snapshot(1, balance), used)
        self.reads = 0
        self.gate: asyncio.Event | None = None

    async def load(self, account_id: str, period: str) -> Loaded:
        self.reads += 1
        snapshot = self.loaded
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)
        return snapshot


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _book(db: FakeDatabase, ticker: Ticker, ttl: float = 60.0) -> LocalCreditBook:
    return LocalCreditBook(db.load, ttl=ttl, refresh_seconds=2.0, monotonic=ticker)


def test_concurrent_claims_never_exceed_the_balance() -> None:
    db, ticker = FakeDatabase(balance=1_000), Ticker()
    book = _book(db, ticker)

    async def run() -> list[Reservation | None]:
        async def claim() -> Reservation | None:
            try:
                return await book.reserve("acct", 300, PERIOD)
            except InsufficientCreditsError:
                return None

        return await asyncio.gather(*(claim() for _ in range(10)))

    claims = asyncio.run(run())

    assert sum(claim is not None for claim in claims) == 3
    assert db.reads == 1


def test_released_claim_frees_its_amount() -> None:
    book = _book(FakeDatabase(balance=500), Ticker())

    async def run() -> None:
        held = await book.reserve("acct", 400, PERIOD)
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 400, PERIOD)
        await book.release(held)
        await book.reserve("acct", 400, PERIOD)

    asyncio.run(run())


def test_claims_expire_after_the_ttl() -> None:
    ticker = Ticker()
    book = _book(FakeDatabase(balance=500), ticker, ttl=10.0)

    async def run() -> int:
        await book.reserve("acct", 400, PERIOD)
        ticker.now += 1.0
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 400, PERIOD)
        ticker.now += 9.5
        await book.reserve("acct", 400, PERIOD)
        return await book.reserved_pico("acct")

    assert asyncio.run(run()) == 400


def test_settlement_teaches_the_new_balance() -> None:
    book = _book(FakeDatabase(balance=1_000), Ticker())

    async def run() -> None:
        held = await book.reserve("acct", 600, PERIOD)
        await book.settle(held, Settlement(snapshot=Snapshot(2, 100)))
        with pytest.raises(InsufficientCreditsError) as refused:
            await book.reserve("acct", 101, PERIOD)
        assert "only 0.0000000001 USD is available" in refused.value.message
        await book.reserve("acct", 100, PERIOD)

    asyncio.run(run())


def test_a_slow_reload_does_not_undo_a_debit_learned_meanwhile() -> None:
    db, ticker = FakeDatabase(balance=1_000), Ticker()
    book = _book(db, ticker)

    async def run() -> None:
        held = await book.reserve("acct", 600, PERIOD)
        ticker.now += 5.0
        db.gate = asyncio.Event()
        reload = asyncio.create_task(book.reserve("acct", 1, PERIOD))
        for _ in range(10):
            if db.reads == 2:
                break
            await asyncio.sleep(0)
        # The reload has read the old balance; the debit lands before it returns.
        await book.settle(held, Settlement(snapshot=Snapshot(2, 400)))
        db.gate.set()
        await reload
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 400, PERIOD)

    asyncio.run(run())


def test_a_quiet_reload_sees_credits_granted_elsewhere() -> None:
    db, ticker = FakeDatabase(balance=0), Ticker()
    book = _book(db, ticker)

    async def run() -> None:
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 10, PERIOD)
        db.loaded = Loaded("pro", Snapshot(5, 10), 0)
        ticker.now += 1.0
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 10, PERIOD)
        ticker.now += 1.5
        await book.reserve("acct", 10, PERIOD)

    asyncio.run(run())


def test_developer_takes_free_requests_until_the_allowance_is_claimed() -> None:
    book = _book(FakeDatabase("developer", balance=0, used=49_998), Ticker())

    async def run() -> list[bool]:
        first = await book.reserve("acct", 10**9, PERIOD)
        second = await book.reserve("acct", 10**9, PERIOD)
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 1, PERIOD)
        await book.release(second)
        third = await book.reserve("acct", 1, PERIOD)
        return [first.free, second.free, third.free]

    assert asyncio.run(run()) == [True, True, True]


def test_a_new_month_reads_its_own_counter() -> None:
    db = FakeDatabase("developer", balance=0, used=50_000)
    book = _book(db, Ticker())

    async def run() -> Reservation:
        with pytest.raises(InsufficientCreditsError):
            await book.reserve("acct", 1, PERIOD)
        db.loaded = Loaded("developer", Snapshot(1, 0), 0)
        return await book.reserve("acct", 1, "2026-06")

    reservation = asyncio.run(run())

    assert (reservation.free, reservation.period, reservation.allowance) == (
        True,
        "2026-06",
        50_000,
    )
