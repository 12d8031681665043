"""The admission guard for credits and plans, and the hold it hands back.

``CreditGuard.admit`` claims a free request or the worst-case cost from the
credit book. ``CreditHold.settle`` runs inside the ledger entry's own
transaction and hands its claim to the ``Settler``, whose batch hook counts
the free request or debits the real cost with a history row before that same
transaction commits, so the entry and the money can never disagree.
``release`` runs after the commit (or a failure) and tells the book what was
settled.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.admission import Call
from daylite.billing.book import CreditBook, Reservation
from daylite.billing.plans import period_of
from daylite.billing.settlement import Claim, Settler
from daylite.metering.ledger import LedgerEntry


class CreditHold:
    """One request's claim on free requests or credits, settled exactly once."""

    def __init__(
        self, book: CreditBook, settler: Settler, reservation: Reservation
    ) -> None:
        self._book = book
        self._settler = settler
        self._reservation = reservation
        self._settled_in: AsyncConnection | None = None
        self._claim: Claim | None = None
        self._released = False

    @property
    def reservation(self) -> Reservation:
        return self._reservation

    async def settle(self, connection: AsyncConnection, entry: LedgerEntry) -> None:
        # The ledger retries a failed batch in a new transaction; only a second
        # call within the same transaction would count the request twice.
        if self._settled_in is connection:
            return
        self._settled_in = connection
        self._claim = self._settler.add(connection, self._reservation, entry)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        settlement = self._claim.result if self._claim is not None else None
        if settlement is None:
            await self._book.release(self._reservation)
        else:
            await self._book.settle(self._reservation, settlement)


class CreditGuard:
    """Admits a request only if a free request or the balance can cover it."""

    def __init__(self, book: CreditBook, settler: Settler) -> None:
        self._book = book
        self._settler = settler

    async def admit(self, call: Call) -> CreditHold:
        period = period_of(call.created_at)
        reservation = await self._book.reserve(
            call.account_id, call.worst_case_pico, period
        )
        return CreditHold(self._book, self._settler, reservation)
