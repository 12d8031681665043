"""Usage as CSV, produced a day at a time so an export of any size streams.

Rows are bucket x customer x feature x model, with a header, CRLF line ends
and quoting by the csv module, which is what spreadsheets expect. Text cells
that a spreadsheet would run as a formula get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.money import format_usd
from daylite.timefmt import iso_from_us
from daylite.usage.query import ExportRow, UsageFilter, export_rows, extent
from daylite.usage.spans import DAY_US, HOUR_US

COUNT_COLUMNS = (
    "customer",
    "feature",
    "model",
    "requests",
    "billed_requests",
    "refused_requests",
    "failed_requests",
    "tokens_in",
    "tokens_out",
    "cost_usd",
)
# What a spreadsheet treats as the start of a formula (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def columns(size: int) -> tuple[str, ...]:
    return ("date" if size == DAY_US else "hour", *COUNT_COLUMNS)


def text_cell(value: str | None) -> str:
    """Absent ids become an empty cell; formula-like text is defused."""
    if not value:
        return ""
    if value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def bucket_cell(bucket: int, size: int) -> str:
    moment = iso_from_us(bucket)
    return moment[:10] if size == DAY_US else moment[:19] + "Z"


def render(rows: Iterable[ExportRow], size: int) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        tally = row.tally
        writer.writerow(
            (
                bucket_cell(row.bucket, size),
                text_cell(row.customer),
                text_cell(row.feature),
                text_cell(row.model),
                tally.requests,
                tally.billed,
                tally.refused,
                tally.failed,
                tally.tokens_in,
                tally.tokens_out,
                format_usd(tally.cost_pico),
            )
        )
    return buffer.getvalue().encode()


def header(size: int) -> bytes:
    return ",".join(columns(size)).encode() + b"\r\n"


async def open_export(
    engine: AsyncEngine, flt: UsageFilter, size: int, *, rollups: bool = True
) -> AsyncIterator[bytes]:
    """Find where the data lies now, then hand back the chunks to stream."""
    async with engine.connect() as connection:
        span = await extent(connection, flt, rollups=rollups)
    return _chunks(engine, flt, size, span, rollups)


async def _chunks(
    engine: AsyncEngine,
    flt: UsageFilter,
    size: int,
    span: tuple[int, int] | None,
    rollups: bool,
) -> AsyncIterator[bytes]:
    yield header(size)
    if span is None:
        return
    first = span[0] if flt.start is None else max(flt.start, span[0])
    stop = span[1] + HOUR_US if flt.end is None else min(flt.end, span[1] + HOUR_US)
    day = first - first % DAY_US
    while day < stop:
        window = flt.window(max(first, day), min(stop, day + DAY_US))
        # A connection per page: a slow reader must not pin a database snapshot.
        async with engine.connect() as connection:
            rows = await export_rows(connection, window, size, rollups=rollups)
        if rows:
            yield render(rows, size)
        day += DAY_US


def filename(flt: UsageFilter) -> str:
    def stamp(moment: int) -> str:
        text = iso_from_us(moment)
        day = text[:10].replace("-", "")
        if moment % DAY_US == 0:
            return day
        return day + "T" + text[11:19].replace(":", "") + "Z"

    if flt.start is None and flt.end is None:
        return "daylite-usage.csv"
    start = "start" if flt.start is None else stamp(flt.start)
    end = "now" if flt.end is None else stamp(flt.end)
    return f"daylite-usage-{start}-{end}.csv"
