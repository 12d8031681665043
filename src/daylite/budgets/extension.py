"""The budgets extension: guard, ledger hook, webhook sender and what the API asks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.admission import Guard
from daylite.budgets.alerts import crossing_events, record_events
from daylite.budgets.endpoint import Endpoint, new_secret, read_endpoint, write_endpoint
from daylite.budgets.guard import BudgetGuard
from daylite.budgets.periods import Period, period_of
from daylite.budgets.policy import Budget
from daylite.budgets.reservations import (
    MemoryReservationBook,
    ReservationBook,
    SpendKey,
    Tally,
)
from daylite.budgets.settlement import SpendRecorder
from daylite.budgets.store import BudgetStore, read_spent
from daylite.budgets.webhooks import WebhookSender
from daylite.clock import Clock
from daylite.metering.ledger import BatchHook
from daylite.money import format_usd
from daylite.timefmt import iso_from_us

if TYPE_CHECKING:
    from daylite.extensions import Services

NAME = "budgets"


def present(budget: Budget, period: Period, tally: Tally) -> dict[str, Any]:
    """A budget and its current period as ``GET /v1/budgets/{id}`` shows it."""
    remaining = max(0, budget.cap_pico - tally.spent - tally.reserved)
    return {
        "object": "budget",
        "customer_id": budget.customer_id,
        "monthly_cap_usd": budget.cap_usd,
        "action_on_cap": budget.action,
        "alert_thresholds": [float(t.text) for t in budget.thresholds],
        "period_start": period.start_iso,
        "period_end": period.end_iso,
        "spent_usd": format_usd(tally.spent),
        "reserved_usd": format_usd(tally.reserved),
        "remaining_usd": format_usd(remaining),
        "thresholds_crossed": [float(t.text) for t in budget.crossed(tally.spent)],
        "created_at": iso_from_us(budget.created_at),
        "updated_at": iso_from_us(budget.updated_at),
    }


class BudgetsExtension:
    """One per process; handlers reach it as ``app.state.extensions["budgets"]``."""

    name = NAME

    def __init__(self, services: Services) -> None:
        self.engine: AsyncEngine = services.engine
        self.clock: Clock = services.clock
        self.store = BudgetStore(services.engine)
        self.book: ReservationBook = MemoryReservationBook(
            self._load_spent, services.clock, services.settings.reservation_ttl
        )
        if services.redis is not None:
            # Replicas share one book in Redis (DAYLITE_REDIS_URL).
            from daylite.budgets.redis_book import RedisReservationBook

            self.book = RedisReservationBook(
                services.redis,
                self._load_spent,
                services.clock,
                services.settings.reservation_ttl,
            )
        budget_guard = BudgetGuard(self.store, self.book, services.clock)
        self.guard: Guard | None = budget_guard
        self.ledger_batch_hook: BatchHook | None = SpendRecorder(
            self.store, budget_guard, services.clock
        )
        self.sender = WebhookSender(services.engine, services.settings)

    async def start(self) -> None:
        self.sender.start()

    async def stop(self) -> None:
        await self.sender.stop()

    async def _load_spent(self, key: SpendKey) -> int:
        spent = await read_spent(
            self.engine, key.account_id, key.period_start, [key.customer_id]
        )
        return spent.get(key.customer_id, 0)

    async def _tallies(
        self, account_id: str, period: Period, customers: list[str]
    ) -> dict[str, Tally]:
        """Spent and reserved now: the book's view where it has one, else stored."""
        tallies: dict[str, Tally] = {}
        missing = []
        for customer in customers:
            held = await self.book.tally(
                SpendKey(account_id, customer, period.start_us)
            )
            if held is None:
                missing.append(customer)
            else:
                tallies[customer] = held
        if missing:
            stored = await read_spent(self.engine, account_id, period.start_us, missing)
            for customer in missing:
                tallies[customer] = Tally(stored.get(customer, 0), 0)
        return tallies

    async def status(self, account_id: str, customer: str) -> dict[str, Any] | None:
        """The body of ``GET /v1/budgets/{customer}``; None without a budget."""
        budget = await self.store.get(account_id, customer)
        if budget is None:
            return None
        period = period_of(self.clock.now_us())
        tallies = await self._tallies(account_id, period, [customer])
        return present(budget, period, tallies[customer])

    async def statuses(
        self, account_id: str, after: str | None, limit: int
    ) -> list[dict[str, Any]]:
        budgets = await self.store.page(account_id, after, limit)
        period = period_of(self.clock.now_us())
        tallies = await self._tallies(
            account_id, period, [budget.customer_id for budget in budgets]
        )
        return [present(b, period, tallies[b.customer_id]) for b in budgets]

    async def put(self, budget: Budget) -> tuple[dict[str, Any], bool]:
        """Create or replace; alerts already due under the new terms go out."""
        stored, created = await self.store.put(budget)
        period = period_of(self.clock.now_us())
        spent = await read_spent(
            self.engine, budget.account_id, period.start_us, [budget.customer_id]
        )
        events = crossing_events(
            stored,
            period,
            0,
            spent.get(budget.customer_id, 0),
            None,
            self.clock.now_us(),
        )
        if events:
            async with self.engine.begin() as connection:
                await record_events(connection, events)
        status = await self.status(budget.account_id, budget.customer_id)
        assert status is not None
        return status, created

    async def delete(self, account_id: str, customer: str) -> bool:
        return await self.store.delete(account_id, customer)

    async def endpoint(self, account_id: str) -> Endpoint:
        return await read_endpoint(self.engine, account_id)

    async def set_endpoint(
        self, account_id: str, url: str, secret: str | None
    ) -> tuple[Endpoint, str | None]:
        """Set the webhook; returns it and the secret if the caller must see it.

        Without a secret the current one is kept, or one is generated (and shown
        this once) when the account has none yet.
        """
        shown = secret
        if secret is None:
            secret = (await self.endpoint(account_id)).secret
            if secret is None:
                secret = shown = new_secret()
        await write_endpoint(self.engine, account_id, url, secret)
        return Endpoint(url, secret), shown

    async def clear_endpoint(self, account_id: str) -> None:
        await write_endpoint(self.engine, account_id, None, None)


def create_budgets_extension(services: Services) -> BudgetsExtension:
    return BudgetsExtension(services)
