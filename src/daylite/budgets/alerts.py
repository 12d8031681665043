"""Budget events and the durable outbox they wait in until a webhook takes them.

An event is written in the same transaction as the ledger entry that caused it,
so an event exists if and only if the spend behind it was committed. A unique
index over (account, customer, period, kind, threshold, cap) turns "at most once
per threshold per period" into a fact of the database: a second insert of the
same event does nothing, whichever process or restart attempts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.budgets.periods import Period
from daylite.budgets.policy import Budget, Threshold
from daylite.budgets.store import upsert
from daylite.ids import new_id
from daylite.money import format_usd
from daylite.storage.tables import budget_events
from daylite.timefmt import iso_from_us

THRESHOLD_CROSSED = "budget.threshold_crossed"
CAP_REACHED = "budget.cap_reached"
_WHOLE_CAP = Threshold(1_000_000)


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """One alert: a threshold crossed, or the cap reached, in one period."""

    kind: str
    budget: Budget
    period: Period
    threshold: Threshold
    spent_pico: int
    request_id: str | None
    created_at: int
    id: str = ""

    def body(self) -> dict[str, Any]:
        budget = self.budget
        return {
            "id": self.id,
            "type": self.kind,
            "created_at": iso_from_us(self.created_at),
            "account_id": budget.account_id,
            "customer_id": budget.customer_id,
            "threshold": self.threshold.text,
            "spend_usd": format_usd(self.spent_pico),
            "cap_usd": budget.cap_usd,
            "action_on_cap": budget.action,
            "period_start": self.period.start_iso,
            "period_end": self.period.end_iso,
            "request_id": self.request_id,
        }

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.budget.account_id,
            "customer_id": self.budget.customer_id,
            "period_start": self.period.start_us,
            "kind": self.kind,
            "threshold": self.threshold.text,
            "cap_pico": self.budget.cap_pico,
            "payload": orjson.dumps(self.body()).decode(),
            "state": "pending",
            "attempts": 0,
            "next_attempt_at": 0,
            "created_at": self.created_at,
        }


def _event(
    kind: str,
    budget: Budget,
    period: Period,
    threshold: Threshold,
    spent_pico: int,
    request_id: str | None,
    now_us: int,
) -> BudgetEvent:
    return BudgetEvent(
        kind, budget, period, threshold, spent_pico, request_id, now_us, new_id("evt")
    )


def crossing_events(
    budget: Budget,
    period: Period,
    before_pico: int,
    after_pico: int,
    request_id: str | None,
    now_us: int,
) -> list[BudgetEvent]:
    """Events for what spend going from ``before`` to ``after`` crossed."""
    if after_pico <= 0:
        return []
    events = [
        _event(THRESHOLD_CROSSED, budget, period, t, after_pico, request_id, now_us)
        for t in budget.thresholds
        if t.reached(after_pico, budget.cap_pico)
        and not (before_pico > 0 and t.reached(before_pico, budget.cap_pico))
    ]
    cap = budget.cap_pico
    if after_pico >= cap and not (before_pico > 0 and before_pico >= cap):
        events.append(
            _event(
                CAP_REACHED, budget, period, _WHOLE_CAP, after_pico, request_id, now_us
            )
        )
    return events


def refusal_event(
    budget: Budget, period: Period, spent_pico: int, request_id: str, now_us: int
) -> BudgetEvent:
    """The cap-reached event for a request refused at the cap."""
    return _event(
        CAP_REACHED, budget, period, _WHOLE_CAP, spent_pico, request_id, now_us
    )


async def record_events(
    connection: AsyncConnection, events: Sequence[BudgetEvent]
) -> None:
    """Queue ``events`` in the outbox; ones already recorded are left alone."""
    if not events:
        return
    statement = upsert(connection, budget_events).values([e.row() for e in events])
    await connection.execute(statement.on_conflict_do_nothing())
