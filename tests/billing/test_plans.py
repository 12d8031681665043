"""Calendar months in UTC and the free-request counter in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite import accounts
from daylite.billing.plans import (
    PLANS,
    FreeCount,
    count_free_requests,
    free_used,
    period_bounds,
    period_of,
)
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.timefmt import us_from_datetime


def _us(year: int, month: int, day: int, *clock: int) -> int:
    hour, minute, second = (*clock, 0, 0, 0)[:3]
    return us_from_datetime(
        datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    )


def test_period_is_the_utc_calendar_month() -> None:
    assert period_of(_us(2026, 5, 31, 23, 59, 59)) == "2026-05"
    assert period_of(_us(2026, 6, 1)) == "2026-06"
    assert period_bounds(_us(2026, 12, 15)) == (_us(2026, 12, 1), _us(2027, 1, 1))


def test_plans_match_the_plans_accounts_accept() -> None:
    assert tuple(PLANS) == accounts.PLANS
    assert PLANS["developer"].free_requests_per_month == 50_000
    assert PLANS["pro"].free_requests_per_month == 0


async def _engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await upgrade(engine)
    return engine


def test_counter_counts_up_to_the_allowance_and_no_further(tmp_path: Path) -> None:
    async def run() -> tuple[list[FreeCount], int]:
        engine = await _engine(tmp_path)
        results = []
        for wanted in (2, 1, 3, 1, 4):
            async with engine.begin() as connection:
                results.append(
                    await count_free_requests(connection, "acct", "2026-05", 5, wanted)
                )
        async with engine.connect() as connection:
            used = await free_used(connection, "acct", "2026-05")
        await engine.dispose()
        return results, used

    assert asyncio.run(run()) == (
        [
            FreeCount(2, 2),
            FreeCount(1, 3),
            FreeCount(2, 5),
            FreeCount(0, 5),
            FreeCount(0, 5),
        ],
        5,
    )


def test_no_allowance_counts_nothing(tmp_path: Path) -> None:
    async def run() -> FreeCount:
        engine = await _engine(tmp_path)
        async with engine.begin() as connection:
            result = await count_free_requests(connection, "acct", "2026-05", 0, 1)
        await engine.dispose()
        return result

    assert asyncio.run(run()) == FreeCount(0, None)
