"""One ledger batch: spend summed per customer, alerts named by request."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daylite.budgets.guard import BudgetGuard
from daylite.budgets.policy import parse_budget
from daylite.budgets.reservations import MemoryReservationBook
from daylite.budgets.settlement import SpendRecorder
from daylite.budgets.store import BudgetStore
from daylite.clock import FixedClock
from daylite.metering.ledger import LedgerEntry
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import budget_events, monthly_spend
from tests.budgets.support import at

NOW = at("2026-01-15T10:00:00+00:00")


def _entry(number: int, customer: str | None, cost: int, **extra: Any) -> LedgerEntry:
    return LedgerEntry(
        id=f"req_{number}",
        account_id="acct_1",
        key_id=None,
        endpoint="chat",
        status=extra.pop("status", "ok"),
        http_status=200,
        created_at=extra.pop("created_at", NOW),
        customer=customer,
        cost_pico=cost,
        **extra,
    )


async def _record(url: str, batches: list[list[LedgerEntry]]) -> tuple[Any, Any]:
    engine = create_engine(url)
    clock = FixedClock(NOW)
    try:
        await upgrade(engine)
        store = BudgetStore(engine)
        body = {
            "customer_id": "a",
            "monthly_cap_usd": "0.001",
            "alert_thresholds": [0.5],
        }
        await store.put(parse_budget(body, "acct_1", NOW))
        book = MemoryReservationBook(lambda key: asyncio.sleep(0, 0), clock, 60)
        recorder = SpendRecorder(store, BudgetGuard(store, book, clock), clock)
        for batch in batches:
            async with engine.begin() as connection:
                await recorder(connection, batch)
        async with engine.connect() as connection:
            spend = (await connection.execute(select(monthly_spend))).all()
            events = (await connection.execute(select(budget_events))).all()
    finally:
        await engine.dispose()
    return spend, events


def test_batch_adds_spend_per_customer_and_month_and_names_the_crossing_request(
    tmp_path: Path,
) -> None:
    batch = [
        _entry(1, "a", 200_000_000),
        _entry(2, "b", 7),
        _entry(3, "a", 200_000_000),
        _entry(4, None, 99),
        _entry(5, "a", 200_000_000),
        _entry(6, "a", 0, status="refused"),
        _entry(7, "a", 1, created_at=at("2026-02-01T00:00:00+00:00")),
    ]

    spend, events = asyncio.run(
        _record(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}", [batch])
    )

    assert sorted((r.customer_id, r.period_start, r.spent_pico) for r in spend) == [
        ("a", at("2026-01-01T00:00:00+00:00"), 600_000_000),
        ("a", at("2026-02-01T00:00:00+00:00"), 1),
        ("b", at("2026-01-01T00:00:00+00:00"), 7),
    ]
    assert [(e.kind, e.threshold, e.customer_id) for e in events] == [
        ("budget.threshold_crossed", "0.5", "a")
    ]
    # 0.0002 -> 0.0004 -> 0.0006: the third request of "a" crossed 0.0005.
    assert '"request_id":"req_5"' in events[0].payload
    assert '"spend_usd":"0.0006"' in events[0].payload


def test_later_batches_add_to_the_stored_total(tmp_path: Path) -> None:
    batches = [[_entry(1, "a", 300_000_000)], [_entry(2, "a", 300_000_000)]]

    spend, events = asyncio.run(
        _record(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", batches)
    )

    assert [r.spent_pico for r in spend] == [600_000_000]
    assert len(events) == 1
    assert '"request_id":"req_2"' in events[0].payload
