"""Races between transactions, on SQLite or the suite's test PostgreSQL.

Where ``DAYLITE_TEST_POSTGRES_URL`` names a server, each test gets a database
of its own there, as the end-to-end tests do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.billing.config import BillingConfig
from daylite.billing.credits import Debit, add_credits, debit_usages
from daylite.billing.plans import count_free_requests
from daylite.billing.stripe_webhook import Payment, StripeEvent, WebhookProcessor
from daylite.ids import new_id
from daylite.storage.db import create_engine
from daylite.storage.migrate import upgrade
from daylite.storage.tables import accounts, credit_history
from tests.support.gateway import test_database_url as database_url_for

T = TypeVar("T")


def _run(tmp_path: Path, body: Callable[[AsyncEngine, str], Awaitable[T]]) -> T:
    """Run ``body`` with a migrated engine and a new account with $0 balance."""

    url = database_url_for(tmp_path)

    async def run() -> T:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            account_id = new_id("acct")
            async with engine.begin() as connection:
                await connection.execute(
                    accounts.insert().values(id=account_id, name="race", created_at=0)
                )
            return await body(engine, account_id)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_parallel_debits_never_go_below_zero_and_history_adds_up(
    tmp_path: Path,
) -> None:
    async def body(engine: AsyncEngine, account_id: str) -> list[tuple[int, int]]:
        async with engine.begin() as connection:
            await add_credits(connection, account_id, 1_000, kind="grant", at=0)

        async def debit(number: int) -> None:
            async with engine.begin() as connection:
                await debit_usages(
                    connection, account_id, [Debit(new_id("req"), 300, number)]
                )

        await asyncio.gather(*(debit(number) for number in range(6)))
        query = (
            select(credit_history.c.amount_pico, credit_history.c.balance_after_pico)
            .where(credit_history.c.account_id == account_id)
            .order_by(credit_history.c.seq)
        )
        async with engine.connect() as connection:
            return [(int(a), int(b)) for a, b in (await connection.execute(query))]

    history = _run(tmp_path, body)

    running = 0
    for amount, balance_after in history:
        running += amount
        assert balance_after == running >= 0
    assert [amount for amount, _ in history] == [1_000, -300, -300, -300, -100, 0, 0]


def test_parallel_free_requests_stop_at_the_allowance(tmp_path: Path) -> None:
    async def body(engine: AsyncEngine, account_id: str) -> list[int]:
        async def count(wanted: int) -> int:
            async with engine.begin() as connection:
                counted = await count_free_requests(
                    connection, account_id, "2026-05", 5, wanted
                )
            return counted.granted

        return await asyncio.gather(*(count(wanted) for wanted in (1, 2, 1, 3, 1, 2)))

    granted = _run(tmp_path, body)

    assert sum(granted) == 5


def test_one_event_delivered_three_times_at_once_credits_once(tmp_path: Path) -> None:
    async def body(engine: AsyncEngine, account_id: str) -> list[str]:
        processor = WebhookProcessor(BillingConfig(), "whsec_unused", engine)
        payment = Payment(new_id("cs"), account_id, "starter", "10", 1000, "usd")
        event = StripeEvent(new_id("evt"), "checkout.session.completed", payment)
        outcomes = await asyncio.gather(
            *(processor.apply(event, now_us=1) for _ in range(3))
        )
        return sorted(outcome.result for outcome in outcomes)

    assert _run(tmp_path, body) == ["credited", "duplicate", "duplicate"]
