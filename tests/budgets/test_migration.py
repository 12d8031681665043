"""Migration 0002: spend already in the ledger is carried into monthly spend."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import ledger, monthly_spend
from tests.budgets.support import at


def _entry(number: int, customer: str | None, cost: int, when: str) -> dict[str, Any]:
    return {
        "id": f"req_{number}",
        "account_id": "acct_1",
        "customer": customer,
        "endpoint": "chat",
        "status": "ok",
        "http_status": 200,
        "cost_pico": cost,
        "created_at": at(when),
    }


async def _migrate(url: str) -> list[tuple[str, int, int]]:
    engine = create_engine(url)
    try:
        await upgrade(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(
                ledger.insert(),
                [
                    _entry(1, "a", 100, "2026-01-31T23:59:59+00:00"),
                    _entry(2, "a", 20, "2026-01-02T00:00:00+00:00"),
                    _entry(3, "a", 5, "2026-02-01T00:00:00+00:00"),
                    _entry(4, "b", 7, "2026-03-15T00:00:00+00:00"),
                    _entry(5, None, 9, "2026-01-05T00:00:00+00:00"),
                    _entry(6, "c", 0, "2026-01-05T00:00:00+00:00"),
                ],
            )
        await upgrade(engine)
        query = select(monthly_spend).order_by(
            monthly_spend.c.customer_id, monthly_spend.c.period_start
        )
        async with engine.connect() as connection:
            rows = (await connection.execute(query)).all()
    finally:
        await engine.dispose()
    return [(row.customer_id, row.period_start, row.spent_pico) for row in rows]


def test_ledger_spend_is_summed_per_customer_and_utc_month(tmp_path: Path) -> None:
    rows = asyncio.run(_migrate(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"))

    assert rows == [
        ("a", at("2026-01-01T00:00:00+00:00"), 120),
        ("a", at("2026-02-01T00:00:00+00:00"), 5),
        ("b", at("2026-03-01T00:00:00+00:00"), 7),
    ]
