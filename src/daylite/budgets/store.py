"""Budget rows and settled monthly spend in the database.

Admission reads a customer's budget on every request, so budgets are cached in
the process. Writes through this store update the cache at once, which is what
lets a raised cap admit the very next request; a change made by another
replica is seen within ``_CACHE_SECONDS``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from daylite.budgets.policy import Budget, Threshold
from daylite.budgets.reservations import SpendKey
from daylite.storage.tables import budgets, monthly_spend

_CACHE_SECONDS = 5.0
_CACHE_LIMIT = 100_000


def upsert(connection: AsyncConnection, table: Any) -> Any:
    """An INSERT that can take ON CONFLICT clauses on this connection's dialect."""
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _budget(row: Any) -> Budget:
    return Budget(
        account_id=row.account_id,
        customer_id=row.customer_id,
        cap_pico=row.cap_pico,
        action=row.action,
        thresholds=tuple(
            Threshold.parse(text) for text in orjson.loads(row.thresholds)
        ),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _row(budget: Budget) -> dict[str, Any]:
    return {
        "account_id": budget.account_id,
        "customer_id": budget.customer_id,
        "cap_pico": budget.cap_pico,
        "action": budget.action,
        "thresholds": orjson.dumps([t.text for t in budget.thresholds]).decode(),
        "created_at": budget.created_at,
        "updated_at": budget.updated_at,
    }


class BudgetStore:
    """Reads and writes budget rows, with a small cache for admission."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._cache: dict[tuple[str, str], tuple[Budget | None, float]] = {}
        self._writes = 0

    async def get(self, account_id: str, customer_id: str) -> Budget | None:
        key = (account_id, customer_id)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[1] < _CACHE_SECONDS:
            return cached[0]
        writes = self._writes
        query = select(budgets).where(
            budgets.c.account_id == account_id, budgets.c.customer_id == customer_id
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        budget = None if row is None else _budget(row)
        # A write that landed during the read may be newer than what was read.
        if writes == self._writes:
            self._remember(key, budget)
        return budget

    def peek(self, account_id: str, customer_id: str) -> tuple[bool, Budget | None]:
        """The cached budget without any I/O: (known, budget)."""
        cached = self._cache.get((account_id, customer_id))
        return (False, None) if cached is None else (True, cached[0])

    def _remember(self, key: tuple[str, str], budget: Budget | None) -> None:
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = (budget, time.monotonic())

    async def put(self, budget: Budget) -> tuple[Budget, bool]:
        """Create or replace; returns the stored budget and whether it is new."""
        async with self._engine.begin() as connection:
            existing = (
                await connection.execute(
                    select(budgets.c.created_at).where(
                        budgets.c.account_id == budget.account_id,
                        budgets.c.customer_id == budget.customer_id,
                    )
                )
            ).first()
            if existing is not None:
                budget = dataclasses.replace(budget, created_at=existing.created_at)
            row = _row(budget)
            statement = upsert(connection, budgets).values(**row)
            statement = statement.on_conflict_do_update(
                index_elements=["account_id", "customer_id"],
                set_={
                    name: statement.excluded[name]
                    for name in ("cap_pico", "action", "thresholds", "updated_at")
                },
            )
            await connection.execute(statement)
        self._writes += 1
        self._remember((budget.account_id, budget.customer_id), budget)
        return budget, existing is None

    async def delete(self, account_id: str, customer_id: str) -> bool:
        statement = delete(budgets).where(
            budgets.c.account_id == account_id, budgets.c.customer_id == customer_id
        )
        async with self._engine.begin() as connection:
            result = await connection.execute(statement)
        self._writes += 1
        self._remember((account_id, customer_id), None)
        return bool(result.rowcount)

    async def page(
        self, account_id: str, after: str | None, limit: int
    ) -> list[Budget]:
        """Budgets in customer id order, starting after ``after``."""
        query = select(budgets).where(budgets.c.account_id == account_id)
        if after is not None:
            query = query.where(budgets.c.customer_id > after)
        query = query.order_by(budgets.c.customer_id).limit(limit)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_budget(row) for row in rows]


async def read_spent(
    engine: AsyncEngine, account_id: str, period_start: int, customers: Sequence[str]
) -> dict[str, int]:
    """Settled spend this period for each of ``customers`` that has any."""
    query = select(monthly_spend.c.customer_id, monthly_spend.c.spent_pico).where(
        monthly_spend.c.account_id == account_id,
        monthly_spend.c.period_start == period_start,
        monthly_spend.c.customer_id.in_(list(customers)),
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    return {row.customer_id: int(row.spent_pico) for row in rows}


async def add_spent(
    connection: AsyncConnection, sums: Mapping[SpendKey, int]
) -> dict[SpendKey, int]:
    """Add settled spend inside the ledger transaction; returns the new totals.

    One statement for the whole batch. Rows go in key order so that two
    replicas adding to the same rows lock them in the same order.
    """
    if not sums:
        return {}
    rows = [
        {
            "account_id": key.account_id,
            "customer_id": key.customer_id,
            "period_start": key.period_start,
            "spent_pico": amount,
        }
        for key, amount in sorted(
            sums.items(),
            key=lambda item: (
                item[0].account_id,
                item[0].customer_id,
                item[0].period_start,
            ),
        )
    ]
    statement = upsert(connection, monthly_spend).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "customer_id", "period_start"],
        set_={"spent_pico": monthly_spend.c.spent_pico + statement.excluded.spent_pico},
    ).returning(
        monthly_spend.c.account_id,
        monthly_spend.c.customer_id,
        monthly_spend.c.period_start,
        monthly_spend.c.spent_pico,
    )
    result = await connection.execute(statement)
    return {
        SpendKey(row.account_id, row.customer_id, row.period_start): int(row.spent_pico)
        for row in result
    }


async def budgets_in(
    connection: AsyncConnection, account_id: str, customers: Sequence[str]
) -> dict[str, Budget]:
    """The budgets of ``customers``, read inside ``connection``'s transaction."""
    query = select(budgets).where(
        budgets.c.account_id == account_id,
        budgets.c.customer_id.in_(list(customers)),
    )
    rows = (await connection.execute(query)).all()
    return {row.customer_id: _budget(row) for row in rows}
