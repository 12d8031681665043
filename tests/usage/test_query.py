"""Rollups plus ledger edges give exactly the sums of the ledger, for any range."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.metering.ledger import LedgerEntry, LedgerWriter
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import ledger, usage_rollups
from daylite.usage.query import (
    Tally,
    UsageFilter,
    export_rows,
    extent,
    summarize,
)
from daylite.usage.rollups import add_to_rollups, outcome_of
from daylite.usage.spans import DAY_US, HOUR_US

BASE = 1_795_910_400_000_000  # 2026-11-29T00:00:00Z, three days before December
NOVEMBER = 1_793_491_200_000_000
DECEMBER = 1_796_083_200_000_000
JANUARY = 1_798_761_600_000_000
STATUSES = (
    *("ok", "ok", "ok", "abandoned", "backend_error"),
    *("refused", "invalid", "rejected", "failed"),
)
ACCOUNTS = ("acct_a", "acct_b")


def random_entries(seed: int, count: int) -> list[LedgerEntry]:
    rng = random.Random(seed)
    entries = []
    for n in range(count):
        status = rng.choice(STATUSES)
        billed = outcome_of(status) == "billed"
        # Some entries sit exactly on hour and day edges, where bugs live.
        moment = BASE + rng.choice(
            [rng.randrange(3 * DAY_US), rng.randrange(72) * HOUR_US]
        )
        entries.append(
            LedgerEntry(
                id=f"req_{n:06d}",
                account_id=rng.choice(ACCOUNTS),
                key_id=None,
                endpoint="chat",
                status=status,
                http_status=200 if billed else 400,
                created_at=moment,
                customer=rng.choice(["c1", "c2", None]),
                feature=rng.choice(["f1", None]),
                model=rng.choice(["m1", "m2", None]),
                tokens_in=rng.randrange(5000) if billed else 0,
                tokens_out=rng.randrange(5000) if billed else 0,
                cost_pico=rng.randrange(10**12) if billed else 0,
            )
        )
    return entries


def brute_force(entries: list[LedgerEntry], flt: UsageFilter) -> Tally:
    tally = Tally()
    for entry in entries:
        if entry.account_id != flt.account_id:
            continue
        if any(
            getattr(flt, name) is not None
            and getattr(entry, name) != getattr(flt, name)
            for name in ("customer", "feature", "model")
        ):
            continue
        if flt.start is not None and entry.created_at < flt.start:
            continue
        if flt.end is not None and entry.created_at >= flt.end:
            continue
        outcome = outcome_of(entry.status)
        tally += Tally(
            1,
            outcome == "billed",
            outcome == "refused",
            outcome == "failed",
            entry.tokens_in,
            entry.tokens_out,
            entry.cost_pico,
        )
    return tally


async def _fill(engine: AsyncEngine, entries: list[LedgerEntry]) -> None:
    await upgrade(engine)
    writer = LedgerWriter(engine)
    writer.batch_hooks = [add_to_rollups]
    writer.start()
    try:
        # Concurrent writes, so the writer commits them in batches of many.
        await asyncio.gather(*(writer.write(entry) for entry in entries))
    finally:
        await writer.stop()


@pytest.fixture(scope="module")
def filled(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[LedgerEntry]]]:
    path: Path = tmp_path_factory.mktemp("query") / "usage.db"
    url = f"sqlite+aiosqlite:///{path}"
    entries = random_entries(seed=7, count=1500)

    async def fill() -> None:
        engine = create_engine(url)
        try:
            await _fill(engine, entries)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    yield url, entries


def run(url: str, work: Any) -> Any:
    async def go() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                return await work(connection)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def random_filters(seed: int, count: int) -> list[UsageFilter]:
    rng = random.Random(seed)
    span = 4 * DAY_US
    filters = []
    for _ in range(count):
        edges = sorted(
            rng.choice(
                [
                    BASE - DAY_US // 2 + rng.randrange(span),
                    BASE + rng.randrange(80) * HOUR_US,
                    BASE + rng.randrange(80) * HOUR_US + rng.choice([-1, 1]),
                ]
            )
            for _ in range(2)
        )
        start, end = edges if edges[0] < edges[1] else (edges[0], edges[0] + 1)
        filters.append(
            UsageFilter(
                rng.choice(ACCOUNTS),
                customer=rng.choice(["c1", None, None, "nobody"]),
                feature=rng.choice(["f1", None, None]),
                model=rng.choice(["m2", None, None]),
                start=rng.choice([start, start, None]),
                end=rng.choice([end, end, None]),
            )
        )
    return filters


def test_random_ranges_and_filters_match_the_ledger_exactly(
    filled: tuple[str, list[LedgerEntry]],
) -> None:
    url, entries = filled
    months = [
        UsageFilter(account, start=start, end=end)
        for account in ACCOUNTS
        for start, end in [
            (NOVEMBER, DECEMBER),
            (DECEMBER, JANUARY),
            (NOVEMBER, JANUARY),
            (None, DECEMBER),
            (DECEMBER, None),
            (NOVEMBER + 1, DECEMBER + DAY_US + 1),
        ]
    ]
    filters = months + random_filters(seed=11, count=150)

    async def work(connection: Any) -> list[tuple[Tally, Tally]]:
        results = []
        for flt in filters:
            fast = await summarize(connection, flt)
            slow = await summarize(connection, flt, rollups=False)
            results.append((fast.total, slow.total))
        return results

    for flt, (fast, slow) in zip(filters, run(url, work), strict=True):
        expected = brute_force(entries, flt)
        assert fast == expected, flt
        assert slow == expected, flt


def test_breakdowns_and_series_each_add_up_to_the_total(
    filled: tuple[str, list[LedgerEntry]],
) -> None:
    url, entries = filled
    flt = UsageFilter("acct_a", start=BASE + 1234, end=BASE + 2 * DAY_US + 17)

    async def work(connection: Any) -> Any:
        return [
            await summarize(connection, flt, granularity=size)
            for size in (HOUR_US, DAY_US)
        ]

    for summary in run(url, work):
        expected = brute_force(entries, flt)
        assert summary.total == expected
        for groups in (summary.by_feature, summary.by_model, summary.by_customer):
            assert sum((group.tally for group in groups), Tally()) == expected
        assert sum((point.tally for point in summary.series), Tally()) == expected
    hourly = run(url, work)[0].series
    assert len(hourly) == 49 and hourly[0].start == BASE


def test_customer_breakdown_groups_missing_customers_under_none(
    filled: tuple[str, list[LedgerEntry]],
) -> None:
    url, entries = filled
    flt = UsageFilter("acct_b")

    summary = run(url, lambda connection: summarize(connection, flt))

    groups = {group.key: group.tally for group in summary.by_customer}
    assert set(groups) == {"c1", "c2", None}
    assert groups[None] == brute_force([e for e in entries if e.customer is None], flt)


def test_export_rows_per_day_match_the_ledger(
    filled: tuple[str, list[LedgerEntry]],
) -> None:
    url, entries = filled
    flt = UsageFilter("acct_a", start=BASE + 5, end=BASE + DAY_US + HOUR_US + 3)

    rows = run(url, lambda connection: export_rows(connection, flt, DAY_US))

    assert [row.bucket for row in rows] == sorted(row.bucket for row in rows)
    for row in rows:
        chosen = [
            e
            for e in entries
            if (e.customer, e.feature, e.model)
            == (row.customer, row.feature, row.model)
        ]
        assert flt.start is not None and flt.end is not None
        window = flt.window(
            max(flt.start, row.bucket), min(flt.end, row.bucket + DAY_US)
        )
        assert row.tally == brute_force(chosen, window)
    assert sum((row.tally for row in rows), Tally()) == brute_force(entries, flt)


def test_extent_is_the_first_and_last_hour_with_entries(
    filled: tuple[str, list[LedgerEntry]],
) -> None:
    url, entries = filled
    flt = UsageFilter("acct_a")
    mine = [e.created_at for e in entries if e.account_id == "acct_a"]

    first, last = run(url, lambda connection: extent(connection, flt))

    assert first == min(mine) - min(mine) % HOUR_US
    assert last == max(mine) - max(mine) % HOUR_US


def test_every_span_counts_every_entry_once(
    filled: tuple[str, list[LedgerEntry]],
) -> None:
    url, _ = filled

    async def work(connection: Any) -> tuple[Any, Any]:
        stored = (await connection.execute(select(usage_rollups))).all()
        count = len((await connection.execute(select(ledger.c.id))).all())
        return stored, count

    stored, count = run(url, work)
    for span in ("hour", "day", "month"):
        rows = [row for row in stored if row.span == span]
        assert sum(row.requests for row in rows) == count == 1500
