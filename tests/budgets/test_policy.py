"""Budget input: exact caps and thresholds, and errors that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from daylite.budgets.policy import Threshold, parse_budget
from daylite.errors import InvalidRequestError


def _parse(**body: Any) -> Any:
    return parse_budget({"customer_id": "c", **body}, "acct_1", 7)


def test_seed_body_becomes_an_exact_budget() -> None:
    budget = _parse(
        monthly_cap_usd=500.00, action_on_cap="block", alert_thresholds=[0.9, 0.5, 0.8]
    )

    assert budget.cap_pico == 500 * 10**12
    assert budget.action == "block"
    assert [t.text for t in budget.thresholds] == ["0.5", "0.8", "0.9"]
    assert (budget.created_at, budget.updated_at) == (7, 7)


def test_float_cap_is_read_as_typed_not_as_binary() -> None:
    assert _parse(monthly_cap_usd=0.1).cap_pico == 100_000_000_000
    assert _parse(monthly_cap_usd="0.000000000001").cap_pico == 1


def test_defaults_are_block_without_thresholds() -> None:
    budget = _parse(monthly_cap_usd=0)

    assert (budget.action, budget.thresholds, budget.cap_pico) == ("block", (), 0)


@pytest.mark.parametrize(
    ("fraction", "millionths", "text"),
    [(0.5, 500_000, "0.5"), ("0.75", 750_000, "0.75"), (1, 1_000_000, "1")],
)
def test_thresholds_are_held_as_exact_millionths(
    fraction: Any, millionths: int, text: str
) -> None:
    (threshold,) = _parse(monthly_cap_usd=1, alert_thresholds=[fraction]).thresholds

    assert threshold == Threshold(millionths)
    assert threshold.text == text
    assert Threshold.parse(text) == threshold


def test_threshold_is_reached_at_exactly_its_share_of_the_cap() -> None:
    half = Threshold(500_000)

    assert half.reached(500_000_000, 1_000_000_000)
    assert not half.reached(499_999_999, 1_000_000_000)


def test_zero_spend_crosses_nothing_even_under_a_zero_cap() -> None:
    budget = _parse(monthly_cap_usd=0, alert_thresholds=[0.5])

    assert budget.crossed(0) == ()
    assert budget.crossed(1) == (Threshold(500_000),)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"monthly_cap_usd": 1, "alert_thresholds": [0.5, "0.500"]},
            "alert_thresholds",
        ),
        ({"monthly_cap_usd": 1, "alert_thresholds": ["NaN"]}, "alert_thresholds"),
        ({"monthly_cap_usd": 1, "alert_thresholds": [0.1] * 11}, "alert_thresholds"),
        ({"monthly_cap_usd": "Infinity"}, "monthly_cap_usd"),
        ({"monthly_cap_usd": None}, "monthly_cap_usd"),
        ({"monthly_cap_usd": 1, "action_on_cap": None, "extra": 1}, "extra"),
    ],
)
def test_bad_input_names_its_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        _parse(**body)

    assert raised.value.param == param
