"""Plans and the monthly free-request allowance that comes with them.

Developer accounts get 50,000 requests per calendar month (UTC) free; past
that, and on every paid plan, requests are paid from credits. A free request
is still metered and ledgered at list price; it only skips the debit. The
months' counters live in ``free_requests`` and only ever grow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.billing.upsert import insert_ignoring_duplicates
from daylite.storage.tables import accounts, free_requests
from daylite.timefmt import us_from_datetime

log = logging.getLogger(__name__)

DEVELOPER_FREE_REQUESTS = 50_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    free_requests_per_month: int
    description: str


PLANS: dict[str, Plan] = {
    "developer": Plan(
        "developer",
        DEVELOPER_FREE_REQUESTS,
        "50,000 requests per calendar month free, then paid from credits",
    ),
    "pro": Plan("pro", 0, "every request is paid from credits"),
}


def plan_for(plan_id: str) -> Plan:
    """The plan named ``plan_id``; an unknown name is treated as fully paid."""
    plan = PLANS.get(plan_id)
    if plan is None:
        log.warning("unknown plan; every request is paid", extra={"plan": plan_id})
        return Plan(plan_id, 0, "unknown plan: every request is paid from credits")
    return plan


def _month_start(us: int) -> datetime:
    moment = _EPOCH + timedelta(microseconds=us)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def period_of(us: int) -> str:
    """The calendar month (UTC) holding the instant ``us``, as ``YYYY-MM``."""
    start = _month_start(us)
    return f"{start.year:04d}-{start.month:02d}"


def period_bounds(us: int) -> tuple[int, int]:
    """Start and end (exclusive) of the month holding ``us``, in microseconds."""
    start = _month_start(us)
    if start.month == 12:
        end = start.replace(year=start.year + 1, month=1)
    else:
        end = start.replace(month=start.month + 1)
    return us_from_datetime(start), us_from_datetime(end)


async def free_used(connection: AsyncConnection, account_id: str, period: str) -> int:
    query = select(free_requests.c.used).where(
        free_requests.c.account_id == account_id, free_requests.c.period == period
    )
    used = (await connection.execute(query)).scalar_one_or_none()
    return int(used or 0)


@dataclass(frozen=True, slots=True)
class FreeCount:
    """How many of the requests asked for were free, and the month's new total."""

    granted: int
    used: int | None


async def _add_if_room(
    connection: AsyncConnection,
    account_id: str,
    period: str,
    allowance: int,
    count: int,
) -> int | None:
    statement = (
        update(free_requests)
        .where(
            free_requests.c.account_id == account_id,
            free_requests.c.period == period,
            free_requests.c.used + count <= allowance,
        )
        .values(used=free_requests.c.used + count)
        .returning(free_requests.c.used)
    )
    used = (await connection.execute(statement)).scalar_one_or_none()
    return None if used is None else int(used)


async def _used_locked(
    connection: AsyncConnection, account_id: str, period: str
) -> int:
    query = (
        select(free_requests.c.used)
        .where(
            free_requests.c.account_id == account_id, free_requests.c.period == period
        )
        .with_for_update()
    )
    return int((await connection.execute(query)).scalar_one())


async def count_free_requests(
    connection: AsyncConnection,
    account_id: str,
    period: str,
    allowance: int,
    wanted: int,
) -> FreeCount:
    """Count up to ``wanted`` requests as free, as many as the month has room for."""
    if allowance <= 0 or wanted <= 0:
        return FreeCount(0, None)
    used = await _add_if_room(connection, account_id, period, allowance, wanted)
    if used is not None:
        return FreeCount(wanted, used)
    first = min(wanted, allowance)
    row = {"account_id": account_id, "period": period, "used": first}
    if await insert_ignoring_duplicates(connection, free_requests, row):
        return FreeCount(first, first)
    # The month's row exists (perhaps just created by another transaction) but
    # has less room than asked for: lock it and take what is left.
    current = await _used_locked(connection, account_id, period)
    granted = max(0, min(wanted, allowance - current))
    if granted == 0:
        return FreeCount(0, current)
    used = await _add_if_room(connection, account_id, period, allowance, granted)
    return FreeCount(granted, used)


async def set_plan(connection: AsyncConnection, account_id: str, plan: str) -> bool:
    """Move an account to ``plan``; False if there is no such account."""
    assert plan in PLANS
    statement = update(accounts).where(accounts.c.id == account_id).values(plan=plan)
    return bool((await connection.execute(statement)).rowcount)
