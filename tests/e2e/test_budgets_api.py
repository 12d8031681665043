"""The budgets and webhook API: validation, replace, delete, raise, clamp, alert."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from daylite.accounts import create_account
from daylite.auth import KeyStore
from daylite.clock import SystemClock
from daylite.storage.db import create_engine
from tests.budgets.support import ask, budget_of, chat_body, set_budget
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer

SMALL = chat_body("x usage=0,400", 400)  # costs 0.0002; worst case 0.0002087


def _error(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"monthly_cap_usd": 5}, "customer_id"),
        ({"customer_id": "bad id!", "monthly_cap_usd": 5}, "customer_id"),
        ({"customer_id": "c" * 129, "monthly_cap_usd": 5}, "customer_id"),
        ({"customer_id": "c"}, "monthly_cap_usd"),
        ({"customer_id": "c", "monthly_cap_usd": -1}, "monthly_cap_usd"),
        ({"customer_id": "c", "monthly_cap_usd": "-0.01"}, "monthly_cap_usd"),
        ({"customer_id": "c", "monthly_cap_usd": "ten"}, "monthly_cap_usd"),
        ({"customer_id": "c", "monthly_cap_usd": True}, "monthly_cap_usd"),
        ({"customer_id": "c", "monthly_cap_usd": "0.0000000000001"}, "monthly_cap_usd"),
        ({"customer_id": "c", "monthly_cap_usd": 10**7}, "monthly_cap_usd"),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "action_on_cap": "stop"},
            "action_on_cap",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": [0]},
            "alert_thresholds",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": [1.5]},
            "alert_thresholds",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": [-0.5]},
            "alert_thresholds",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": [0.5, 0.5]},
            "alert_thresholds",
        ),
        (
            {
                "customer_id": "c",
                "monthly_cap_usd": 5,
                "alert_thresholds": ["0.50", 0.5],
            },
            "alert_thresholds",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": 0.5},
            "alert_thresholds",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": [0.1234567]},
            "alert_thresholds",
        ),
        (
            {"customer_id": "c", "monthly_cap_usd": 5, "alert_thresholds": [True]},
            "alert_thresholds",
        ),
        ({"customer_id": "c", "monthly_cap_usd": 5, "monthly_cap": 6}, "monthly_cap"),
    ],
)
def test_invalid_budget_gets_400_naming_the_field(
    gateway: GatewayServer, body: dict[str, Any], param: str
) -> None:
    with gateway.http() as http:
        response = http.post("/v1/budgets", json=body)
        listed = http.get("/v1/budgets").json()

    assert response.status_code == 400
    assert _error(response)["type"] == "invalid_request_error"
    assert _error(response)["param"] == param
    assert listed["data"] == []


def test_non_object_bodies_get_400(gateway: GatewayServer) -> None:
    with gateway.http() as http:
        statuses = [
            http.post("/v1/budgets", content=raw).status_code
            for raw in (b"", b"[]", b'"hi"', b"{", b'{"customer_id": "c", "monthly')
        ]

    assert statuses == [400] * 5


def test_budget_is_created_shown_and_replaced(gateway: GatewayServer) -> None:
    with gateway.http() as http:
        created = http.post(
            "/v1/budgets",
            json={
                "customer_id": "customer_123",
                "monthly_cap_usd": 500.00,
                "action_on_cap": "block",
                "alert_thresholds": [0.9, 0.5, 0.8],
            },
        )
        replaced = http.post(
            "/v1/budgets",
            json={"customer_id": "customer_123", "monthly_cap_usd": "750.5"},
        )
        shown = budget_of(http, "customer_123")

    assert created.status_code == 201
    body = created.json()
    assert body["customer_id"] == "customer_123"
    assert body["monthly_cap_usd"] == "500"
    assert body["action_on_cap"] == "block"
    assert body["alert_thresholds"] == [0.5, 0.8, 0.9]
    assert (body["spent_usd"], body["reserved_usd"], body["remaining_usd"]) == (
        "0",
        "0",
        "500",
    )
    assert body["thresholds_crossed"] == []
    assert body["period_start"].endswith("-01T00:00:00.000000Z")
    assert body["period_end"].endswith("-01T00:00:00.000000Z")
    assert replaced.status_code == 200
    assert shown["monthly_cap_usd"] == "750.5"
    assert shown["alert_thresholds"] == []
    assert shown["created_at"] == body["created_at"]


def test_unknown_budget_is_404_and_budgets_belong_to_their_account(
    gateway: GatewayServer,
) -> None:
    other_key = asyncio.run(_second_account(gateway))
    with gateway.http() as http, gateway.http(other_key) as other:
        set_budget(http, "shared-name", 1)
        set_budget(other, "shared-name", 2)
        missing = http.get("/v1/budgets/nobody")
        deleted_missing = http.delete("/v1/budgets/nobody")
        mine = budget_of(http, "shared-name")
        theirs = budget_of(other, "shared-name")

    assert missing.status_code == 404
    assert _error(missing)["param"] == "customer_id"
    assert deleted_missing.status_code == 404
    assert (mine["monthly_cap_usd"], theirs["monthly_cap_usd"]) == ("1", "2")


async def _second_account(gateway: GatewayServer) -> str:
    engine = create_engine(gateway.settings.resolved_database_url)
    try:
        account = await create_account(engine, SystemClock(), "second")
        issued = await KeyStore(engine, SystemClock()).issue(account.id, "k")
    finally:
        await engine.dispose()
    return issued.secret


def test_budget_endpoints_need_an_account_key(gateway: GatewayServer) -> None:
    with gateway.http("dl-wrong") as http:
        response = http.get("/v1/budgets")

    assert response.status_code == 401


def test_list_pages_by_customer_id(gateway: GatewayServer) -> None:
    with gateway.http() as http:
        for customer in ("c-3", "c-1", "c-2"):
            set_budget(http, customer, 1)
        first = http.get("/v1/budgets", params={"limit": 2}).json()
        rest = http.get("/v1/budgets", params={"limit": 2, "after": "c-2"}).json()

    assert [b["customer_id"] for b in first["data"]] == ["c-1", "c-2"]
    assert first["has_more"] is True
    assert [b["customer_id"] for b in rest["data"]] == ["c-3"]
    assert rest["has_more"] is False


def test_raising_the_cap_admits_the_next_request_at_once(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    with gateway.http() as http:
        set_budget(http, "grow", "0.0003")
        first = ask(http, "grow", SMALL)
        refused = ask(http, "grow", SMALL)
        set_budget(http, "grow", "0.001")
        raised = ask(http, "grow", SMALL)

    assert [first.status_code, refused.status_code, raised.status_code] == [
        200,
        429,
        200,
    ]
    assert upstream.calls == 2


def test_deleting_a_budget_removes_the_limit(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    with gateway.http() as http:
        set_budget(http, "gone", "0.0001")
        refused = ask(http, "gone", SMALL)
        deleted = http.delete("/v1/budgets/gone")
        admitted = ask(http, "gone", SMALL)
        shown = http.get("/v1/budgets/gone")

    assert refused.status_code == 429
    assert deleted.status_code == 200
    assert deleted.json() == {
        "object": "budget",
        "customer_id": "gone",
        "deleted": True,
    }
    assert admitted.status_code == 200
    assert shown.status_code == 404
    assert upstream.calls == 1


def test_spend_before_a_budget_exists_counts_against_it(gateway: GatewayServer) -> None:
    with gateway.http() as http:
        ask(http, "late", SMALL)
        ask(http, "late", SMALL)
        status = set_budget(http, "late", "0.0005")
        refused = ask(http, "late", SMALL)

    assert status["spent_usd"] == "0.0004"
    assert status["remaining_usd"] == "0.0001"
    assert refused.status_code == 429


def test_clamp_lowers_max_tokens_to_what_the_budget_pays(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    # Input bound: 14 bytes + 2 x 8 = 30 tokens x 0.30/M = 0.000009.
    # (0.001 - 0.000009) / 0.50 per M = 1982 output tokens.
    with gateway.http() as http:
        set_budget(http, "clampy", "0.001", action="clamp")
        response = ask(
            http,
            "clampy",
            chat_body("x usage=10,100", 5000, max_completion_tokens=5000),
        )
        status = budget_of(http, "clampy")

    assert response.status_code == 200
    assert response.headers["x-daylite-budget-clamped"] == "1982"
    assert upstream.bodies[-1]["max_tokens"] == 1982
    assert upstream.bodies[-1]["max_completion_tokens"] == 1982
    assert response.headers["x-daylite-cost"] == "0.000053"
    assert status["spent_usd"] == "0.000053"


def test_clamp_refuses_when_not_even_16_tokens_fit(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    # 30 input tokens cost 0.000009 and 16 output tokens 0.000008: 0.000017.
    with gateway.http() as http:
        set_budget(http, "tight", "0.00002", action="clamp")
        clamped = ask(http, "tight", chat_body("x usage=10,10", 1000))
        set_budget(http, "tighter", "0.000015", action="clamp")
        refused = ask(http, "tighter", chat_body("x usage=10,10", 1000))
        untouched = ask(http, "tight", chat_body("x usage=1,1", 1))

    assert clamped.status_code == 200
    assert clamped.headers["x-daylite-budget-clamped"] == "22"
    assert refused.status_code == 429
    assert _error(refused)["code"] == "budget_exceeded"
    assert "16 output tokens" in _error(refused)["message"]
    assert "x-daylite-budget-clamped" not in untouched.headers
    assert upstream.calls == 2


def test_clamped_stream_says_so_in_its_headers(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    with gateway.http() as http:
        set_budget(http, "clamp-stream", "0.001", action="clamp")
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json=chat_body("x usage=10,100", 5000, stream=True),
            headers={"X-Daylite-Customer": "clamp-stream"},
        ) as response:
            lines = list(response.iter_lines())

    assert response.status_code == 200
    assert response.headers["x-daylite-budget-clamped"] == "1982"
    assert "data: [DONE]" in lines
    assert upstream.bodies[-1]["max_tokens"] == 1982


def test_alert_action_admits_past_the_cap_and_only_notifies(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    with gateway.http() as http:
        set_budget(http, "loud", "0.0003", action="alert", thresholds=[0.5])
        statuses = [ask(http, "loud", SMALL).status_code for _ in range(3)]
        status = budget_of(http, "loud")
    events = gateway.sql(
        "SELECT kind, threshold FROM budget_events WHERE customer_id = 'loud' "
        "ORDER BY kind"
    )

    assert statuses == [200, 200, 200]
    assert upstream.calls == 3
    assert Decimal(status["spent_usd"]) == Decimal("0.0006")
    assert status["remaining_usd"] == "0"
    assert status["thresholds_crossed"] == [0.5]
    assert [(e["kind"], e["threshold"]) for e in events] == [
        ("budget.cap_reached", "1"),
        ("budget.threshold_crossed", "0.5"),
    ]


def test_webhook_secret_is_generated_and_shown_once(gateway: GatewayServer) -> None:
    with gateway.http() as http:
        empty = http.get("/v1/webhook").json()
        first = http.put("/v1/webhook", json={"url": "https://example.test/hook"})
        moved = http.put("/v1/webhook", json={"url": "https://example.test/new"})
        shown = http.get("/v1/webhook").json()
        rotated = http.put(
            "/v1/webhook",
            json={"url": "https://example.test/new", "secret": "whsec_mine_0123456789"},
        )
        removed = http.delete("/v1/webhook")
        after = http.get("/v1/webhook").json()

    secret = first.json()["secret"]
    assert empty == {"object": "webhook", "url": None, "secret_hint": None}
    assert first.status_code == 200
    assert secret.startswith("whsec_") and len(secret) > 30
    assert "secret" not in moved.json()
    assert shown == {
        "object": "webhook",
        "url": "https://example.test/new",
        "secret_hint": f"whsec_...{secret[-4:]}",
    }
    assert rotated.json()["secret_hint"] == "whsec_...6789"
    assert removed.status_code == 200
    assert after["url"] is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "url"),
        ({"url": "ftp://example.test/x"}, "url"),
        ({"url": "example.test/x"}, "url"),
        ({"url": "https://example.test/x#frag"}, "url"),
        ({"url": "https://example.test/x", "secret": "short"}, "secret"),
        (
            {"url": "https://example.test/x", "secret": "has spaces in it, too"},
            "secret",
        ),
        ({"url": "https://example.test/x", "events": ["all"]}, "events"),
    ],
)
def test_invalid_webhook_gets_400_naming_the_field(
    gateway: GatewayServer, body: dict[str, Any], param: str
) -> None:
    with gateway.http() as http:
        response = http.put("/v1/webhook", json=body)

    assert response.status_code == 400
    assert _error(response)["param"] == param


def test_customer_ids_with_slashes_and_symbols_are_addressable(
    gateway: GatewayServer,
) -> None:
    with gateway.http() as http:
        set_budget(http, "org/team:a@b.c+d=e", 1)
        shown = http.get("/v1/budgets/org/team:a@b.c+d=e")
        deleted = http.delete("/v1/budgets/org/team:a@b.c+d=e")

    assert shown.status_code == 200
    assert shown.json()["customer_id"] == "org/team:a@b.c+d=e"
    assert deleted.status_code == 200
