"""Never overspend: reservations under concurrency, on every route, across months."""

from __future__ import annotations

import asyncio
import base64
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from daylite.clock import FixedClock
from tests.budgets.support import (
    ask,
    at,
    budget_of,
    chat_body,
    ledger_total_pico,
    set_budget,
    wait_until,
)
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for

CONCURRENT = 200


async def _one(client: httpx.AsyncClient, index: int) -> tuple[int, dict[str, Any]]:
    stream = index % 2 == 0
    body = chat_body("x usage=10,600 slow=20", 1000, stream=stream)
    headers = {"X-Daylite-Customer": "swarm"}
    if not stream:
        response = await client.post("/v1/chat/completions", json=body, headers=headers)
        return response.status_code, _summary(response, response.content)
    async with client.stream(
        "POST", "/v1/chat/completions", json=body, headers=headers
    ) as response:
        content = await response.aread()
    return response.status_code, _summary(response, content)


def _summary(response: httpx.Response, content: bytes) -> dict[str, Any]:
    return {
        "type": response.headers.get("content-type", ""),
        "retry": response.headers.get("x-should-retry"),
        "body": content,
    }


async def _swarm(gateway: GatewayServer) -> list[tuple[int, dict[str, Any]]]:
    limits = httpx.Limits(max_connections=CONCURRENT + 10)
    async with httpx.AsyncClient(
        base_url=gateway.base_url,
        headers={"authorization": f"Bearer {gateway.key}"},
        limits=limits,
        timeout=60,
    ) as client:
        return await asyncio.gather(*(_one(client, i) for i in range(CONCURRENT)))


def test_200_concurrent_requests_never_settle_past_the_cap(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    # Worst case 0.0005093 each (30 input + 1000 output tokens); each settles
    # at 0.000303, so how many fit depends on timing, but never past the cap.
    with gateway.http() as http:
        set_budget(http, "swarm", "0.0025")

    results = asyncio.run(_swarm(gateway))

    admitted = [r for status, r in results if status == 200]
    refused = [r for status, r in results if status == 429]
    with gateway.http() as http:
        status = budget_of(http, "swarm")
    spent = ledger_total_pico(gateway, "swarm")
    assert len(admitted) + len(refused) == CONCURRENT
    assert 4 <= len(admitted) <= 8
    assert upstream.calls == len(admitted)
    assert spent == len(admitted) * 303_000_000
    assert spent <= 2_500_000_000
    assert Decimal(status["spent_usd"]) * 10**12 == spent
    assert status["reserved_usd"] == "0"
    for refusal in refused:
        assert refusal["type"].startswith("application/json")
        assert refusal["retry"] == "false"
        assert b'"code":"budget_exceeded"' in refusal["body"]
    rows = gateway.sql(
        "SELECT status, COUNT(*) AS n FROM ledger WHERE customer = 'swarm' "
        "GROUP BY status"
    )
    assert {row["status"]: row["n"] for row in rows} == {
        "ok": len(admitted),
        "refused": len(refused),
    }


def test_penny_budget_sums_exactly_without_float_drift(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F03: ten 0.1 calls against a $1.00 cap; the tenth is refused."""
    body = chat_body("x usage=0,100000", 100000, model="deepseek-v3")
    with gateway.http() as http:
        set_budget(http, "penny", "1.00")
        responses = [ask(http, "penny", body) for _ in range(10)]
        status = budget_of(http, "penny")
        micro = [
            ask(http, "submicro", chat_body("x usage=1,0", 1, model="llama-3.1-8b"))
            for _ in range(25)
        ]

    costs = [r.headers["x-daylite-cost"] for r in responses[:9]]
    assert [r.status_code for r in responses] == [200] * 9 + [429]
    assert costs == ["0.1"] * 9
    assert responses[9].json()["error"]["code"] == "budget_exceeded"
    assert upstream.calls == 9 + 25
    assert sum(Decimal(c) for c in costs) == Decimal("0.9")
    assert Decimal(status["spent_usd"]) == Decimal("0.9")
    assert status["spent_usd"] == "0.9"
    assert ledger_total_pico(gateway, "penny") == 900_000_000_000
    assert [r.headers["x-daylite-cost"] for r in micro] == ["0.00000004"] * 25
    assert ledger_total_pico(gateway, "submicro") == 1_000_000
    spend_rows = gateway.sql(
        "SELECT spent_pico FROM monthly_spend WHERE customer_id = 'submicro'"
    )
    assert [row["spent_pico"] for row in spend_rows] == [1_000_000]


def test_image_is_reserved_as_an_image_not_as_its_base64(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F04: a ~270 KB image body under a $0.005 cap is admitted and billed right."""
    jpeg = b"\xff\xd8\xff\xe0" + random.Random(4).randbytes(202_496) + b"\xff\xd9"
    image = {
        "type": "image_url",
        "image_url": {
            "url": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
        },
    }
    content = [{"type": "text", "text": "describe usage=1105,20 this"}, image]
    body = {
        "model": "llama-3.3-70b",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": content}],
    }
    with gateway.http() as http:
        set_budget(http, "vision", "0.005")
        response = ask(http, "vision", body)

    assert len(image["image_url"]["url"]) > 270_000  # type: ignore[index]
    assert response.status_code == 200, response.text
    assert response.headers["x-daylite-tokens-in"] == "1105"
    assert response.headers["x-daylite-cost"] == "0.0003415"
    assert upstream.bodies[-1]["messages"][0]["content"][1] == image


def test_spent_budget_blocks_every_inference_route(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F08: once the cap is spent, no route and no header spelling gets through."""
    with gateway.http() as http:
        set_budget(http, "broke", "0.001")
        spending = [
            ask(http, "broke", chat_body("x usage=5,500", 500)) for _ in range(3)
        ]
        # The last 0.0002455 is spent by a request whose worst case is exact:
        # "x usage=30,473" is 14 bytes + 2 x 8 = 30 input tokens, 473 out.
        last = ask(http, "broke", chat_body("x usage=30,473", 473))
        assert budget_of(http, "broke")["remaining_usd"] == "0"
        upstream.reset()

        chat = chat_body("x usage=5,500", 500)
        attempts = {
            "a": ask(http, "broke", chat),
            "c": ask(
                http,
                "broke",
                {
                    "model": "llama-3.3-70b",
                    "prompt": "x usage=5,500",
                    "max_tokens": 500,
                },
                "/v1/completions",
            ),
            "d": ask(
                http,
                "broke",
                {"model": "llama-3.3-70b", "input": "x"},
                "/v1/embeddings",
            ),
            "e": ask(http, "broke", chat, "/v1/chat/completions/"),
            "e2": ask(
                http,
                "broke",
                {"model": "llama-3.3-70b", "prompt": "x", "max_tokens": 5},
                "/v1/completions/",
            ),
            "e3": ask(
                http,
                "broke",
                {"model": "llama-3.3-70b", "input": "x"},
                "/v1/embeddings/",
            ),
            "f": ask(http, "broke", chat, "/chat/completions"),
            "g1": http.post(
                "/v1/chat/completions",
                json=chat,
                headers={"x-daylite-customer": "broke"},
            ),
            "g2": http.post(
                "/v1/chat/completions",
                json=chat,
                headers={"X-DAYLITE-CUSTOMER": "broke"},
            ),
        }
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json={**chat, "stream": True},
            headers={"X-Daylite-Customer": "broke"},
        ) as streamed:
            streamed.read()
        models = http.get("/v1/models")

    assert [r.status_code for r in spending] == [200, 200, 200]
    assert last.status_code == 200
    for name, response in attempts.items():
        expected = 404 if name == "f" else 429
        assert response.status_code == expected, name
        if expected == 429:
            assert response.json()["error"]["code"] == "budget_exceeded", name
            assert response.headers["x-should-retry"] == "false"
    assert streamed.status_code == 429
    assert streamed.headers["content-type"].startswith("application/json")
    assert streamed.json()["error"]["code"] == "budget_exceeded"
    assert models.status_code == 200
    assert upstream.calls == 0


def test_sdk_gets_rate_limit_error_and_does_not_retry(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F11 (a): the openai SDK with its default retries sends the request once."""
    with gateway.http() as http:
        set_budget(http, "errs", "0")
    client = gateway.client(max_retries=2)

    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(
            model="llama-3.3-70b",
            max_tokens=10,
            messages=[{"role": "user", "content": "x usage=1,1"}],
            extra_headers={"X-Daylite-Customer": "errs"},
        )

    error = raised.value
    assert error.status_code == 429
    assert "Budget exceeded" in error.message
    assert error.code == "budget_exceeded"
    assert set(error.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]
    assert upstream.calls == 0
    rows = gateway.sql("SELECT status, cost_pico FROM ledger WHERE customer = 'errs'")
    assert [(r["status"], r["cost_pico"]) for r in rows] == [("refused", 0)]


def test_month_boundary_starts_a_new_period(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    clock = FixedClock(at("2026-01-31T23:59:59+00:00"))
    small = chat_body("x usage=0,400", 400)  # 0.0002; one fits under 0.0003
    with GatewayServer(tmp_path / "gw", config_for(upstream.url), clock=clock) as gw:
        with gw.http() as http:
            set_budget(http, "monthly", "0.0003")
            january = [ask(http, "monthly", small).status_code for _ in range(2)]
            clock.set(at("2026-02-01T00:00:00+00:00"))
            february = [ask(http, "monthly", small).status_code for _ in range(2)]
            status = budget_of(http, "monthly")
            clock.set(at("2026-01-31T23:59:59.999999+00:00"))
            looking_back = budget_of(http, "monthly")
        rows = gw.sql(
            "SELECT period_start, spent_pico FROM monthly_spend "
            "WHERE customer_id = 'monthly' ORDER BY period_start"
        )

    assert january == [200, 429]
    assert february == [200, 429]
    assert status["period_start"] == "2026-02-01T00:00:00.000000Z"
    assert status["period_end"] == "2026-03-01T00:00:00.000000Z"
    assert status["spent_usd"] == "0.0002"
    assert looking_back["period_start"] == "2026-01-01T00:00:00.000000Z"
    assert looking_back["spent_usd"] == "0.0002"
    assert [(r["period_start"], r["spent_pico"]) for r in rows] == [
        (at("2026-01-01T00:00:00+00:00"), 200_000_000),
        (at("2026-02-01T00:00:00+00:00"), 200_000_000),
    ]


def test_abandoned_stream_releases_its_unused_reservation(
    gateway: GatewayServer,
) -> None:
    body = chat_body("x words=200 slow=50 nousage", 1000, stream=True)
    with gateway.http() as http:
        set_budget(http, "leaver", "1")
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json=body,
            headers={"X-Daylite-Customer": "leaver"},
        ) as response:
            request_id = response.headers["x-daylite-request-id"]
            received = 0
            for line in response.iter_lines():
                received += line.startswith("data:")
                if received == 5:
                    break
            during = budget_of(http, "leaver")

        def settled() -> bool:
            rows = gateway.sql("SELECT 1 FROM ledger WHERE id = ?", (request_id,))
            return bool(rows) and budget_of(http, "leaver")["reserved_usd"] == "0"

        assert wait_until(settled), "the abandoned stream kept its reservation"
        after = budget_of(http, "leaver")

    entry = gateway.ledger(request_id)
    # 43 input tokens (27 bytes + 2 x 8) at 0.30/M and 1000 output at 0.50/M.
    assert during["reserved_usd"] == "0.0005129"
    assert entry["status"] == "abandoned"
    assert 0 < entry["cost_pico"] < 512_900_000
    assert Decimal(after["spent_usd"]) * 10**12 == entry["cost_pico"]
    assert after["reserved_usd"] == "0"


def test_reservation_of_a_hung_request_expires_after_its_ttl(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    clock = FixedClock(at("2026-03-10T12:00:00+00:00"))
    hung = chat_body("x usage=0,400 hang=3", 400)
    with GatewayServer(
        tmp_path / "gw", config_for(upstream.url), clock=clock, reservation_ttl=60.0
    ) as gw:
        headers = {"authorization": f"Bearer {gw.key}", "X-Daylite-Customer": "hung"}
        with gw.http() as http, httpx.Client(base_url=gw.base_url) as short:
            set_budget(http, "hung", "0.0003")
            with pytest.raises(httpx.ReadTimeout):
                short.post(
                    "/v1/chat/completions", json=hung, headers=headers, timeout=0.5
                )
            pinned = ask(http, "hung", chat_body("x usage=0,400", 400))
            clock.set(at("2026-03-10T12:01:00+00:00"))
            freed = ask(http, "hung", chat_body("x usage=0,400", 400))
            # Cut the hung backend call short so that the test need not wait.
            upstream.stop()
            assert wait_until(
                lambda: len(gw.sql("SELECT 1 FROM ledger WHERE customer = 'hung'")) == 3
            )
            status = budget_of(http, "hung")

    assert pinned.status_code == 429
    assert freed.status_code == 200
    assert status["spent_usd"] == "0.0002"
    assert status["reserved_usd"] == "0"
