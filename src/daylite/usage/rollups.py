"""Usage rollups, upserted in the same transaction as the ledger entries they count.

Each entry adds to three rollup rows: its hour, its day and its calendar month
(UTC). A whole ledger batch is summed here first and written as one upsert, in
key order. Because the rows and the ledger entries commit or roll back
together, the rollups hold exactly the sums of the ledger across crashes and
restarts; because the upsert adds to the stored counters under each row's lock,
they stay exact under any number of concurrent writers and replicas, and the
fixed key order means two replicas' batches never deadlock on each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from daylite.metering.ledger import LedgerEntry
from daylite.storage.tables import usage_rollups
from daylite.usage.spans import SPANS

BILLED = "billed"
REFUSED = "refused"
FAILED = "failed"

# A backend answered and the tokens it produced are charged, even for a stream
# the client left or the backend broke off.
BILLED_STATUSES = ("ok", "abandoned", "backend_error")
# The gateway turned the request away before any backend was called: budget,
# credits or rate refusals (402/429) and requests it found invalid (4xx).
REFUSED_STATUSES = ("refused", "invalid")
# Everything else: a backend was tried and gave no billable answer (5xx,
# timeouts, upstream 4xx rejections) or the gateway itself failed.

NONE_KEY = ""
KEY = (
    "account_id",
    "span",
    "bucket_start",
    "customer",
    "feature",
    "model",
    "outcome",
)
_SUMS = ("requests", "tokens_in", "tokens_out", "cost_pico")


def outcome_of(status: str) -> str:
    """The outcome class (billed, refused or failed) of a ledger status."""
    if status in BILLED_STATUSES:
        return BILLED
    if status in REFUSED_STATUSES:
        return REFUSED
    return FAILED


def outcome_expression(status: ColumnElement[Any]) -> ColumnElement[str]:
    """``outcome_of`` as SQL, for queries that read the ledger directly."""
    return case(
        (status.in_(BILLED_STATUSES), BILLED),
        (status.in_(REFUSED_STATUSES), REFUSED),
        else_=FAILED,
    )


def rollup_rows(entry: LedgerEntry) -> list[dict[str, Any]]:
    """The hour, day and month rows ``entry`` adds to."""
    common = {
        "account_id": entry.account_id,
        "customer": entry.customer or NONE_KEY,
        "feature": entry.feature or NONE_KEY,
        "model": entry.model or NONE_KEY,
        "outcome": outcome_of(entry.status),
        "requests": 1,
        "tokens_in": entry.tokens_in,
        "tokens_out": entry.tokens_out,
        "cost_pico": entry.cost_pico,
    }
    return [
        {**common, "span": span.name, "bucket_start": span.floor(entry.created_at)}
        for span in SPANS
    ]


def _upsert(insert: Any) -> Any:
    statement = insert(usage_rollups)
    added = {name: usage_rollups.c[name] + statement.excluded[name] for name in _SUMS}
    return statement.on_conflict_do_update(index_elements=list(KEY), set_=added)


# Built once: compiling an upsert costs more than running it.
_UPSERTS = {
    "sqlite": _upsert(sqlite.insert),
    "postgresql": _upsert(postgresql.insert),
}


def batch_rows(entries: Sequence[LedgerEntry]) -> list[dict[str, Any]]:
    """The rollup additions of ``entries``, one per key, in key order."""
    sums: dict[tuple[Any, ...], list[int]] = {}
    for entry in entries:
        for row in rollup_rows(entry):
            key = tuple(row[name] for name in KEY)
            total = sums.setdefault(key, [0, 0, 0, 0])
            for position, name in enumerate(_SUMS):
                total[position] += row[name]
    return [
        {**dict(zip(KEY, key, strict=True)), **dict(zip(_SUMS, sums[key], strict=True))}
        for key in sorted(sums)
    ]


async def add_to_rollups(
    connection: AsyncConnection, entries: Sequence[LedgerEntry]
) -> None:
    """Ledger batch hook: count ``entries`` in their hour, day and month rows."""
    rows = batch_rows(entries)
    if rows:
        await connection.execute(_UPSERTS[connection.dialect.name], rows)
