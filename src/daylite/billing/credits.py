"""Credit balances in the database: grants, purchases, usage debits, history.

Every change is one ``UPDATE accounts`` followed by one ``credit_history`` row
in the same transaction. The update comes first: it locks the account row
until commit, so the history ``seq`` of one account follows commit order and
``(seq, balance_after)`` says which of two balance readings is newer.
A usage debit never takes a balance below zero: if a backend overran the
worst case, it debits what is there and records the shortfall.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.money import format_usd
from daylite.storage.tables import accounts, credit_history

log = logging.getLogger(__name__)

KINDS = ("grant", "purchase", "usage")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An account's balance as of its history row ``seq`` (0: no history yet)."""

    seq: int
    balance_pico: int


@dataclass(frozen=True, slots=True)
class AccountCredits:
    plan: str
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    seq: int
    kind: str
    amount_pico: int
    balance_after_pico: int
    shortfall_pico: int
    request_id: str | None
    reference: str | None
    reason: str | None
    created_at: int


async def read_credits(
    connection: AsyncConnection, account_id: str
) -> AccountCredits | None:
    """Plan, balance and the latest history seq, from one consistent read."""
    latest = (
        select(func.coalesce(func.max(credit_history.c.seq), 0))
        .where(credit_history.c.account_id == account_id)
        .scalar_subquery()
    )
    query = select(accounts.c.plan, accounts.c.balance_pico, latest).where(
        accounts.c.id == account_id
    )
    row = (await connection.execute(query)).first()
    if row is None:
        return None
    return AccountCredits(row[0], Snapshot(int(row[2]), int(row[1])))


async def _record(
    connection: AsyncConnection,
    account_id: str,
    kind: str,
    amount: int,
    balance_after: int,
    at: int,
    **details: object,
) -> Snapshot:
    statement = (
        credit_history.insert()
        .values(
            account_id=account_id,
            kind=kind,
            amount_pico=amount,
            balance_after_pico=balance_after,
            created_at=at,
            **details,
        )
        .returning(credit_history.c.seq)
    )
    seq = (await connection.execute(statement)).scalar_one()
    return Snapshot(int(seq), balance_after)


async def add_credits(
    connection: AsyncConnection,
    account_id: str,
    amount_pico: int,
    *,
    kind: str,
    at: int,
    reason: str | None = None,
    reference: str | None = None,
) -> Snapshot | None:
    """Add a grant or purchase; None if the account does not exist."""
    assert amount_pico > 0 and kind in ("grant", "purchase")
    statement = (
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(balance_pico=accounts.c.balance_pico + amount_pico)
        .returning(accounts.c.balance_pico)
    )
    balance = (await connection.execute(statement)).scalar_one_or_none()
    if balance is None:
        return None
    return await _record(
        connection,
        account_id,
        kind,
        amount_pico,
        int(balance),
        at,
        reason=reason,
        reference=reference,
    )


async def _take(
    connection: AsyncConnection, account_id: str, amount: int
) -> int | None:
    statement = (
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance_pico >= amount)
        .values(balance_pico=accounts.c.balance_pico - amount)
        .returning(accounts.c.balance_pico)
    )
    balance = (await connection.execute(statement)).scalar_one_or_none()
    return None if balance is None else int(balance)


@dataclass(frozen=True, slots=True)
class Debit:
    """One settled request's real cost, to be taken from its account."""

    request_id: str
    cost_pico: int
    at: int


async def _balance_locked(connection: AsyncConnection, account_id: str) -> int | None:
    query = (
        select(accounts.c.balance_pico)
        .where(accounts.c.id == account_id)
        .with_for_update()
    )
    balance = (await connection.execute(query)).scalar_one_or_none()
    return None if balance is None else int(balance)


def _floored(balance: int, debits: Sequence[Debit]) -> list[int]:
    """What each debit can take, in order, from ``balance`` without going below 0."""
    taken = []
    for debit in debits:
        amount = max(0, min(debit.cost_pico, balance))
        balance -= amount
        taken.append(amount)
    return taken


def _log_shortfalls(debits: Sequence[Debit], taken: Sequence[int]) -> None:
    for debit, amount in zip(debits, taken, strict=True):
        if amount < debit.cost_pico:
            log.warning(
                "usage cost exceeded the balance; debited what was left",
                extra={
                    "request_id": debit.request_id,
                    "cost": format_usd(debit.cost_pico),
                    "debited": format_usd(amount),
                    "shortfall": format_usd(debit.cost_pico - amount),
                },
            )


async def debit_usages(
    connection: AsyncConnection, account_id: str, debits: Sequence[Debit]
) -> list[Snapshot] | None:
    """Debit each request's real cost in order, one history row each.

    Normally one UPDATE covers them all. If they exceed the balance, which
    admission prevents unless a backend generated more than a request allowed,
    each takes what is left and the rest is recorded as its shortfall: the
    balance never goes below zero. None if there is no such account.
    """
    total = sum(debit.cost_pico for debit in debits)
    final = await _take(connection, account_id, total)
    if final is not None:
        balance = final + total
        taken = [debit.cost_pico for debit in debits]
    else:
        locked = await _balance_locked(connection, account_id)
        if locked is None:
            return None
        balance, taken = locked, _floored(locked, debits)
        final = await _take(connection, account_id, sum(taken))
        assert final is not None
        _log_shortfalls(debits, taken)
    afters = []
    for amount in taken:
        balance -= amount
        afters.append(balance)
    rows = [
        {
            "account_id": account_id,
            "kind": "usage",
            "amount_pico": -amount,
            "balance_after_pico": after,
            "shortfall_pico": debit.cost_pico - amount,
            "request_id": debit.request_id,
            "created_at": debit.at,
        }
        for debit, amount, after in zip(debits, taken, afters, strict=True)
    ]
    statement = credit_history.insert().returning(
        credit_history.c.seq, sort_by_parameter_order=True
    )
    seqs = (await connection.execute(statement, rows)).scalars().all()
    return [Snapshot(int(seq), after) for seq, after in zip(seqs, afters, strict=True)]


async def read_history(
    connection: AsyncConnection,
    account_id: str,
    *,
    limit: int,
    before: int | None = None,
    kind: str | None = None,
) -> list[HistoryEntry]:
    """Up to ``limit`` entries, newest first, older than seq ``before``."""
    query = (
        select(credit_history)
        .where(credit_history.c.account_id == account_id)
        .order_by(credit_history.c.seq.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(credit_history.c.seq < before)
    if kind is not None:
        query = query.where(credit_history.c.kind == kind)
    rows = (await connection.execute(query)).all()
    return [
        HistoryEntry(
            seq=int(row.seq),
            kind=row.kind,
            amount_pico=int(row.amount_pico),
            balance_after_pico=int(row.balance_after_pico),
            shortfall_pico=int(row.shortfall_pico),
            request_id=row.request_id,
            reference=row.reference,
            reason=row.reason,
            created_at=int(row.created_at),
        )
        for row in rows
    ]
