"""The credit book: balances and in-flight reservations, per account, in memory.

Admission asks the book to reserve a request's worst case. The check
"worst case <= balance - reserved" and the reservation happen with no
``await`` between them, so on one event loop no two requests can both take the
last of a balance. A Developer account's request takes one of the month's free
requests instead, while any remain.

The book learns balances from the database: on first use, when its copy is
older than ``refresh_seconds`` (to see grants made by other processes), and
from every settlement and grant committed here. A reading is applied only if
it is newer than what the book has, by history ``seq``, so a slow reload can
never undo a debit learned meanwhile. ``CreditBook`` is the interface a shared
implementation (Redis scripts for several replicas) provides as well.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from daylite.billing.credits import Snapshot
from daylite.billing.plans import plan_for
from daylite.errors import InsufficientCreditsError
from daylite.money import format_usd


@dataclass(frozen=True, slots=True)
class Reservation:
    """One admitted request's claim: a free request, or credits up to ``amount``.

    ``allowance`` is the plan's monthly free requests when it was admitted.
    """

    id: int
    account_id: str
    period: str
    free: bool
    amount_pico: int
    allowance: int = 0


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a committed settlement left behind, for the book to learn."""

    snapshot: Snapshot | None = None
    free_used: int | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    """An account as read from the database for one month."""

    plan: str
    snapshot: Snapshot
    free_used: int


Loader = Callable[[str, str], Awaitable[Loaded]]


class CreditBook(Protocol):
    async def reserve(
        self, account_id: str, worst_case_pico: int, period: str
    ) -> Reservation:
        """Claim a free request or ``worst_case_pico``; raise the 402 if neither."""

    async def settle(self, reservation: Reservation, settlement: Settlement) -> None:
        """Drop the claim and learn the balance the committed settlement left."""

    async def release(self, reservation: Reservation) -> None:
        """Drop the claim without learning anything (nothing was settled)."""

    async def observe(self, account_id: str, snapshot: Snapshot) -> None:
        """Learn a committed grant or purchase."""

    async def reserved_pico(self, account_id: str) -> int:
        """Credits held by requests in flight."""

    async def forget(self, account_id: str) -> None:
        """Read the account's plan and balance again before its next request."""


@dataclass(slots=True)
class _Account:
    plan: str
    snapshot: Snapshot
    period: str
    free_used: int
    loaded_at: float
    changes: int = 0
    credit_holds: dict[int, tuple[int, float]] = field(default_factory=dict)
    free_holds: dict[int, float] = field(default_factory=dict)


class LocalCreditBook:
    """A ``CreditBook`` for one process; reservations expire after ``ttl``."""

    def __init__(
        self,
        loader: Loader,
        *,
        ttl: float,
        refresh_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._refresh = refresh_seconds
        # Reservation lifetimes are operational, not business time, so they
        # follow the monotonic clock rather than the injected wall clock.
        self._monotonic = monotonic
        self._accounts: dict[str, _Account] = {}
        self._ids = itertools.count(1)
        self._loading: dict[tuple[str, str], asyncio.Future[_Account]] = {}

    async def reserve(
        self, account_id: str, worst_case_pico: int, period: str
    ) -> Reservation:
        account = await self._current(account_id, period)
        # From here to the return there is no await: check and claim are atomic.
        now = self._monotonic()
        self._expire(account, now)
        reservation_id = next(self._ids)
        allowance = plan_for(account.plan).free_requests_per_month
        if account.free_used + len(account.free_holds) < allowance:
            account.free_holds[reservation_id] = now + self._ttl
            return Reservation(reservation_id, account_id, period, True, 0, allowance)
        reserved = sum(amount for amount, _ in account.credit_holds.values())
        available = account.snapshot.balance_pico - reserved
        if worst_case_pico > available:
            raise refusal(worst_case_pico, account.snapshot.balance_pico, reserved)
        account.credit_holds[reservation_id] = (worst_case_pico, now + self._ttl)
        return Reservation(reservation_id, account_id, period, False, worst_case_pico)

    async def settle(self, reservation: Reservation, settlement: Settlement) -> None:
        await self.release(reservation)
        account = self._accounts.get(reservation.account_id)
        if account is None:
            return
        if settlement.snapshot is not None:
            _learn(account, settlement.snapshot)
        if settlement.free_used is not None and account.period == reservation.period:
            account.free_used = max(account.free_used, settlement.free_used)
            account.changes += 1

    async def release(self, reservation: Reservation) -> None:
        account = self._accounts.get(reservation.account_id)
        if account is not None:
            account.credit_holds.pop(reservation.id, None)
            account.free_holds.pop(reservation.id, None)

    async def observe(self, account_id: str, snapshot: Snapshot) -> None:
        account = self._accounts.get(account_id)
        if account is not None:
            _learn(account, snapshot)

    async def reserved_pico(self, account_id: str) -> int:
        account = self._accounts.get(account_id)
        if account is None:
            return 0
        self._expire(account, self._monotonic())
        return sum(amount for amount, _ in account.credit_holds.values())

    async def forget(self, account_id: str) -> None:
        account = self._accounts.get(account_id)
        if account is not None:
            # Reservations stay; only the copy of plan and balance goes stale.
            account.loaded_at = float("-inf")

    async def _current(self, account_id: str, period: str) -> _Account:
        account = self._accounts.get(account_id)
        if (
            account is not None
            and account.period == period
            and self._monotonic() - account.loaded_at < self._refresh
        ):
            return account
        # One read per account at a time: a burst of first requests shares it.
        key = (account_id, period)
        loading = self._loading.get(key)
        if loading is None:
            loading = asyncio.ensure_future(self._load(account_id, period))
            self._loading[key] = loading
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    async def _load(self, account_id: str, period: str) -> _Account:
        account = self._accounts.get(account_id)
        changes = account.changes if account is not None else 0
        loaded = await self._loader(account_id, period)
        now = self._monotonic()
        account = self._accounts.get(account_id)
        if account is None:
            account = _Account(
                loaded.plan, loaded.snapshot, period, loaded.free_used, now
            )
            self._accounts[account_id] = account
            return account
        _merge(account, loaded, period, now, quiet=account.changes == changes)
        return account

    def _expire(self, account: _Account, now: float) -> None:
        for key, (_, deadline) in list(account.credit_holds.items()):
            if deadline <= now:
                del account.credit_holds[key]
        for key, deadline in list(account.free_holds.items()):
            if deadline <= now:
                del account.free_holds[key]


def _learn(account: _Account, snapshot: Snapshot) -> None:
    if snapshot.seq > account.snapshot.seq:
        account.snapshot = snapshot
        account.changes += 1


def _merge(
    account: _Account, loaded: Loaded, period: str, now: float, *, quiet: bool
) -> None:
    """Apply a reload; if nothing was learned while it ran, it is the truth."""
    account.plan = loaded.plan
    account.loaded_at = now
    if quiet or loaded.snapshot.seq >= account.snapshot.seq:
        account.snapshot = loaded.snapshot
    if account.period != period:
        account.period = period
        account.free_used = loaded.free_used
    elif quiet:
        account.free_used = loaded.free_used
    else:
        account.free_used = max(account.free_used, loaded.free_used)


def refusal(worst_case: int, balance: int, reserved: int) -> InsufficientCreditsError:
    return InsufficientCreditsError(
        f"Insufficient credits: this request may cost up to {format_usd(worst_case)} "
        f"USD, but only {format_usd(max(0, balance - reserved))} USD is available "
        f"(balance {format_usd(balance)}, {format_usd(reserved)} held by requests in "
        "flight). Buy credits with POST /api/checkout or ask the operator for a "
        "grant; lowering max_tokens lowers the worst case."
    )
