"""Usage sums for an account: whole buckets from rollups, the rest from the ledger.

A time range is cut into the whole months, days and hours it covers, read from
the rollups, and the partial hours at its edges, read from ledger entries, so
any range is exact to the microsecond and reads few rows. All parts go into one
SQL statement, which reads one snapshot of the database: totals, breakdowns and
series in one answer always agree with each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Select,
    String,
    case,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.selectable import CTE

from daylite.errors import InvalidRequestError
from daylite.storage.tables import ledger, usage_rollups
from daylite.usage.rollups import (
    BILLED,
    FAILED,
    NONE_KEY,
    REFUSED,
    outcome_expression,
)
from daylite.usage.spans import HOUR, HOUR_US, SPANS, Span, decompose


@dataclass(frozen=True, slots=True)
class UsageFilter:
    """Which ledger entries to count; times are epoch microseconds, end exclusive."""

    account_id: str
    customer: str | None = None
    feature: str | None = None
    model: str | None = None
    start: int | None = None
    end: int | None = None

    def window(self, start: int | None, end: int | None) -> UsageFilter:
        return UsageFilter(
            self.account_id, self.customer, self.feature, self.model, start, end
        )


@dataclass(frozen=True, slots=True)
class Tally:
    """Counts and sums for one group of requests."""

    requests: int = 0
    billed: int = 0
    refused: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_pico: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.requests + other.requests,
            self.billed + other.billed,
            self.refused + other.refused,
            self.failed + other.failed,
            self.tokens_in + other.tokens_in,
            self.tokens_out + other.tokens_out,
            self.cost_pico + other.cost_pico,
        )


@dataclass(frozen=True, slots=True)
class Group:
    """One entry of a breakdown; ``key`` is None for requests without that header."""

    key: str | None
    tally: Tally


@dataclass(frozen=True, slots=True)
class Point:
    start: int
    tally: Tally


@dataclass(frozen=True, slots=True)
class Summary:
    total: Tally
    by_feature: tuple[Group, ...]
    by_model: tuple[Group, ...]
    by_customer: tuple[Group, ...]
    series: tuple[Point, ...] | None


@dataclass(frozen=True, slots=True)
class ExportRow:
    """One bucket x customer x feature x model line of an export."""

    bucket: int
    customer: str | None
    feature: str | None
    model: str | None
    tally: Tally


_BREAKDOWNS = ("feature", "model", "customer")
_SERIES = "series"
MAX_POINTS = 10_000


def _ceil(moment: int, size: int) -> int:
    return -(-moment // size) * size


def _floor(moment: int, size: int) -> int:
    return moment - moment % size


def _bucket(column: ColumnElement[int], size: int | None) -> ColumnElement[int]:
    if size is None:
        return literal(0, BigInteger).label("bucket")
    return (column - column % size).label("bucket")


def _matching(table: Any, flt: UsageFilter) -> list[ColumnElement[bool]]:
    conditions = [table.c.account_id == flt.account_id]
    for name in ("customer", "feature", "model"):
        value = getattr(flt, name)
        if value is not None:
            conditions.append(table.c[name] == value)
    return conditions


def _rollup_part(
    flt: UsageFilter, span: Span, low: int | None, high: int | None, size: int | None
) -> Select[Any]:
    table = usage_rollups
    conditions = [*_matching(table, flt), table.c.span == span.name]
    if low is not None:
        conditions.append(table.c.bucket_start >= low)
    if high is not None:
        conditions.append(table.c.bucket_start < high)
    return select(
        _bucket(table.c.bucket_start, size),
        table.c.customer,
        table.c.feature,
        table.c.model,
        table.c.outcome,
        table.c.requests,
        table.c.tokens_in,
        table.c.tokens_out,
        table.c.cost_pico,
    ).where(*conditions)


def _ledger_part(
    flt: UsageFilter, low: int | None, high: int | None, size: int | None
) -> Select[Any]:
    table = ledger
    conditions = _matching(table, flt)
    if low is not None:
        conditions.append(table.c.created_at >= low)
    if high is not None:
        conditions.append(table.c.created_at < high)
    return select(
        _bucket(table.c.created_at, size),
        func.coalesce(table.c.customer, NONE_KEY).label("customer"),
        func.coalesce(table.c.feature, NONE_KEY).label("feature"),
        func.coalesce(table.c.model, NONE_KEY).label("model"),
        outcome_expression(table.c.status).label("outcome"),
        literal(1, BigInteger).label("requests"),
        table.c.tokens_in,
        table.c.tokens_out,
        table.c.cost_pico,
    ).where(*conditions)


def spans_for(size: int | None, *, rollups: bool = True) -> tuple[Span, ...]:
    """The rollup spans whose rows fit inside buckets of ``size`` (None: any)."""
    if not rollups:
        return ()
    if size is None:
        return SPANS
    return tuple(s for s in SPANS if s.length_us and size % s.length_us == 0)


def plan(
    flt: UsageFilter, size: int | None, spans: Sequence[Span]
) -> list[Select[Any]]:
    """The SELECTs whose rows together stand for exactly the entries ``flt`` matches.

    Each row is labelled with the start of its bucket of ``size`` microseconds
    (or 0 without a size); ``spans`` may be empty to read the ledger alone.
    """
    return [
        _ledger_part(flt, low, high, size)
        if span is None
        else _rollup_part(flt, span, low, high, size)
        for span, low, high in decompose(flt.start, flt.end, spans)
    ]


def _source(flt: UsageFilter, size: int | None, rollups: bool, name: str) -> CTE:
    parts = plan(flt, size, spans_for(size, rollups=rollups))
    if len(parts) == 1:
        return parts[0].cte(name)
    return union_all(*parts).cte(name)


def _sums(src: CTE) -> list[Any]:
    def of(outcome: str) -> Any:
        return func.sum(case((src.c.outcome == outcome, src.c.requests), else_=0))

    return [
        func.sum(src.c.requests).label("requests"),
        of(BILLED).label("billed"),
        of(REFUSED).label("refused"),
        of(FAILED).label("failed"),
        func.sum(src.c.tokens_in).label("tokens_in"),
        func.sum(src.c.tokens_out).label("tokens_out"),
        func.sum(src.c.cost_pico).label("cost_pico"),
    ]


def _tally(row: Any) -> Tally:
    # PostgreSQL sums bigints as numeric (Decimal); int() of it is exact.
    return Tally(
        int(row.requests),
        int(row.billed),
        int(row.refused),
        int(row.failed),
        int(row.tokens_in),
        int(row.tokens_out),
        int(row.cost_pico),
    )


def _key(value: str | None) -> str | None:
    return None if value is None or value == NONE_KEY else value


def _summary_statement(src: CTE, buckets: CTE | None) -> Any:
    selects: list[Select[Any]] = [
        select(
            literal(kind, String).label("kind"),
            src.c[kind].label("key"),
            literal(0, BigInteger).label("bucket"),
            *_sums(src),
        ).group_by(src.c[kind])
        for kind in _BREAKDOWNS
    ]
    if buckets is not None:
        selects.append(
            select(
                literal(_SERIES, String).label("kind"),
                literal(NONE_KEY, String).label("key"),
                buckets.c.bucket,
                *_sums(buckets),
            ).group_by(buckets.c.bucket)
        )
    return union_all(*selects)


def _ranked(groups: dict[str | None, Tally]) -> tuple[Group, ...]:
    ordered = sorted(
        groups.items(),
        key=lambda item: (-item[1].cost_pico, -item[1].requests, item[0] or ""),
    )
    return tuple(Group(key, tally) for key, tally in ordered)


def _filled(flt: UsageFilter, found: dict[int, Tally], size: int) -> tuple[Point, ...]:
    """Every bucket of the range, empty ones too, so a chart needs no gap logic."""
    if flt.start is None and not found:
        return ()
    first = _floor(flt.start, size) if flt.start is not None else min(found)
    if flt.end is not None:
        stop = _ceil(flt.end, size)
    else:
        stop = max(found) + size if found else first
    if (stop - first) // size > MAX_POINTS:
        raise InvalidRequestError(
            f"The series would have {(stop - first) // size} points, more than "
            f"{MAX_POINTS}; narrow start and end or use granularity=day.",
            param="granularity",
        )
    return tuple(
        Point(bucket, found.get(bucket, Tally())) for bucket in range(first, stop, size)
    )


async def summarize(
    connection: AsyncConnection,
    flt: UsageFilter,
    *,
    granularity: int | None = None,
    rollups: bool = True,
) -> Summary:
    """Totals, breakdowns and (given a bucket size) a zero-filled series."""
    # Breakdowns read the biggest buckets; a series needs buckets that fit its
    # points. Both go in one statement, so they see the same snapshot.
    src = _source(flt, None, rollups, "entries")
    buckets = (
        None if granularity is None else _source(flt, granularity, rollups, "buckets")
    )
    rows = await connection.execute(_summary_statement(src, buckets))
    groups: dict[str, dict[str | None, Tally]] = {kind: {} for kind in _BREAKDOWNS}
    found: dict[int, Tally] = {}
    for row in rows:
        if row.kind == _SERIES:
            found[int(row.bucket)] = _tally(row)
        else:
            groups[row.kind][_key(row.key)] = _tally(row)
    total = sum(groups["model"].values(), Tally())
    return Summary(
        total=total,
        by_feature=_ranked(groups["feature"]),
        by_model=_ranked(groups["model"]),
        by_customer=_ranked(groups["customer"]),
        series=None if granularity is None else _filled(flt, found, granularity),
    )


async def export_rows(
    connection: AsyncConnection, flt: UsageFilter, size: int, *, rollups: bool = True
) -> list[ExportRow]:
    """Rows per bucket x customer x feature x model, in that order."""
    src = _source(flt, size, rollups, "entries")
    names = (src.c.bucket, src.c.customer, src.c.feature, src.c.model)
    statement = select(*names, *_sums(src)).group_by(*names).order_by(*names)
    rows = await connection.execute(statement)
    return [
        ExportRow(
            int(row.bucket),
            _key(row.customer),
            _key(row.feature),
            _key(row.model),
            _tally(row),
        )
        for row in rows
    ]


async def extent(
    connection: AsyncConnection, flt: UsageFilter, *, rollups: bool = True
) -> tuple[int, int] | None:
    """The first and last hour holding entries that ``flt`` matches (times ignored)."""
    table: Any = usage_rollups if rollups else ledger
    column = table.c.bucket_start if rollups else table.c.created_at
    conditions = _matching(table, flt)
    if rollups:
        conditions.append(table.c.span == HOUR.name)
    statement = select(func.min(column), func.max(column)).where(*conditions)
    first, last = (await connection.execute(statement)).one()
    if first is None:
        return None
    return _floor(int(first), HOUR_US), _floor(int(last), HOUR_US)
