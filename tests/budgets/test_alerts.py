"""Which events a settlement produces, and what their payload says."""

from __future__ import annotations

import orjson

from daylite.budgets.alerts import CAP_REACHED, THRESHOLD_CROSSED, crossing_events
from daylite.budgets.periods import period_of
from daylite.budgets.policy import parse_budget
from tests.budgets.support import at

NOW = at("2026-01-15T10:00:00+00:00")
PERIOD = period_of(NOW)
BUDGET = parse_budget(
    {"customer_id": "c", "monthly_cap_usd": "0.001", "alert_thresholds": [0.5, 0.75]},
    "acct_1",
    NOW,
)


def _kinds(before: int, after: int) -> list[tuple[str, str]]:
    events = crossing_events(BUDGET, PERIOD, before, after, "req_1", NOW)
    return [(event.kind, event.threshold.text) for event in events]


def test_only_thresholds_crossed_by_this_settlement_fire() -> None:
    assert _kinds(0, 400_000_000) == []
    assert _kinds(400_000_000, 600_000_000) == [(THRESHOLD_CROSSED, "0.5")]
    assert _kinds(600_000_000, 700_000_000) == []
    assert _kinds(600_000_000, 800_000_000) == [(THRESHOLD_CROSSED, "0.75")]


def test_one_jump_fires_every_threshold_it_passes_and_the_cap() -> None:
    assert _kinds(200_000_000, 1_000_000_000) == [
        (THRESHOLD_CROSSED, "0.5"),
        (THRESHOLD_CROSSED, "0.75"),
        (CAP_REACHED, "1"),
    ]


def test_landing_exactly_on_a_threshold_crosses_it() -> None:
    assert _kinds(499_999_999, 500_000_000) == [(THRESHOLD_CROSSED, "0.5")]


def test_payload_names_customer_threshold_spend_cap_and_period() -> None:
    (event,) = crossing_events(BUDGET, PERIOD, 400_000_000, 600_000_000, "req_1", NOW)

    body = orjson.loads(event.row()["payload"])
    assert body == {
        "id": event.id,
        "type": "budget.threshold_crossed",
        "created_at": "2026-01-15T10:00:00.000000Z",
        "account_id": "acct_1",
        "customer_id": "c",
        "threshold": "0.5",
        "spend_usd": "0.0006",
        "cap_usd": "0.001",
        "action_on_cap": "block",
        "period_start": "2026-01-01T00:00:00.000000Z",
        "period_end": "2026-02-01T00:00:00.000000Z",
        "request_id": "req_1",
    }
    assert event.id.startswith("evt_")
