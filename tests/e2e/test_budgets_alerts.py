"""Budget alerts: signed webhooks, once per threshold per period, across restarts."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daylite.clock import FixedClock
from tests.budgets.support import (
    WebhookReceiver,
    ask,
    at,
    chat_body,
    set_budget,
    signature_valid,
    wait_until,
)
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import DEFAULT_MODELS, GatewayServer, config_for

# Quick polling and retries keep these tests fast; production waits longer.
FAST_WEBHOOKS = {"webhook_poll_interval": 0.05, "webhook_retry_base": 0.05}
NOW = "2026-01-15T10:00:00+00:00"
JANUARY = ("2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.000000Z")

# A model priced at 1000 USD per 1M tokens, so that dollars are reached quickly.
PREMIUM = (
    DEFAULT_MODELS
    + """
[models."premium"]
context_length = 1000000
max_output_tokens = 1000000
input = "1000"
output = "1000"
routes = [{ backend = "primary" }]
"""
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(fail_first=2) as hooks:
        yield hooks


def _server(data_dir: Path, upstream: FakeUpstream, clock: FixedClock) -> GatewayServer:
    return GatewayServer(
        data_dir, config_for(upstream.url, models=PREMIUM), clock=clock, **FAST_WEBHOOKS
    )


def _hook(http: httpx.Client, url: str) -> str:
    """Point the account's webhook at ``url``; returns the generated secret."""
    secret: str = http.put("/v1/webhook", json={"url": url}).json()["secret"]
    return secret


def _events(gateway: GatewayServer, customer: str) -> list[Any]:
    return gateway.sql(
        "SELECT kind, threshold, state FROM budget_events WHERE customer_id = ? "
        "ORDER BY created_at, threshold",
        (customer,),
    )


def _thresholds(gateway: GatewayServer, customer: str) -> list[str]:
    return [str(event["threshold"]) for event in _events(gateway, customer)]


def _delivered(gateway: GatewayServer, count: int) -> bool:
    rows = gateway.sql("SELECT state FROM budget_events")
    return len(rows) == count and all(row["state"] == "delivered" for row in rows)


def _settle_quietly() -> None:
    # Waiting for something NOT to happen: give the sender several of its
    # 0.05 s polls to (wrongly) send anything again.
    time.sleep(0.5)


def test_500_dollar_budget_alerts_once_per_threshold_even_across_a_restart(
    tmp_path: Path, upstream: FakeUpstream, receiver: WebhookReceiver
) -> None:
    """The seed's example: $500 cap, thresholds 0.5 / 0.8 / 0.9, a flaky endpoint."""
    clock = FixedClock(at(NOW))
    first = _server(tmp_path / "gw", upstream, clock).start()
    try:
        with first.http() as http:
            secret = http.put("/v1/webhook", json={"url": receiver.url}).json()[
                "secret"
            ]
            set_budget(http, "customer_123", 500.00, "block", [0.5, 0.8, 0.9])
            # $0.001 a token: 260 -> 410 -> 460 dollars; then 50 more cannot fit.
            spend = [
                ask(
                    http,
                    "customer_123",
                    chat_body(f"x usage=0,{n}", n, model="premium"),
                )
                for n in (260_000, 150_000, 50_000, 50_000)
            ]
        assert wait_until(lambda: _delivered(first, 4))
    finally:
        first.stop()

    second = _server(tmp_path / "gw", upstream, clock)
    second.key = first.key
    with second:
        with second.http() as http:
            again = [
                ask(
                    http,
                    "customer_123",
                    chat_body("x usage=0,50000", 50_000, model="premium"),
                ),
                ask(
                    http,
                    "customer_123",
                    chat_body("x usage=0,1000", 1_000, model="premium"),
                ),
            ]
        _settle_quietly()
        events = _events(second, "customer_123")

    assert [r.status_code for r in spend] == [200, 200, 200, 429]
    assert [r.headers.get("x-daylite-cost") for r in spend[:3]] == ["260", "150", "50"]
    assert [r.status_code for r in again] == [429, 200]
    assert [(e["kind"], e["threshold"], e["state"]) for e in events] == [
        ("budget.threshold_crossed", "0.5", "delivered"),
        ("budget.threshold_crossed", "0.8", "delivered"),
        ("budget.threshold_crossed", "0.9", "delivered"),
        ("budget.cap_reached", "1", "delivered"),
    ]
    accepted = receiver.accepted()
    payloads = sorted(
        (d.event["type"], d.event["threshold"], d.event["spend_usd"]) for d in accepted
    )
    assert payloads == [
        ("budget.cap_reached", "1", "460"),
        ("budget.threshold_crossed", "0.5", "260"),
        ("budget.threshold_crossed", "0.8", "410"),
        ("budget.threshold_crossed", "0.9", "460"),
    ]
    attempts = receiver.all_attempts()
    assert Counter(a.headers["x-daylite-event-id"] for a in attempts) == {
        d.event["id"]: 3 for d in accepted
    }
    for attempt in attempts:
        assert signature_valid(secret, attempt.headers, attempt.body)
        event = attempt.event
        assert attempt.headers["x-daylite-event-id"] == event["id"]
        assert event["customer_id"] == "customer_123"
        assert event["cap_usd"] == "500"
        assert (event["period_start"], event["period_end"]) == JANUARY


def test_alert_fires_once_per_threshold_never_on_every_request(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """F09: twenty sequential requests, with a restart after the third."""
    clock = FixedClock(at(NOW))
    body = chat_body("x usage=0,400", 400)  # 0.0002 each; worst case 0.0002087
    with WebhookReceiver() as hooks:
        first = _server(tmp_path / "gw", upstream, clock).start()
        try:
            with first.http() as http:
                secret = _hook(http, hooks.url)
                set_budget(http, "alerty", 0.001, "block", [0.5, 0.75])
                early, seen = [], []
                for _ in range(3):
                    early.append(ask(http, "alerty", body))
                    seen.append(_thresholds(first, "alerty"))
            assert wait_until(lambda: _delivered(first, 1))
        finally:
            first.stop()

        second = _server(tmp_path / "gw", upstream, clock)
        second.key = first.key
        with second:
            with second.http() as http:
                late = []
                for _ in range(17):
                    late.append(ask(http, "alerty", body))
                    seen.append(_thresholds(second, "alerty"))
            assert wait_until(lambda: _delivered(second, 3))
            _settle_quietly()
            accepted = hooks.accepted()

    statuses = [r.status_code for r in early + late]
    assert statuses == [200] * 4 + [429] * 16
    # One new event after request 3 (0.5), one after 4 (0.75), one at the
    # first refusal (the cap), and nothing for the other fifteen refusals.
    assert seen[:5] == [[], [], ["0.5"], ["0.5", "0.75"], ["0.5", "0.75", "1"]]
    assert seen[5:] == [seen[4]] * 15
    assert upstream.calls == 4
    summary = sorted(
        (d.event["type"], d.event["threshold"], d.event["spend_usd"]) for d in accepted
    )
    assert summary == [
        ("budget.cap_reached", "1", "0.0008"),
        ("budget.threshold_crossed", "0.5", "0.0006"),
        ("budget.threshold_crossed", "0.75", "0.0008"),
    ]
    for delivery in accepted:
        assert signature_valid(secret, delivery.headers, delivery.body)
        assert delivery.event["customer_id"] == "alerty"
        assert delivery.event["cap_usd"] == "0.001"


def test_alert_fires_for_every_threshold_a_single_request_jumps(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """F09 jump variant: 0.0002 -> 0.0009 crosses 0.5 and 0.75 at once."""
    clock = FixedClock(at(NOW))
    with (
        WebhookReceiver() as hooks,
        _server(tmp_path / "gw", upstream, clock) as gateway,
    ):
        with gateway.http() as http:
            http.put("/v1/webhook", json={"url": hooks.url})
            set_budget(http, "jumpy", 0.001, "block", [0.5, 0.75])
            small = ask(http, "jumpy", chat_body("x usage=0,400", 400))
            jump = ask(http, "jumpy", chat_body("x usage=0,1400", 1400))
        assert wait_until(lambda: _delivered(gateway, 2))
        _settle_quietly()
        accepted = hooks.accepted()

    assert [small.status_code, jump.status_code] == [200, 200]
    assert jump.headers["x-daylite-cost"] == "0.0007"
    summary = sorted((d.event["threshold"], d.event["spend_usd"]) for d in accepted)
    assert summary == [("0.5", "0.0009"), ("0.75", "0.0009")]


def test_event_waits_in_the_outbox_while_the_endpoint_is_down(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    clock = FixedClock(at(NOW))
    with WebhookReceiver() as hooks:
        dead_url = hooks.url
    with _server(tmp_path / "gw", upstream, clock) as gateway:
        with gateway.http() as http:
            http.put("/v1/webhook", json={"url": dead_url})
            set_budget(http, "patient", 0.001, "block", [0.5])
            ask(http, "patient", chat_body("x usage=0,1000", 1000))
        assert wait_until(
            lambda: (
                gateway.sql("SELECT attempts FROM budget_events")[0]["attempts"] >= 2
            )
        )
        with gateway.http() as http, WebhookReceiver() as hooks:
            http.put("/v1/webhook", json={"url": hooks.url})
            assert wait_until(lambda: _delivered(gateway, 1))
            accepted = hooks.accepted()
        row = gateway.sql("SELECT attempts, last_error FROM budget_events")[0]

    assert [d.event["threshold"] for d in accepted] == ["0.5"]
    assert row["attempts"] >= 3
    assert row["last_error"]


def test_budget_set_below_current_spend_alerts_at_once(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    clock = FixedClock(at(NOW))
    with (
        WebhookReceiver() as hooks,
        _server(tmp_path / "gw", upstream, clock) as gateway,
    ):
        with gateway.http() as http:
            http.put("/v1/webhook", json={"url": hooks.url})
            ask(http, "already", chat_body("x usage=0,1200", 1200))  # 0.0006
            set_budget(http, "already", 0.001, "block", [0.5, 0.9])
            set_budget(http, "already", 0.001, "block", [0.5, 0.9])
        assert wait_until(lambda: _delivered(gateway, 1))
        _settle_quietly()
        accepted = hooks.accepted()

    assert [(d.event["threshold"], d.event["request_id"]) for d in accepted] == [
        ("0.5", None)
    ]
