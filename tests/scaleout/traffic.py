"""Requests, accounts and database reads shared by the scale-out tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from tests.scaleout.replicas import Deployment, Replica

MODEL = "llama-3.3-70b"
# Prices of the default test catalog, USD per 1M tokens.
INPUT_PRICE = Decimal("0.30")
OUTPUT_PRICE = Decimal("0.50")
# What one chat message adds to the gateway's bound on prompt tokens: its text
# plus 8 tokens for each message and 8 more for the reply's own framing.
_FRAMING_TOKENS = 16


def exact_body(max_tokens: int, extra: str = "") -> dict[str, Any]:
    """A chat body whose real cost equals its worst case, reservation included.

    The fake upstream reports as many prompt tokens as the gateway's bound for
    the body and ``max_tokens`` completion tokens, so a reservation settles at
    exactly what it held and admissions can be counted exactly.
    """
    for tokens in range(_FRAMING_TOKENS, 1_000):
        text = f"x usage={tokens},{max_tokens} {extra}".strip()
        if len(text.encode()) + _FRAMING_TOKENS == tokens:
            return {
                "model": MODEL,
                "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": text}],
            }
    raise AssertionError("no self-consistent prompt length")


def cost_of(body: dict[str, Any]) -> Decimal:
    text = body["messages"][0]["content"]
    tokens_in = len(text.encode()) + _FRAMING_TOKENS
    return (tokens_in * INPUT_PRICE + body["max_tokens"] * OUTPUT_PRICE) / 10**6


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request as its client saw it."""

    replica: int
    status: int
    code: str | None
    request_id: str | None
    cost: str | None


async def send(
    client: httpx.AsyncClient,
    replica: Replica,
    key: str,
    customer: str,
    body: dict[str, Any],
) -> Outcome:
    headers = {"authorization": f"Bearer {key}", "x-daylite-customer": customer}
    try:
        response = await client.post(
            f"{replica.base_url}/v1/chat/completions", json=body, headers=headers
        )
    except httpx.TransportError:
        return Outcome(replica.number, 0, "connection", None, None)
    code = None
    if response.status_code != 200:
        code = response.json()["error"]["code"]
    return Outcome(
        replica.number,
        response.status_code,
        code,
        response.headers.get("x-daylite-request-id"),
        response.headers.get("x-daylite-cost"),
    )


def swarm(
    replicas: Sequence[Replica],
    key: str,
    customer: str,
    body: dict[str, Any],
    count: int,
) -> list[Outcome]:
    """``count`` requests at once, dealt round-robin over ``replicas``."""

    async def run() -> list[Outcome]:
        limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            return await asyncio.gather(
                *(
                    send(client, replicas[i % len(replicas)], key, customer, body)
                    for i in range(count)
                )
            )

    return asyncio.run(run())


def http(replica: Replica, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=replica.base_url,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def set_budget(replica: Replica, key: str, customer: str, cap: str) -> None:
    with http(replica, key) as client:
        response = client.post(
            "/v1/budgets",
            json={
                "customer_id": customer,
                "monthly_cap_usd": cap,
                "action_on_cap": "block",
                "alert_thresholds": [],
            },
        )
    assert response.status_code in (200, 201), response.text


def budget(replica: Replica, key: str, customer: str) -> dict[str, Any]:
    with http(replica, key) as client:
        response = client.get(f"/v1/budgets/{customer}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def credits(replica: Replica, key: str) -> dict[str, Any]:
    with http(replica, key) as client:
        response = client.get("/v1/credits")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def paid_account(
    deployment: Deployment, replica: Replica, balance: str
) -> tuple[str, str]:
    """A new account on the paid plan with ``balance`` USD: (id, its key)."""
    operator = deployment.operator_key()
    with http(replica, operator) as client:
        created = client.post("/v1/accounts", json={"name": "acme", "plan": "pro"})
        assert created.status_code == 201, created.text
        account = created.json()
        granted = client.post(
            f"/v1/accounts/{account['id']}/credits",
            json={"amount_usd": balance, "reason": "scale-out test"},
        )
        assert granted.status_code == 201, granted.text
    return account["id"], account["key"]["secret"]


def sql(database_url: str, query: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        connection = await asyncpg.connect(database_url)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    return asyncio.run(run())


def wait_for(check: Callable[[], bool], seconds: float) -> float | None:
    """Seconds until ``check()`` held, polling; None if it never did in time."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if check():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


def usd(pico: int) -> Decimal:
    return Decimal(pico) / 10**12
