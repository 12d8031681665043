"""Settled spend and the alerts it sets off, written once per ledger batch.

The ledger writer commits concurrent requests together; this hook adds the
batch's spend to the monthly rows in one statement, then walks the batch in
order so that each alert names the request whose cost crossed its threshold.
Everything happens inside the ledger's transaction: spend, entry and alert are
committed together or not at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.budgets.alerts import BudgetEvent, crossing_events, record_events
from daylite.budgets.guard import BudgetGuard
from daylite.budgets.periods import period_of
from daylite.budgets.policy import Budget
from daylite.budgets.reservations import SpendKey
from daylite.budgets.store import BudgetStore, add_spent, budgets_in
from daylite.clock import Clock
from daylite.metering.ledger import LedgerEntry


def spend_key(entry: LedgerEntry) -> SpendKey | None:
    """Whose month an entry's cost counts in: the month it was admitted in."""
    if entry.customer is None or entry.cost_pico <= 0:
        return None
    period = period_of(entry.created_at)
    return SpendKey(entry.account_id, entry.customer, period.start_us)


class SpendRecorder:
    """The budgets extension's ledger batch hook."""

    def __init__(self, store: BudgetStore, guard: BudgetGuard, clock: Clock) -> None:
        self._store = store
        self._guard = guard
        self._clock = clock

    async def __call__(
        self, connection: AsyncConnection, entries: Sequence[LedgerEntry]
    ) -> None:
        spending: dict[SpendKey, list[LedgerEntry]] = defaultdict(list)
        for entry in entries:
            key = spend_key(entry)
            if key is not None:
                spending[key].append(entry)
        events = [
            event
            for entry in entries
            if (event := self._guard.take_refusal(entry)) is not None
        ]
        if spending:
            sums = {
                key: sum(e.cost_pico for e in group) for key, group in spending.items()
            }
            totals = await add_spent(connection, sums)
            budgets = await self._budgets(connection, list(spending))
            for key, group in spending.items():
                budget = budgets.get(key)
                if budget is not None:
                    events += self._crossings(
                        budget, key, totals[key] - sums[key], group
                    )
        await record_events(connection, events)

    async def _budgets(
        self, connection: AsyncConnection, keys: list[SpendKey]
    ) -> dict[SpendKey, Budget]:
        """Budgets from the cache admission filled; the database for the rest."""
        found: dict[SpendKey, Budget] = {}
        unknown: dict[str, list[SpendKey]] = defaultdict(list)
        for key in keys:
            known, budget = self._store.peek(key.account_id, key.customer_id)
            if not known:
                unknown[key.account_id].append(key)
            elif budget is not None:
                found[key] = budget
        for account_id, missing in unknown.items():
            stored = await budgets_in(
                connection, account_id, [key.customer_id for key in missing]
            )
            found.update(
                (key, stored[key.customer_id])
                for key in missing
                if key.customer_id in stored
            )
        return found

    def _crossings(
        self, budget: Budget, key: SpendKey, before: int, group: list[LedgerEntry]
    ) -> list[BudgetEvent]:
        events: list[BudgetEvent] = []
        period = period_of(key.period_start)
        now = self._clock.now_us()
        for entry in group:
            after = before + entry.cost_pico
            events += crossing_events(budget, period, before, after, entry.id, now)
            before = after
        return events
