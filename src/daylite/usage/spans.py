"""The bucket sizes rollups are kept in (hour, day, calendar month) and their edges.

A range of time is cut greedily into the biggest whole buckets that fit, then
smaller ones at its edges, then raw ledger time for what is left over, so a
query reads few rows however long the range and stays exact at any edge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from daylite.timefmt import us_from_datetime

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Span:
    """A bucket size: fixed microseconds, or calendar months (UTC) when 0."""

    name: str
    length_us: int

    def floor(self, moment: int) -> int:
        if self.length_us:
            return moment - moment % self.length_us
        day = _EPOCH + timedelta(microseconds=moment)
        return us_from_datetime(datetime(day.year, day.month, 1, tzinfo=UTC))

    def ceil(self, moment: int) -> int:
        start = self.floor(moment)
        return start if start == moment else self.next(start)

    def next(self, start: int) -> int:
        """The bucket after the one that begins at ``start``."""
        if self.length_us:
            return start + self.length_us
        day = _EPOCH + timedelta(microseconds=start)
        year, month = divmod(day.year * 12 + day.month, 12)
        return us_from_datetime(datetime(year, month + 1, 1, tzinfo=UTC))


HOUR = Span("hour", HOUR_US)
DAY = Span("day", DAY_US)
MONTH = Span("month", 0)
SPANS = (MONTH, DAY, HOUR)

# One piece of a decomposed range: rollups of ``span`` (or the ledger when None)
# for bucket starts (or entry times) in [low, high); None is unbounded.
Piece = tuple[Span | None, int | None, int | None]


def decompose(
    start: int | None, end: int | None, spans: Sequence[Span] = SPANS
) -> list[Piece]:
    """Cut [start, end) into whole buckets of ``spans`` (biggest first) and leftovers.

    Every moment of the range lies in exactly one piece, so sums over the pieces
    count every ledger entry once.
    """
    if not spans:
        return [(None, start, end)]
    span, smaller = spans[0], spans[1:]
    low = None if start is None else span.ceil(start)
    high = None if end is None else span.floor(end)
    if low is not None and high is not None and low >= high:
        return decompose(start, end, smaller)
    pieces: list[Piece] = [(span, low, high)]
    if start is not None and low is not None and start < low:
        pieces.extend(decompose(start, low, smaller))
    if end is not None and high is not None and high < end:
        pieces.extend(decompose(high, end, smaller))
    return pieces
