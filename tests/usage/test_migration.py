"""Migration 0003 fills the rollups from a ledger recorded before it existed."""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import Any

from sqlalchemy import select

from daylite.metering.ledger import LedgerEntry
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import ledger, usage_rollups
from daylite.usage import rollups
from daylite.usage.spans import HOUR_US
from tests.usage.test_query import random_entries


def expected_rollups(
    entries: list[LedgerEntry],
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    sums: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for entry in entries:
        for row in rollups.rollup_rows(entry):
            key = tuple(row[name] for name in rollups.KEY)
            old = sums.get(key, (0, 0, 0, 0))
            new = (
                row["requests"],
                row["tokens_in"],
                row["tokens_out"],
                row["cost_pico"],
            )
            sums[key] = tuple(a + b for a, b in zip(old, new, strict=True))
    return sums


def test_backfill_groups_the_existing_ledger_exactly(tmp_path: Path) -> None:
    entries = random_entries(seed=3, count=400)

    async def go() -> list[Any]:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
        try:
            await upgrade(engine, "0001")
            async with engine.begin() as connection:
                await connection.execute(ledger.insert(), [e.row() for e in entries])
            await upgrade(engine, "heads")
            async with engine.connect() as connection:
                return list((await connection.execute(select(usage_rollups))).all())
        finally:
            await engine.dispose()

    stored = {
        tuple(getattr(row, name) for name in rollups.KEY): (
            row.requests,
            row.tokens_in,
            row.tokens_out,
            row.cost_pico,
        )
        for row in asyncio.run(go())
    }
    assert stored == expected_rollups(entries)


def test_the_migrations_outcome_classes_are_the_codes() -> None:
    migration = importlib.import_module(
        "daylite.storage.migrations.versions.0003_usage"
    )

    assert migration.BILLED_STATUSES == rollups.BILLED_STATUSES
    assert migration.REFUSED_STATUSES == rollups.REFUSED_STATUSES
    assert migration.HOUR_US == HOUR_US
