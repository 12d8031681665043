"""Admission: the checks a request passes before any backend is called.

Each guard (budgets, credits, plan quotas) reserves the request's worst-case
cost and hands back a hold. Holds are settled inside the ledger entry's own
transaction, so spend and ledger can never disagree, and released afterwards.
A refusal by a later guard releases the holds the earlier ones gave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.auth import Principal
from daylite.catalog import Model
from daylite.metering.ledger import LedgerEntry


@dataclass(slots=True)
class Call:
    """One inference request as the pipeline sees it."""

    request_id: str
    principal: Principal
    account_id: str
    endpoint: str
    customer: str | None
    feature: str | None
    model: Model
    payload: dict[str, Any]
    stream: bool
    created_at: int
    worst_case_pico: int = 0
    input_bound: int = 0
    output_bound: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)


class Hold(Protocol):
    async def settle(self, connection: AsyncConnection, entry: LedgerEntry) -> None:
        """Record the real cost of ``entry`` in the same transaction as the entry."""

    async def release(self) -> None:
        """Free whatever the reservation still holds; safe to call twice."""


class Guard(Protocol):
    async def admit(self, call: Call) -> Hold | None:
        """Reserve ``call.worst_case_pico`` or raise the refusal."""


async def admit_all(guards: Sequence[Guard], call: Call) -> list[Hold]:
    holds: list[Hold] = []
    try:
        for guard in guards:
            hold = await guard.admit(call)
            if hold is not None:
                holds.append(hold)
    except BaseException:
        await release_all(holds)
        raise
    return holds


async def release_all(holds: Sequence[Hold]) -> None:
    for hold in holds:
        await hold.release()
