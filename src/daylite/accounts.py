"""Accounts: the companies that hold keys, credits, budgets and a webhook."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.clock import Clock
from daylite.ids import new_id
from daylite.storage.tables import accounts

PLANS = ("developer", "pro")


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    name: str
    plan: str
    balance_pico: int
    created_at: int


async def create_account(
    engine: AsyncEngine, clock: Clock, name: str, plan: str = "developer"
) -> Account:
    if plan not in PLANS:
        raise ValueError(f"unknown plan {plan!r}; plans: {', '.join(PLANS)}")
    account = Account(new_id("acct"), name, plan, 0, clock.now_us())
    async with engine.begin() as connection:
        await connection.execute(
            accounts.insert().values(
                id=account.id,
                name=account.name,
                plan=account.plan,
                balance_pico=0,
                created_at=account.created_at,
            )
        )
    return account


async def count_accounts(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        result = await connection.execute(select(func.count()).select_from(accounts))
        return int(result.scalar_one())


async def list_accounts(engine: AsyncEngine) -> list[Account]:
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts))).all()
    return [
        Account(row.id, row.name, row.plan, row.balance_pico, row.created_at)
        for row in rows
    ]


async def get_account(engine: AsyncEngine, account_id: str) -> Account | None:
    query = select(accounts).where(accounts.c.id == account_id)
    async with engine.connect() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        return None
    return Account(row.id, row.name, row.plan, row.balance_pico, row.created_at)
