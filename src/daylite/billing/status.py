"""An account's credit standing as its owner and the operator read it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.billing.credits import read_credits
from daylite.billing.plans import free_used, period_bounds, period_of, plan_for


@dataclass(frozen=True, slots=True)
class CreditStatus:
    plan: str
    balance_pico: int
    free_included: int
    free_used: int
    period: str
    period_start: int
    period_end: int

    @property
    def free_remaining(self) -> int:
        return max(0, self.free_included - self.free_used)


async def credit_status(
    connection: AsyncConnection, account_id: str, now_us: int
) -> CreditStatus | None:
    """Plan, balance and this month's free requests; None if no such account."""
    credits = await read_credits(connection, account_id)
    if credits is None:
        return None
    period = period_of(now_us)
    start, end = period_bounds(now_us)
    return CreditStatus(
        plan=credits.plan,
        balance_pico=credits.snapshot.balance_pico,
        free_included=plan_for(credits.plan).free_requests_per_month,
        free_used=await free_used(connection, account_id, period),
        period=period,
        period_start=start,
        period_end=end,
    )
