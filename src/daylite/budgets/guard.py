"""Admission by reservation: the budget guard and the hold it hands back.

Every request that names a customer gets a hold, with or without a budget, so
that its settled cost reaches the reservation book once the ledger transaction
has committed: a budget created while the request was in flight still counts it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.admission import Call
from daylite.budgets.alerts import BudgetEvent, refusal_event
from daylite.budgets.periods import Period, period_of
from daylite.budgets.policy import Budget
from daylite.budgets.reservations import Admission, ReservationBook, SpendKey, Ticket
from daylite.budgets.store import BudgetStore
from daylite.clock import Clock
from daylite.errors import BudgetExceededError
from daylite.metering.estimate import output_bound, output_choices, prompt_count
from daylite.metering.ledger import LedgerEntry
from daylite.money import format_usd

# Clamping below this many output tokens would hand back answers too short to
# use, so a request that cannot afford them is refused instead.
CLAMP_FLOOR_TOKENS = 16
CLAMPED_HEADER = "x-daylite-budget-clamped"
_REFUSALS_LIMIT = 10_000


@dataclass(slots=True)
class BudgetHold:
    """A request's stake in its customer's month: a reservation, if budgeted.

    The ledger batch hook writes the spend; the hold only carries the cost
    to the reservation book once the ledger transaction has committed.
    """

    book: ReservationBook
    key: SpendKey
    ticket: Ticket | None
    cost: int | None = None
    released: bool = False

    async def settle(self, connection: AsyncConnection, entry: LedgerEntry) -> None:
        # Set, not added: a batch that failed is retried, calling this again.
        self.cost = entry.cost_pico

    async def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self.cost is not None:
            await self.book.settle(self.key, self.ticket, self.cost)
        elif self.ticket is not None:
            await self.book.release(self.ticket)


class BudgetGuard:
    """Reserves each request's worst case against its customer's monthly cap."""

    def __init__(self, store: BudgetStore, book: ReservationBook, clock: Clock) -> None:
        self._store = store
        self._book = book
        self._clock = clock
        self._refusals: dict[str, BudgetEvent] = {}

    async def admit(self, call: Call) -> BudgetHold | None:
        if call.customer is None:
            return None
        period = period_of(call.created_at)
        key = SpendKey(call.account_id, call.customer, period.start_us)
        budget = await self._store.get(call.account_id, call.customer)
        hold = BudgetHold(self._book, key, None)
        if budget is None:
            return hold
        want = call.worst_case_pico
        admission = await self._book.reserve(
            key,
            want=want,
            least=_least(call) if budget.action == "clamp" else want,
            cap=None if budget.action == "alert" else budget.cap_pico,
        )
        if admission.ticket is None:
            self._remember_refusal(call, budget, period, admission)
            raise BudgetExceededError(_refusal_message(call, budget, period, admission))
        hold.ticket = admission.ticket
        if admission.ticket.amount < want:
            clamp(call, admission.ticket.amount)
        return hold

    def _remember_refusal(
        self, call: Call, budget: Budget, period: Period, admission: Admission
    ) -> None:
        if len(self._refusals) >= _REFUSALS_LIMIT:
            self._refusals.clear()
        self._refusals[call.request_id] = refusal_event(
            budget, period, admission.spent, call.request_id, self._clock.now_us()
        )

    def take_refusal(self, entry: LedgerEntry) -> BudgetEvent | None:
        """The cap event of a request this guard refused, once; else None."""
        if entry.error_code != BudgetExceededError.code:
            return None
        return self._refusals.pop(entry.id, None)


def _refusal_message(
    call: Call, budget: Budget, period: Period, admission: Admission
) -> str:
    clamped = (
        f" (not even {CLAMP_FLOOR_TOKENS} output tokens fit)"
        if budget.action == "clamp"
        else ""
    )
    return (
        f"Budget exceeded for customer {budget.customer_id!r}: "
        f"${format_usd(admission.spent)} of the ${budget.cap_usd} monthly cap is "
        f"spent and ${format_usd(admission.reserved)} is reserved by requests in "
        f"flight, and this request could cost up to "
        f"${format_usd(call.worst_case_pico)}{clamped}. The budget renews at "
        f"{period.end_iso}; raise the cap with POST /v1/budgets."
    )


def _input_cost(call: Call) -> int:
    return call.worst_case_pico - call.output_bound * call.model.price.output


def _least(call: Call) -> int:
    """The cheapest version of ``call`` that clamping may still admit."""
    answers = output_choices(call.payload) * prompt_count(call.payload)
    floor = CLAMP_FLOOR_TOKENS * answers * call.model.price.output
    return min(call.worst_case_pico, _input_cost(call) + floor)


def clamp(call: Call, budget_pico: int) -> None:
    """Lower the call's max_tokens so its worst case fits in ``budget_pico``."""
    price = call.model.price.output
    input_cost = _input_cost(call)
    answers = output_choices(call.payload) * prompt_count(call.payload)
    tokens = (budget_pico - input_cost) // (price * answers)
    # Lower the limits the client sent, and add max_tokens only when it sent
    # none: reasoning models refuse max_tokens beside max_completion_tokens.
    sent = [k for k in ("max_tokens", "max_completion_tokens") if k in call.payload]
    lowered: dict[str, int] = {key: tokens for key in sent or ["max_tokens"]}
    payload = {**call.payload, **lowered}
    call.payload = payload
    call.output_bound = output_bound(payload, call.model.max_output_tokens)
    call.worst_case_pico = input_cost + call.output_bound * price
    call.response_headers[CLAMPED_HEADER] = str(tokens)
