"""Reading Stripe events and building Checkout parameters, without a network."""

from __future__ import annotations

import json

import pytest

from daylite.billing.config import BillingConfig, CreditPack
from daylite.billing.stripe_checkout import session_params
from daylite.billing.stripe_webhook import Payment, parse_event, verify
from daylite.errors import InvalidRequestError
from tests.billing.helpers import WEBHOOK_SECRET, sign

PACK = CreditPack("starter", "Starter", 1000, 10 * 10**12)


def _event(kind: str, status: str = "paid") -> dict[str, object]:
    session = {
        "id": "cs_1",
        "object": "checkout.session",
        "payment_status": status,
        "amount_total": 1000,
        "currency": "usd",
        "metadata": {"account_id": "acct_1", "pack_id": "starter", "credits_usd": "10"},
    }
    return {"id": "evt_1", "type": kind, "data": {"object": session}}


def test_paid_completion_is_a_payment() -> None:
    event = parse_event(_event("checkout.session.completed"))

    assert event.payment == Payment("cs_1", "acct_1", "starter", "10", 1000, "usd")


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("checkout.session.completed", "unpaid"),
        ("checkout.session.expired", "unpaid"),
        ("checkout.session.async_payment_failed", "unpaid"),
        ("payment_intent.succeeded", "paid"),
    ],
)
def test_other_events_are_no_payment(kind: str, status: str) -> None:
    assert parse_event(_event(kind, status)).payment is None


def test_verify_accepts_a_stripe_style_signature_only() -> None:
    payload = json.dumps(_event("checkout.session.completed")).encode()

    assert verify(payload, sign(payload), WEBHOOK_SECRET).id == "evt_1"
    with pytest.raises(InvalidRequestError) as refused:
        verify(payload, sign(payload, secret="whsec_other"), WEBHOOK_SECRET)
    assert refused.value.param == "Stripe-Signature"


def test_session_params_tie_the_payment_to_account_and_pack() -> None:
    params = session_params("acct_1", PACK, BillingConfig())

    assert params["line_items"][0]["price_data"]["unit_amount"] == 1000
    assert params["line_items"][0]["price_data"]["currency"] == "usd"
    assert params["metadata"] == {
        "account_id": "acct_1",
        "pack_id": "starter",
        "credits_usd": "10",
    }
    assert params["client_reference_id"] == "acct_1"
