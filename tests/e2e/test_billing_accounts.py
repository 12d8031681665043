"""The operator's account API: create, list, show, change plan, grant credits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.billing.helpers import balance, chat, create_account, grant, operator_key
from tests.support.gateway import GatewayServer


def test_created_account_comes_with_a_working_key(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)

    with gateway.http(operator) as http:
        response = http.post("/v1/accounts", json={"name": "Acme Inc", "plan": "pro"})

    assert response.status_code == 201
    body = response.json()
    assert body["object"] == "account"
    assert (body["name"], body["plan"], body["balance"]) == ("Acme Inc", "pro", "0")
    assert body["key"]["secret"].startswith("dl-")
    assert body["key"]["prefix"] == body["key"]["secret"][:12]
    assert chat(gateway, body["key"]["secret"], "hi usage=1,1").status_code == 402


def test_show_and_list_never_carry_key_secrets(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)
    first, first_key = create_account(gateway, operator, "first")
    second, _ = create_account(gateway, operator, "second")

    with gateway.http(operator) as http:
        shown = http.get(f"/v1/accounts/{first}")
        page = http.get("/v1/accounts", params={"limit": 2})
        rest = http.get("/v1/accounts", params={"after": page.json()["last_id"]})
        missing = http.get("/v1/accounts/acct_nope")

    assert shown.status_code == 200
    assert shown.json()["free_requests"]["remaining"] == 50000
    assert first_key not in shown.text + page.text
    assert [a["id"] for a in page.json()["data"]] == [second, first]
    assert page.json()["has_more"] is True
    assert [a["name"] for a in rest.json()["data"]] == ["default"]
    assert rest.json()["has_more"] is False
    assert missing.status_code == 404


def test_grant_adds_exactly_and_is_listed_with_its_reason(
    gateway: GatewayServer,
) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator)

    granted = grant(gateway, operator, account_id, "12.345678901234")

    assert granted["kind"] == "grant"
    assert (granted["amount"], granted["balance_after"]) == (
        "12.345678901234",
        "12.345678901234",
    )
    assert granted["reason"] == "test top-up"
    assert granted["reference"].startswith("operator key key_")
    assert balance(gateway, key) == Decimal("12.345678901234")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount_usd": "-1", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "0", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "0.0000000000001", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "lots", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "1000001", "reason": "x"}, "amount_usd"),
        ({"amount_usd": "1"}, "reason"),
        ({"amount_usd": "1", "reason": "  "}, "reason"),
        ({"amount": "1", "reason": "typo"}, "amount"),
    ],
)
def test_bad_grants_get_400_and_change_nothing(
    gateway: GatewayServer, body: dict[str, str], param: str
) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator)

    with gateway.http(operator) as http:
        response = http.post(f"/v1/accounts/{account_id}/credits", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert balance(gateway, key) == 0


def test_grant_to_unknown_account_is_404(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)

    with gateway.http(operator) as http:
        response = http.post(
            "/v1/accounts/acct_nope/credits", json={"amount_usd": "1", "reason": "x"}
        )

    assert response.status_code == 404


@pytest.mark.parametrize("plan", ["gold", ["pro"], 1])
def test_unknown_plan_is_refused(gateway: GatewayServer, plan: object) -> None:
    operator = operator_key(gateway)

    with gateway.http(operator) as http:
        response = http.post("/v1/accounts", json={"name": "x", "plan": plan})

    assert response.status_code == 400
    assert "developer, pro" in response.json()["error"]["message"]
