"""Shared by the billing tests: config text, operator keys, signed webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from decimal import Decimal
from typing import Any

import httpx

from daylite.auth import KeyStore
from daylite.clock import SystemClock
from daylite.storage.db import create_engine
from tests.fakes.stripe_api import SECRET_KEY
from tests.support.gateway import GatewayServer

WEBHOOK_SECRET = "whsec_test_daylite_0123456789abcdef"

PACKS = """
[[billing.packs]]
id = "starter"
name = "Starter"
price_usd = "10.00"
credits_usd = "10"

[[billing.packs]]
id = "bonus"
name = "Bonus"
price_usd = "45"
credits_usd = "50"
"""


def billing_table(stripe_url: str | None = None, **extra: str) -> str:
    """A ``[billing]`` table with two packs; Stripe keys only with a fake's URL."""
    lines = ["[billing]"]
    if stripe_url is not None:
        lines += [
            f'stripe_secret_key = "{SECRET_KEY}"',
            f'stripe_webhook_secret = "{WEBHOOK_SECRET}"',
            f'stripe_api_base = "{stripe_url}"',
            'success_url = "https://example.test/paid?session={CHECKOUT_SESSION_ID}"',
            'cancel_url = "https://example.test/cancelled"',
        ]
    lines += [f'{key} = "{value}"' for key, value in extra.items()]
    return "\n" + "\n".join(lines) + "\n" + PACKS


def operator_key(gateway: GatewayServer) -> str:
    """Issue an operator key straight into the gateway's database."""

    async def issue() -> str:
        engine = create_engine(gateway.settings.resolved_database_url)
        try:
            issued = await KeyStore(engine, SystemClock()).issue(
                None, "tests", "operator"
            )
        finally:
            await engine.dispose()
        return issued.secret

    return asyncio.run(issue())


def create_account(
    gateway: GatewayServer, operator: str, name: str = "acme", plan: str = "developer"
) -> tuple[str, str]:
    """A new account through the operator API: its id and first key."""
    with gateway.http(operator) as http:
        response = http.post("/v1/accounts", json={"name": name, "plan": plan})
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["key"]["secret"]


def grant(gateway: GatewayServer, operator: str, account_id: str, usd: str) -> Any:
    with gateway.http(operator) as http:
        response = http.post(
            f"/v1/accounts/{account_id}/credits",
            json={"amount_usd": usd, "reason": "test top-up"},
        )
    assert response.status_code == 201, response.text
    return response.json()


def credits(gateway: GatewayServer, key: str, **params: Any) -> Any:
    with gateway.http(key) as http:
        response = http.get("/v1/credits", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def balance(gateway: GatewayServer, key: str) -> Decimal:
    return Decimal(credits(gateway, key)["balance"])


def chat(
    gateway: GatewayServer, key: str, text: str, max_tokens: int = 500
) -> httpx.Response:
    body = {
        "model": "llama-3.3-70b",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
    }
    with gateway.http(key) as http:
        return http.post("/v1/chat/completions", json=body)


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A ``Stripe-Signature`` header built the way Stripe builds it."""
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
