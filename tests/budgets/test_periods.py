"""Budget periods are calendar months in UTC."""

from __future__ import annotations

from daylite.budgets.periods import period_of
from tests.budgets.support import at


def test_last_microsecond_of_january_and_first_of_february_differ() -> None:
    january = period_of(at("2026-01-31T23:59:59.999999+00:00"))
    february = period_of(at("2026-02-01T00:00:00+00:00"))

    assert (january.start_iso, january.end_iso) == (
        "2026-01-01T00:00:00.000000Z",
        "2026-02-01T00:00:00.000000Z",
    )
    assert february.start_us == january.end_us
    assert february.end_iso == "2026-03-01T00:00:00.000000Z"


def test_december_rolls_into_the_next_year() -> None:
    december = period_of(at("2026-12-31T23:59:59+00:00"))

    assert december.start_iso == "2026-12-01T00:00:00.000000Z"
    assert december.end_iso == "2027-01-01T00:00:00.000000Z"


def test_leap_february_has_29_days() -> None:
    february = period_of(at("2028-02-29T12:00:00+00:00"))

    assert february.end_iso == "2028-03-01T00:00:00.000000Z"
    assert (february.end_us - february.start_us) == 29 * 86_400 * 1_000_000


def test_a_time_west_of_utc_falls_in_its_utc_month() -> None:
    # 20:00 on Jan 31 in New York is already Feb 1 in UTC.
    period = period_of(at("2026-01-31T20:00:00-05:00"))

    assert period.start_iso == "2026-02-01T00:00:00.000000Z"
    assert period.contains(at("2026-02-01T01:00:00+00:00"))
    assert not period.contains(period.end_us)
