"""Ranges cut into whole months, days and hours, with only the leftovers raw."""

from __future__ import annotations

import random

import pytest

from daylite.usage.spans import DAY, DAY_US, HOUR, HOUR_US, MONTH, Piece, decompose

DEC = 1_796_083_200_000_000  # 2026-12-01T00:00:00Z
JAN = 1_798_761_600_000_000  # 2027-01-01T00:00:00Z
FEB = JAN + 31 * DAY_US  # 2027-02-01T00:00:00Z
MAR = FEB + 28 * DAY_US  # 2027-03-01T00:00:00Z


def test_calendar_months_have_their_own_lengths() -> None:
    assert MONTH.floor(DEC + 17 * DAY_US + 5) == DEC
    assert MONTH.next(DEC) == JAN
    assert MONTH.next(JAN) == FEB
    assert MONTH.next(FEB) == MAR
    assert MONTH.ceil(DEC) == DEC
    assert MONTH.ceil(DEC + 1) == JAN


def names(pieces: list[Piece]) -> list[tuple[str, int | None, int | None]]:
    return [(span.name if span else "ledger", low, high) for span, low, high in pieces]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, [("month", None, None)]),
        (DEC, JAN, [("month", DEC, JAN)]),
        (DEC, FEB, [("month", DEC, FEB)]),
        (DEC + DAY_US, JAN, [("day", DEC + DAY_US, JAN)]),
        (
            DEC + 90 * 60 * 10**6,
            JAN + HOUR_US + 7,
            [
                ("day", DEC + DAY_US, JAN),
                ("hour", DEC + 2 * HOUR_US, DEC + DAY_US),
                ("ledger", DEC + 90 * 60 * 10**6, DEC + 2 * HOUR_US),
                ("hour", JAN, JAN + HOUR_US),
                ("ledger", JAN + HOUR_US, JAN + HOUR_US + 7),
            ],
        ),
        (DEC + 5, DEC + 10, [("ledger", DEC + 5, DEC + 10)]),
        (
            None,
            JAN + 3 * DAY_US,
            [("month", None, JAN), ("day", JAN, JAN + 3 * DAY_US)],
        ),
    ],
)
def test_ranges_take_the_biggest_whole_buckets_first(
    start: int | None, end: int | None, expected: list[tuple[str, int, int]]
) -> None:
    assert names(decompose(start, end)) == expected


def test_without_months_a_month_is_read_as_days() -> None:
    assert names(decompose(DEC, JAN, (DAY, HOUR))) == [("day", DEC, JAN)]
    assert names(decompose(DEC, DEC + 1, ())) == [("ledger", DEC, DEC + 1)]


def test_pieces_tile_the_range_exactly() -> None:
    rng = random.Random(5)
    for _ in range(2_000):
        start = DEC - 40 * DAY_US + rng.randrange(120 * DAY_US)
        end = start + rng.choice(
            [1, HOUR_US, DAY_US, 40 * DAY_US, rng.randrange(10**14)]
        )
        pieces = decompose(start, end)
        covered = sorted((low, high) for _, low, high in pieces)
        assert covered[0][0] == start and covered[-1][1] == end
        for (_, high), (low, _) in zip(covered, covered[1:], strict=False):
            assert high == low
        for span, low, high in pieces:
            assert low is not None and high is not None and low < high
            if span is not None:
                assert span.floor(low) == low and span.floor(high) == high
