"""Query parameters: ISO times read exactly, mistakes named in the error."""

from __future__ import annotations

import pytest
from starlette.datastructures import QueryParams

from daylite.errors import InvalidRequestError
from daylite.usage.params import (
    parse_choice,
    parse_id,
    parse_instant,
    parse_limit,
    parse_range,
    single_values,
)

MIDNIGHT = 1_796_860_800_000_000  # 2026-12-10T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-10", MIDNIGHT),
        ("2026-12-10T00:00:00Z", MIDNIGHT),
        ("2026-12-10T00:00:00", MIDNIGHT),
        ("2026-12-10T01:00:00+01:00", MIDNIGHT),
        ("2026-12-10T01:00:00 01:00", MIDNIGHT),
        ("2026-12-09T19:00:00-05:00", MIDNIGHT),
        ("2026-12-10T00:00:00.000001Z", MIDNIGHT + 1),
        ("2026-12-10 00:00:01", MIDNIGHT + 1_000_000),
        ("20261210", MIDNIGHT),
    ],
)
def test_iso_dates_and_times_become_utc_microseconds(text: str, expected: int) -> None:
    assert parse_instant("start", text) == expected


@pytest.mark.parametrize(
    "text", ["", "today", "2026-12-32", "2026-12-10T24:01:00Z", "10:00", "1e9"]
)
def test_unreadable_times_name_the_parameter(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_instant("end", text)

    assert caught.value.param == "end"
    assert repr(text) in caught.value.message


def test_a_range_must_not_be_empty_or_reversed() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_range({"start": "2026-12-10", "end": "2026-12-10T00:00:00Z"})

    assert caught.value.param == "end"
    assert parse_range({"start": "2026-12-10"}) == (MIDNIGHT, None)
    assert parse_range({}) == (None, None)


def test_unknown_and_repeated_parameters_are_refused() -> None:
    allowed = ("customer", "start")
    with pytest.raises(InvalidRequestError) as unknown:
        single_values(QueryParams("custmer=a"), allowed)
    with pytest.raises(InvalidRequestError) as repeated:
        single_values(QueryParams("customer=a&customer=b"), allowed)

    assert unknown.value.param == "custmer"
    assert repeated.value.param == "customer"
    assert single_values(QueryParams("customer=a"), allowed) == {"customer": "a"}


@pytest.mark.parametrize("text", ["", "x" * 201, "bad\nid"])
def test_ids_must_be_printable_and_bounded(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_id("feature", text)

    assert caught.value.param == "feature"


def test_ids_that_could_exist_pass_unchanged() -> None:
    assert parse_id("customer", "acme:eu/42") == "acme:eu/42"
    assert parse_id("customer", None) is None


@pytest.mark.parametrize("text", ["0", "1001", "-1", "1.5", "²", "ten"])
def test_limit_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_limit(text, default=50, most=1000)

    assert caught.value.param == "limit"


def test_limit_default_and_bounds() -> None:
    assert parse_limit(None, default=50, most=1000) == 50
    assert parse_limit("1", default=50, most=1000) == 1
    assert parse_limit("1000", default=50, most=1000) == 1000


def test_choices_name_what_is_allowed() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_choice("granularity", "week", ("day", "hour"))

    assert caught.value.param == "granularity"
    assert "day, hour" in caught.value.message
