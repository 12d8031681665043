"""Balance changes in the database: exact, ordered, and never below zero."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.billing.credits import (
    Debit,
    add_credits,
    debit_usages,
    read_credits,
    read_history,
)
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import accounts

T = TypeVar("T")


def _run(tmp_path: Path, steps: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run ``steps`` against a migrated database holding one account, "acct"."""

    async def run() -> T:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        await upgrade(engine)
        async with engine.begin() as connection:
            await connection.execute(
                accounts.insert().values(id="acct", name="a", created_at=0)
            )
        try:
            return await steps(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_changes_carry_increasing_seq_and_the_balance_after(tmp_path: Path) -> None:
    async def steps(engine: AsyncEngine) -> Any:
        async with engine.begin() as connection:
            granted = await add_credits(
                connection, "acct", 500, kind="grant", at=1, reason="welcome"
            )
            debits = await debit_usages(connection, "acct", [Debit("req_1", 200, 2)])
        async with engine.connect() as connection:
            credits = await read_credits(connection, "acct")
            history = await read_history(connection, "acct", limit=10)
        return granted, debits, credits, history

    granted, (debited,), credits, history = _run(tmp_path, steps)

    assert (granted.seq, granted.balance_pico) == (1, 500)
    assert (debited.seq, debited.balance_pico) == (2, 300)
    assert (credits.plan, credits.snapshot) == ("developer", debited)
    assert [(h.kind, h.amount_pico, h.request_id) for h in history] == [
        ("usage", -200, "req_1"),
        ("grant", 500, None),
    ]


def test_debit_beyond_the_balance_takes_what_is_there(tmp_path: Path) -> None:
    async def steps(engine: AsyncEngine) -> Any:
        async with engine.begin() as connection:
            await add_credits(connection, "acct", 100, kind="grant", at=1)
            first = await debit_usages(connection, "acct", [Debit("r1", 250, 2)])
            second = await debit_usages(connection, "acct", [Debit("r2", 50, 3)])
        async with engine.connect() as connection:
            history = await read_history(connection, "acct", limit=10, kind="usage")
        return first, second, history

    first, second, history = _run(tmp_path, steps)

    assert (first[0].balance_pico, second[0].balance_pico) == (0, 0)
    assert [(h.amount_pico, h.shortfall_pico) for h in history] == [
        (0, 50),
        (-100, 150),
    ]


def test_unknown_account_changes_nothing(tmp_path: Path) -> None:
    async def steps(engine: AsyncEngine) -> Any:
        async with engine.begin() as connection:
            return (
                await add_credits(connection, "nope", 1, kind="grant", at=1),
                await debit_usages(connection, "nope", [Debit("r", 1, 1)]),
                await read_credits(connection, "nope"),
            )

    assert _run(tmp_path, steps) == (None, None, None)


def test_one_batch_debits_in_order_and_floors_the_last(tmp_path: Path) -> None:
    async def steps(engine: AsyncEngine) -> Any:
        async with engine.begin() as connection:
            await add_credits(connection, "acct", 500, kind="grant", at=1)
            snapshots = await debit_usages(
                connection,
                "acct",
                [Debit("r1", 200, 2), Debit("r2", 200, 2), Debit("r3", 200, 2)],
            )
        async with engine.connect() as connection:
            history = await read_history(connection, "acct", limit=10, kind="usage")
        return snapshots, history

    snapshots, history = _run(tmp_path, steps)

    assert [(s.seq, s.balance_pico) for s in snapshots] == [(2, 300), (3, 100), (4, 0)]
    assert [(h.request_id, h.amount_pico, h.shortfall_pico) for h in history] == [
        ("r3", -100, 100),
        ("r2", -200, 0),
        ("r1", -200, 0),
    ]
