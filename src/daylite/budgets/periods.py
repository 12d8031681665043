"""Budget periods: calendar months in UTC, computed from the injected clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from daylite.timefmt import iso_from_us, us_from_datetime

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """One budget period: ``start_us`` inclusive, ``end_us`` exclusive."""

    start_us: int
    end_us: int

    def contains(self, moment_us: int) -> bool:
        return self.start_us <= moment_us < self.end_us

    @property
    def start_iso(self) -> str:
        return iso_from_us(self.start_us)

    @property
    def end_iso(self) -> str:
        return iso_from_us(self.end_us)


def _month_start(year: int, month: int) -> int:
    return us_from_datetime(datetime(year, month, 1, tzinfo=UTC))


def period_of(moment_us: int) -> Period:
    """The calendar month (UTC) that holds ``moment_us``."""
    moment = _EPOCH + timedelta(microseconds=moment_us)
    year, month = moment.year, moment.month
    following = (year + 1, 1) if month == 12 else (year, month + 1)
    return Period(_month_start(year, month), _month_start(*following))
