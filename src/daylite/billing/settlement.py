"""Settling a ledger batch's credit holds with a few statements, not a few per hold.

Each hold registers its claim while the ledger transaction runs its per-entry
hooks; the extension's batch hook then, in the same transaction, counts the
free requests of each account and month in one statement and debits each
account's paid requests with one balance update and one multi-row history
insert. Every claim gets its own result, read by its hold after the commit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from daylite.billing.book import Reservation, Settlement
from daylite.billing.credits import Debit, debit_usages
from daylite.billing.plans import count_free_requests
from daylite.metering.ledger import LedgerEntry


@dataclass(slots=True)
class Claim:
    """One hold's settlement within one transaction; ``result`` set by the batch."""

    reservation: Reservation
    entry: LedgerEntry
    result: Settlement | None = None


class Settler:
    """Collects claims per transaction and applies them at the end of the batch."""

    def __init__(self) -> None:
        # Keyed by the connection's identity; the connection is kept alongside
        # so the key cannot be reused while the entry exists.
        self._open: dict[int, tuple[AsyncConnection, list[Claim]]] = {}

    def add(
        self, connection: AsyncConnection, reservation: Reservation, entry: LedgerEntry
    ) -> Claim:
        slot = self._open.get(id(connection))
        if slot is None:
            self._forget_closed()
            slot = self._open[id(connection)] = (connection, [])
        claim = Claim(reservation, entry)
        slot[1].append(claim)
        return claim

    async def apply(
        self, connection: AsyncConnection, entries: Sequence[LedgerEntry]
    ) -> None:
        """The ledger batch hook: settle every claim made in this transaction."""
        slot = self._open.pop(id(connection), None)
        if slot is None or slot[0] is not connection:
            return
        to_debit = await _count_free(connection, slot[1])
        await _debit(connection, to_debit)
        for claim in slot[1]:
            if claim.result is None:
                claim.result = Settlement()

    def _forget_closed(self) -> None:
        # A transaction that failed before its batch hook leaves its claims
        # behind; its connection is closed by then.
        for key, (connection, _) in list(self._open.items()):
            if connection.closed:
                del self._open[key]


async def _count_free(connection: AsyncConnection, claims: list[Claim]) -> list[Claim]:
    """Settle the claims a free request covers; return the rest, in order."""
    groups: dict[tuple[str, str, int], list[Claim]] = defaultdict(list)
    for claim in claims:
        reservation = claim.reservation
        # Only answered requests use up the allowance; failures cost nothing.
        if reservation.free and claim.entry.http_status == 200:
            key = (reservation.account_id, reservation.period, reservation.allowance)
            groups[key].append(claim)
    for (account_id, period, allowance), group in groups.items():
        counted = await count_free_requests(
            connection, account_id, period, allowance, len(group)
        )
        # Past the allowance (another replica used it up), the rest pay.
        for claim in group[: counted.granted]:
            claim.result = Settlement(free_used=counted.used)
    return [claim for claim in claims if claim.result is None]


async def _debit(connection: AsyncConnection, claims: list[Claim]) -> None:
    groups: dict[str, list[Claim]] = defaultdict(list)
    for claim in claims:
        if claim.entry.cost_pico > 0:
            groups[claim.reservation.account_id].append(claim)
    for account_id, group in groups.items():
        debits = [
            Debit(claim.entry.id, claim.entry.cost_pico, claim.entry.created_at)
            for claim in group
        ]
        snapshots = await debit_usages(connection, account_id, debits)
        if snapshots is None:
            continue
        for claim, snapshot in zip(group, snapshots, strict=True):
            claim.result = Settlement(snapshot=snapshot)
