"""CSV cells: plain decimals, CRLF, quoting, and no formulas for spreadsheets."""

from __future__ import annotations

import csv
import io

import pytest

from daylite.usage.csv_export import filename, header, render, text_cell
from daylite.usage.query import ExportRow, Tally, UsageFilter
from daylite.usage.spans import DAY_US, HOUR_US

MIDNIGHT = 1_796_860_800_000_000  # 2026-12-10T00:00:00Z


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("x")', '\'=HYPERLINK("x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("acme", "acme"),
        (None, ""),
    ],
)
def test_formula_like_text_is_defused(value: str | None, cell: str) -> None:
    assert text_cell(value) == cell


def test_rows_are_crlf_quoted_and_costs_never_scientific() -> None:
    tally = Tally(3, 1, 1, 1, 10, 20, 40_000)
    rows = [
        ExportRow(MIDNIGHT, "a,b", None, 'm"1', tally),
        ExportRow(MIDNIGHT + HOUR_US, None, "f", "@cf/model", Tally(cost_pico=10**19)),
    ]

    text = render(rows, HOUR_US).decode()

    assert text == (
        '2026-12-10T00:00:00Z,"a,b",,"m""1",3,1,1,1,10,20,0.00000004\r\n'
        "2026-12-10T01:00:00Z,,f,'@cf/model,0,0,0,0,0,0,10000000\r\n"
    )
    assert list(csv.reader(io.StringIO(text, newline="")))[0][1] == "a,b"


def test_daily_rows_carry_a_date_and_the_header_matches() -> None:
    text = render([ExportRow(MIDNIGHT, "c", "f", "m", Tally(1, 1))], DAY_US).decode()

    assert text.startswith("2026-12-10,c,f,m,1,1,0,0,0,0,0\r\n")
    assert header(DAY_US).decode().startswith("date,customer,feature,model,")
    assert header(HOUR_US).decode().startswith("hour,")


@pytest.mark.parametrize(
    ("start", "end", "name"),
    [
        (None, None, "daylite-usage.csv"),
        (MIDNIGHT, None, "daylite-usage-20261210-now.csv"),
        (None, MIDNIGHT, "daylite-usage-start-20261210.csv"),
        (
            MIDNIGHT + 90 * 60 * 10**6,
            MIDNIGHT + DAY_US,
            "daylite-usage-20261210T013000Z-20261211.csv",
        ),
    ],
)
def test_the_filename_names_the_range(
    start: int | None, end: int | None, name: str
) -> None:
    assert filename(UsageFilter("a", start=start, end=end)) == name
