"""The in-memory reservation book: atomic admission, settlement, expiry, loading."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from daylite.budgets.reservations import MemoryReservationBook, SpendKey, Tally
from daylite.clock import FixedClock

KEY = SpendKey("acct_1", "cust", 0)
Loader = Callable[[SpendKey], Coroutine[Any, Any, int]]


def _loader(spent: int = 0, delay: float = 0.0) -> Loader:
    async def load(key: SpendKey) -> int:
        await asyncio.sleep(delay)
        return spent

    return load


def _book(
    load: Loader | None = None, clock: FixedClock | None = None
) -> MemoryReservationBook:
    return MemoryReservationBook(load or _loader(), clock or FixedClock(0), 60.0)


def test_reservation_fits_up_to_the_cap_exactly_and_not_one_pico_more() -> None:
    async def scenario() -> tuple[Any, Any, Tally | None]:
        book = _book(_loader(spent=400))
        fits = await book.reserve(KEY, want=600, least=600, cap=1000)
        over = await book.reserve(KEY, want=1, least=1, cap=1000)
        return fits, over, await book.tally(KEY)

    fits, over, tally = asyncio.run(scenario())

    assert fits.ticket is not None and fits.ticket.amount == 600
    assert over.ticket is None
    assert (over.spent, over.reserved) == (400, 600)
    assert tally == Tally(400, 600)


def test_concurrent_first_use_loads_once_and_admits_only_what_fits() -> None:
    loads = []

    async def load(key: SpendKey) -> int:
        loads.append(key)
        await asyncio.sleep(0.01)
        return 100

    async def scenario() -> list[Any]:
        book = _book(load)
        return await asyncio.gather(
            *(book.reserve(KEY, want=300, least=300, cap=1000) for _ in range(50))
        )

    admissions = asyncio.run(scenario())

    assert len(loads) == 1
    assert sum(a.ticket is not None for a in admissions) == 3


def test_settlement_swaps_the_reservation_for_the_real_cost() -> None:
    async def scenario() -> tuple[Tally | None, Tally | None]:
        book = _book()
        first = await book.reserve(KEY, want=500, least=500, cap=1000)
        second = await book.reserve(KEY, want=500, least=500, cap=1000)
        assert first.ticket is not None and second.ticket is not None
        await book.settle(KEY, first.ticket, 120)
        middle = await book.tally(KEY)
        await book.release(second.ticket)
        await book.release(second.ticket)
        await book.settle(KEY, first.ticket, 0)
        return middle, await book.tally(KEY)

    middle, end = asyncio.run(scenario())

    assert middle == Tally(120, 500)
    assert end == Tally(120, 0)


def test_clamp_gets_what_is_left_if_at_least_the_floor_fits() -> None:
    async def scenario() -> tuple[Any, Any]:
        book = _book(_loader(spent=700))
        partial = await book.reserve(KEY, want=500, least=100, cap=1000)
        refused = await book.reserve(KEY, want=500, least=100, cap=1000)
        return partial, refused

    partial, refused = asyncio.run(scenario())

    assert partial.ticket is not None and partial.ticket.amount == 300
    assert refused.ticket is None


def test_alert_budgets_reserve_without_a_cap() -> None:
    async def scenario() -> Any:
        return await _book(_loader(spent=10**9)).reserve(KEY, want=5, least=5, cap=None)

    assert asyncio.run(scenario()).ticket is not None


def test_reservation_expires_after_its_ttl() -> None:
    clock = FixedClock(1_000_000)

    async def scenario() -> tuple[Any, Any, Tally | None]:
        book = _book(clock=clock)
        await book.reserve(KEY, want=1000, least=1000, cap=1000)
        clock.set(1_000_000 + 59_999_999)
        pinned = await book.reserve(KEY, want=1, least=1, cap=1000)
        clock.set(1_000_000 + 60_000_000)
        freed = await book.reserve(KEY, want=1000, least=1000, cap=1000)
        return pinned, freed, await book.tally(KEY)

    pinned, freed, tally = asyncio.run(scenario())

    assert pinned.ticket is None
    assert freed.ticket is not None
    assert tally == Tally(0, 1000)


def test_settlement_during_the_first_load_is_not_lost() -> None:
    async def scenario() -> Tally | None:
        book = _book(_loader(spent=100, delay=0.02))
        pending = asyncio.create_task(book.reserve(KEY, want=1, least=1, cap=None))
        await asyncio.sleep(0)
        await book.settle(KEY, None, 50)
        await pending
        return await book.tally(KEY)

    assert asyncio.run(scenario()) == Tally(150, 1)


def test_failed_load_is_raised_and_retried_by_the_next_caller() -> None:
    attempts = []

    async def load(key: SpendKey) -> int:
        attempts.append(key)
        if len(attempts) == 1:
            raise OSError("database down")
        return 5

    async def scenario() -> Tally | None:
        book = _book(load)
        with pytest.raises(OSError):
            await book.reserve(KEY, want=1, least=1, cap=10)
        await book.reserve(KEY, want=1, least=1, cap=10)
        return await book.tally(KEY)

    assert asyncio.run(scenario()) == Tally(5, 1)
    assert len(attempts) == 2


def test_a_new_month_forgets_idle_tallies_of_the_old_one() -> None:
    busy = SpendKey("acct_1", "busy", 0)
    idle = SpendKey("acct_1", "idle", 0)

    async def scenario() -> tuple[Tally | None, Tally | None]:
        book = _book()
        await book.reserve(busy, want=1, least=1, cap=None)
        finished = await book.reserve(idle, want=5, least=5, cap=None)
        assert finished.ticket is not None
        await book.settle(idle, finished.ticket, 3)
        await book.reserve(SpendKey("acct_1", "busy", 10), want=1, least=1, cap=None)
        return await book.tally(busy), await book.tally(idle)

    kept, forgotten = asyncio.run(scenario())

    assert kept == Tally(0, 1)
    assert forgotten is None


def test_tally_of_an_unknown_key_is_none() -> None:
    assert asyncio.run(_book().tally(KEY)) is None
