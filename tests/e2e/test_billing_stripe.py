"""Buying credits: Stripe Checkout against a fake Stripe API, and signed webhooks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.billing.helpers import (
    balance,
    billing_table,
    create_account,
    credits,
    operator_key,
    sign,
)
from tests.fakes.stripe_api import FakeStripeAPI
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for


@pytest.fixture
def stripe_api() -> Iterator[FakeStripeAPI]:
    with FakeStripeAPI() as fake:
        yield fake


@pytest.fixture
def gateway(
    tmp_path: Path, upstream: FakeUpstream, stripe_api: FakeStripeAPI
) -> Iterator[GatewayServer]:
    config = config_for(upstream.url) + billing_table(stripe_api.url)
    with GatewayServer(tmp_path / "gw", config) as server:
        yield server


@pytest.fixture
def buyer(gateway: GatewayServer) -> tuple[str, str]:
    """A fresh pro-plan account: (id, key)."""
    return create_account(gateway, operator_key(gateway), "buyer", "pro")


def _checkout(gateway: GatewayServer, key: str, pack: str = "starter") -> Any:
    with gateway.http(key) as http:
        response = http.post("/api/checkout", json={"pack": pack})
    assert response.status_code == 201, response.text
    return response.json()


def _deliver(
    gateway: GatewayServer, payload: bytes, signature: str | None
) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["stripe-signature"] = signature
    with httpx.Client(base_url=gateway.base_url, timeout=30) as http:
        return http.post("/api/stripe/webhook", content=payload, headers=headers)


def _paid(stripe_api: FakeStripeAPI, session_id: str, **options: Any) -> bytes:
    options.setdefault("event_id", "evt_test_paid_1")
    return json.dumps(stripe_api.paid_event(session_id, **options)).encode()


def _state(gateway: GatewayServer, account_id: str) -> tuple[Any, ...]:
    """Everything a webhook may change, to show that a refused one changed nothing."""
    return (
        gateway.sql("SELECT balance_pico FROM accounts WHERE id=?", (account_id,))[0][
            0
        ],
        gateway.sql("SELECT count(*) FROM credit_history")[0][0],
        gateway.sql("SELECT count(*) FROM stripe_events")[0][0],
        gateway.sql("SELECT count(*) FROM stripe_checkouts WHERE paid_at IS NOT NULL")[
            0
        ][0],
    )


def test_checkout_creates_the_session_stripe_should_charge(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    account_id, key = buyer

    session = _checkout(gateway, key, "bonus")

    assert session["url"] == f"https://checkout.stripe.com/c/pay/{session['id']}"
    assert session["pack"] == {
        "id": "bonus",
        "object": "credit_pack",
        "name": "Bonus",
        "price": "45",
        "currency": "usd",
        "credits": "50",
    }
    params = stripe_api.last_params()
    assert params["mode"] == "payment"
    (item,) = params["line_items"]
    assert item["quantity"] == "1"
    assert item["price_data"]["unit_amount"] == "4500"
    assert item["price_data"]["currency"] == "usd"
    expected = {"account_id": account_id, "pack_id": "bonus", "credits_usd": "50"}
    assert params["metadata"] == expected
    assert params["payment_intent_data"]["metadata"] == expected
    assert params["client_reference_id"] == account_id
    assert params["success_url"] == (
        "https://example.test/paid?session={CHECKOUT_SESSION_ID}"
    )
    assert params["cancel_url"] == "https://example.test/cancelled"
    assert balance(gateway, key) == 0


def test_signed_payment_credits_the_pack_once(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    account_id, key = buyer
    session = _checkout(gateway, key)
    payload = _paid(stripe_api, session["id"])

    first = _deliver(gateway, payload, sign(payload))
    replay = _deliver(gateway, payload, sign(payload))

    assert (first.status_code, first.json()["outcome"]) == (200, "credited")
    assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    status = credits(gateway, key)
    assert status["balance"] == "10"
    (purchase,) = status["history"]["data"]
    assert (purchase["kind"], purchase["amount"], purchase["reference"]) == (
        "purchase",
        "10",
        session["id"],
    )


def test_three_concurrent_deliveries_of_one_event_credit_once(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    _, key = buyer
    payload = _paid(stripe_api, _checkout(gateway, key)["id"])
    signature = sign(payload)

    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: _deliver(gateway, payload, signature), "abc"))

    assert [reply.status_code for reply in replies] == [200, 200, 200]
    outcomes = sorted(reply.json()["outcome"] for reply in replies)
    assert outcomes == ["credited", "duplicate", "duplicate"]
    assert balance(gateway, key) == Decimal("10")


def test_two_events_about_one_payment_credit_once_in_either_order(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    _, key = buyer
    session_id = _checkout(gateway, key)["id"]
    late = _paid(
        stripe_api,
        session_id,
        event_id="evt_async_ok",
        event_type="checkout.session.async_payment_succeeded",
    )
    early_unpaid = _paid(
        stripe_api, session_id, event_id="evt_completed", payment_status="unpaid"
    )
    early_paid = _paid(stripe_api, session_id, event_id="evt_completed_paid")

    # The later event arrives first, then the earlier ones.
    outcomes = [
        _deliver(gateway, body, sign(body)).json()["outcome"]
        for body in (late, early_unpaid, early_paid)
    ]

    assert outcomes == ["credited", "ignored", "already_credited"]
    assert balance(gateway, key) == Decimal("10")


def test_unpaid_completion_waits_for_the_async_payment(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    _, key = buyer
    session_id = _checkout(gateway, key)["id"]
    unpaid = _paid(stripe_api, session_id, event_id="e1", payment_status="unpaid")
    settled = _paid(
        stripe_api,
        session_id,
        event_id="e2",
        event_type="checkout.session.async_payment_succeeded",
    )

    assert _deliver(gateway, unpaid, sign(unpaid)).json()["outcome"] == "ignored"
    assert balance(gateway, key) == 0
    assert _deliver(gateway, settled, sign(settled)).json()["outcome"] == "credited"
    assert balance(gateway, key) == Decimal("10")


@pytest.mark.parametrize(
    "case",
    ["wrong secret", "stale timestamp", "tampered body", "no header", "malformed"],
)
def test_unverifiable_webhooks_get_400_and_change_nothing(
    gateway: GatewayServer,
    stripe_api: FakeStripeAPI,
    buyer: tuple[str, str],
    case: str,
) -> None:
    account_id, key = buyer
    payload = _paid(stripe_api, _checkout(gateway, key)["id"])
    signature: str | None = sign(payload)
    if case == "wrong secret":
        signature = sign(payload, secret="whsec_not_the_right_one")
    elif case == "stale timestamp":
        signature = sign(payload, at=int(time.time()) - 301)
    elif case == "tampered body":
        payload = payload.replace(b'"credits_usd": "10"', b'"credits_usd": "9999"')
    elif case == "no header":
        signature = None
    else:
        payload = b'{"id": "evt_x", "type": "checkout.session.completed", '
        signature = sign(payload)
    before = _state(gateway, account_id)

    response = _deliver(gateway, payload, signature)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert _state(gateway, account_id) == before


def test_other_event_types_are_acknowledged_and_ignored(
    gateway: GatewayServer, buyer: tuple[str, str]
) -> None:
    account_id, _ = buyer
    event = {
        "id": "evt_other",
        "object": "event",
        "type": "customer.created",
        "data": {"object": {"id": "cus_1", "object": "customer"}},
    }
    payload = json.dumps(event).encode()

    response = _deliver(gateway, payload, sign(payload))

    assert (response.status_code, response.json()["outcome"]) == (200, "ignored")
    assert _state(gateway, account_id)[0] == 0


def test_unknown_pack_is_400_listing_the_packs(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    with gateway.http(buyer[1]) as http:
        response = http.post("/api/checkout", json={"pack": "mega"})
        packs = http.get("/api/packs")

    assert response.status_code == 400
    assert "starter, bonus" in response.json()["error"]["message"]
    assert stripe_api.requests == []
    assert [pack["id"] for pack in packs.json()["data"]] == ["starter", "bonus"]


def test_stripe_failure_is_502_and_records_no_session(
    gateway: GatewayServer, stripe_api: FakeStripeAPI, buyer: tuple[str, str]
) -> None:
    stripe_api.fail_with = 400

    with gateway.http(buyer[1]) as http:
        response = http.post("/api/checkout", json={"pack": "starter"})

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "backend_unavailable"
    assert gateway.sql("SELECT count(*) FROM stripe_checkouts")[0][0] == 0


def test_without_stripe_keys_checkout_and_webhook_answer_503(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    config = config_for(upstream.url) + billing_table()
    with GatewayServer(tmp_path / "gw", config) as gateway:
        with gateway.http() as http:
            checkout = http.post("/api/checkout", json={"pack": "starter"})
        webhook = _deliver(gateway, b"{}", "t=1,v1=00")

    assert checkout.status_code == 503
    assert "DAYLITE_STRIPE_SECRET_KEY" in checkout.json()["error"]["message"]
    assert webhook.status_code == 503
    assert "DAYLITE_STRIPE_WEBHOOK_SECRET" in webhook.json()["error"]["message"]


def test_environment_points_the_library_at_the_api_base(
    tmp_path: Path,
    upstream: FakeUpstream,
    stripe_api: FakeStripeAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DAYLITE_STRIPE_SECRET_KEY", stripe_api.secret_key)
    monkeypatch.setenv("DAYLITE_STRIPE_API_BASE", stripe_api.url)
    config = config_for(upstream.url) + billing_table()
    with GatewayServer(tmp_path / "gw", config) as gateway, gateway.http() as http:
        response = http.post("/api/checkout", json={"pack": "starter"})

    assert response.status_code == 201
    assert [r["path"] for r in stripe_api.requests] == ["/v1/checkout/sessions"]
