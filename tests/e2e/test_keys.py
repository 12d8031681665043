"""Account keys over HTTP: created once, listed without secrets, revoked at once."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from daylite.logs import JsonFormatter
from tests.billing.helpers import chat, create_account, credits, operator_key
from tests.support.gateway import GatewayServer

TEXT = "hello usage=3,4"


def _create_key(gateway: GatewayServer, key: str, name: str = "ci") -> dict[str, Any]:
    with gateway.http(key) as http:
        response = http.post("/v1/keys", json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _list(gateway: GatewayServer, key: str) -> Any:
    with gateway.http(key) as http:
        response = http.get("/v1/keys")
    assert response.status_code == 200, response.text
    return response


def test_created_key_shows_its_secret_once_and_works(gateway: GatewayServer) -> None:
    created = _create_key(gateway, gateway.key, "deploy bot")

    secret = created["secret"]
    assert secret.startswith("dl-") and not secret.startswith("dl-op-")
    assert created["prefix"] == secret[:12]
    assert (created["name"], created["last_used_at"]) == ("deploy bot", None)
    assert chat(gateway, secret, TEXT).status_code == 200
    listed = _list(gateway, gateway.key)
    assert secret not in listed.text
    assert hashlib.sha256(secret.encode()).hexdigest() not in listed.text
    mine = [key for key in listed.json()["data"] if key["id"] == created["id"]]
    assert set(mine[0]) == {
        "id",
        "object",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
    }
    assert mine[0]["last_used_at"] is not None


def test_revoked_key_is_refused_on_its_very_next_request(
    gateway: GatewayServer,
) -> None:
    created = _create_key(gateway, gateway.key)
    secret = created["secret"]
    assert chat(gateway, secret, TEXT).status_code == 200

    with gateway.http() as http:
        revoked = http.delete(f"/v1/keys/{created['id']}")
        again = http.delete(f"/v1/keys/{created['id']}")

    assert revoked.status_code == 200
    assert revoked.json() == {"id": created["id"], "object": "api_key", "deleted": True}
    refused = chat(gateway, secret, TEXT)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert again.status_code == 404
    assert created["id"] not in _list(gateway, gateway.key).text


def test_a_key_can_revoke_itself(gateway: GatewayServer) -> None:
    created = _create_key(gateway, gateway.key)

    with gateway.http(created["secret"]) as http:
        assert http.delete(f"/v1/keys/{created['id']}").status_code == 200
        assert http.get("/v1/keys").status_code == 401


def test_keys_of_another_account_are_out_of_reach(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)
    _, other = create_account(gateway, operator, "other")
    created = _create_key(gateway, gateway.key)

    with gateway.http(other) as http:
        response = http.delete(f"/v1/keys/{created['id']}")

    assert response.status_code == 404
    assert created["id"] not in _list(gateway, other).text
    assert chat(gateway, created["secret"], TEXT).status_code == 200


def test_operator_and_account_keys_stay_in_their_lanes(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)

    with gateway.http(operator) as http:
        assert http.post("/v1/keys", json={}).status_code == 403
        assert http.get("/v1/keys").status_code == 403
        assert http.get("/v1/credits").status_code == 403
        assert http.post("/api/checkout", json={"pack": "x"}).status_code == 403
    operator_chat = chat(gateway, operator, TEXT)
    assert operator_chat.status_code == 403
    assert operator_chat.json()["error"]["code"] == "permission_denied"
    with gateway.http() as http:
        refused = http.get("/v1/accounts")
        assert refused.status_code == 403
        assert refused.json()["error"]["type"] == "permission_error"
        assert http.post("/v1/accounts", json={"name": "x"}).status_code == 403


def test_key_name_is_validated(gateway: GatewayServer) -> None:
    with gateway.http() as http:
        response = http.post("/v1/keys", json={"name": "n" * 201})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "name"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.raw: list[str] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.raw.append(f"{record.getMessage()} {record.__dict__}")


@pytest.fixture
def gateway_logs() -> Iterator[_Lines]:
    handler = _Lines()
    loggers = [logging.getLogger(name) for name in ("daylite", "uvicorn", "stripe")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_key_secrets_appear_in_no_log_line_and_no_later_response(
    gateway: GatewayServer, gateway_logs: _Lines
) -> None:
    created = _create_key(gateway, gateway.key)
    secret = created["secret"]
    responses = [
        chat(gateway, secret, TEXT),
        chat(gateway, secret, "x fail=503"),
        _list(gateway, secret),
        _list(gateway, gateway.key),
    ]
    with gateway.http(secret) as http:
        responses.append(http.get("/v1/credits"))
        responses.append(http.delete(f"/v1/keys/{created['id']}"))
        responses.append(http.get("/v1/keys"))
    responses.append(chat(gateway, secret, TEXT))

    hashed = hashlib.sha256(secret.encode()).hexdigest()
    assert [r.status_code for r in responses] == [
        200,
        502,
        200,
        200,
        200,
        200,
        401,
        401,
    ]
    for response in responses:
        assert secret not in response.text and hashed not in response.text
        assert secret not in str(response.headers)
    assert gateway_logs.lines, "the gateway logged nothing; the check proves nothing"
    assert not [line for line in gateway_logs.lines if secret in line]
    assert not [line for line in gateway_logs.raw if secret in line]
    assert credits(gateway, gateway.key)["plan"] == "developer"
