"""The reservation book: spend and in-flight reservations per customer and month.

Admission must check "spent + reserved + this request <= cap" and record the
reservation as one step. In one process that holds because asyncio runs one
task at a time and nothing between the check and the write awaits. The book is
a protocol so that a shared store (Redis, with the same steps in one atomic
script) can serve several replicas.

Spent is loaded from the database the first time a key is used and afterwards
kept up to date as settlements commit. Reservations live only in memory: a
crash forgets them, which frees budget rather than pinning it, and a
reservation whose request never settles or releases expires after a TTL.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from daylite.clock import Clock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpendKey:
    """Whose spend, in which period (the period's start, epoch microseconds)."""

    account_id: str
    customer_id: str
    period_start: int


@dataclass(frozen=True, slots=True)
class Ticket:
    """One reservation: ``amount`` pico-dollars held for ``key``."""

    key: SpendKey
    number: int
    amount: int


@dataclass(frozen=True, slots=True)
class Admission:
    """The book's answer: a ticket, or None with the figures that refused it."""

    ticket: Ticket | None
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class Tally:
    spent: int
    reserved: int


class ReservationBook(Protocol):
    async def reserve(
        self, key: SpendKey, *, want: int, least: int, cap: int | None
    ) -> Admission:
        """Hold up to ``want`` if at least ``least`` fits under ``cap``.

        The amount held is ``min(want, cap - spent - reserved)``; below
        ``least`` nothing is held. ``cap`` None holds ``want`` unconditionally.
        """

    async def settle(self, key: SpendKey, ticket: Ticket | None, cost: int) -> None:
        """Drop ``ticket`` and count ``cost`` as spent; call after the commit."""

    async def release(self, ticket: Ticket) -> None:
        """Drop ``ticket`` without spending anything."""

    async def tally(self, key: SpendKey) -> Tally | None:
        """Spent and reserved for ``key``, or None if the book does not hold it."""


SpentLoader = Callable[[SpendKey], Coroutine[Any, Any, int]]


@dataclass(slots=True)
class _Account:
    loading: asyncio.Task[int] | None
    spent: int = 0
    reserved: int = 0
    holds: dict[int, tuple[int, int]] = field(default_factory=dict)
    next_expiry: int | None = None

    def expire(self, now_us: int) -> None:
        if self.next_expiry is None or now_us < self.next_expiry:
            return
        for number, (amount, expires) in list(self.holds.items()):
            if expires <= now_us:
                del self.holds[number]
                self.reserved -= amount
        self.next_expiry = min((e for _, e in self.holds.values()), default=None)

    def drop(self, number: int) -> None:
        hold = self.holds.pop(number, None)
        if hold is not None:
            self.reserved -= hold[0]


class MemoryReservationBook:
    """The single-process book: exact, and cheap enough for every request."""

    def __init__(self, load: SpentLoader, clock: Clock, ttl_seconds: float) -> None:
        self._load = load
        self._clock = clock
        self._ttl_us = int(ttl_seconds * 1_000_000)
        self._accounts: dict[SpendKey, _Account] = {}
        self._numbers = itertools.count(1)
        self._latest_period = 0

    async def _ready(self, key: SpendKey) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            self._forget_old_periods(key.period_start)
            # The load runs as its own task so that a caller who gives up
            # (a client hanging up) cannot leave the others waiting forever.
            account = _Account(loading=asyncio.create_task(self._load(key)))
            self._accounts[key] = account
        if account.loading is not None:
            task = account.loading
            try:
                loaded = await asyncio.shield(task)
            except Exception:
                if self._accounts.get(key) is account:
                    del self._accounts[key]
                raise
            if account.loading is task:
                # Settlements that arrived during the load are already in
                # ``spent``; counting one twice errs on the side of the cap.
                account.spent += loaded
                account.loading = None
        return account

    def _forget_old_periods(self, period_start: int) -> None:
        if period_start <= self._latest_period:
            return
        self._latest_period = period_start
        stale = [
            key
            for key, account in self._accounts.items()
            if key.period_start < period_start
            and account.loading is None
            and not account.holds
        ]
        for key in stale:
            del self._accounts[key]

    async def reserve(
        self, key: SpendKey, *, want: int, least: int, cap: int | None
    ) -> Admission:
        account = await self._ready(key)
        # From here to the return nothing awaits: check and hold are one step.
        now = self._clock.now_us()
        account.expire(now)
        granted = (
            want if cap is None else min(want, cap - account.spent - account.reserved)
        )
        if granted < least:
            return Admission(None, account.spent, account.reserved)
        ticket = Ticket(key, next(self._numbers), granted)
        expires = now + self._ttl_us
        account.holds[ticket.number] = (granted, expires)
        account.reserved += granted
        if account.next_expiry is None or expires < account.next_expiry:
            account.next_expiry = expires
        return Admission(ticket, account.spent, account.reserved)

    async def settle(self, key: SpendKey, ticket: Ticket | None, cost: int) -> None:
        account = self._accounts.get(key)
        if account is None:
            # Not held: the next load reads the committed total.
            return
        if ticket is not None:
            if ticket.number not in account.holds:
                log.warning(
                    "a reservation expired before its request settled; spend may "
                    "pass the cap: raise DAYLITE_RESERVATION_TTL above the longest "
                    "request",
                    extra={"customer": key.customer_id},
                )
            account.drop(ticket.number)
        account.spent += cost

    async def release(self, ticket: Ticket) -> None:
        account = self._accounts.get(ticket.key)
        if account is not None:
            account.drop(ticket.number)

    async def tally(self, key: SpendKey) -> Tally | None:
        account = self._accounts.get(key)
        if account is None or account.loading is not None:
            return None
        account.expire(self._clock.now_us())
        return Tally(account.spent, account.reserved)
