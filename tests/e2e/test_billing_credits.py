"""Prepaid credits: admission against the balance, exact debits, never below zero."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import openai
import pytest

from tests.billing.helpers import (
    balance,
    chat,
    create_account,
    credits,
    grant,
    operator_key,
)
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for

F10_TEXT = "please answer briefly usage=5,500"


@pytest.fixture
def paid(gateway: GatewayServer) -> Iterator[tuple[str, str, str]]:
    """An account on the paid plan with no credits: (operator key, id, key)."""
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator, plan="pro")
    yield operator, account_id, key


def _usage_debits(gateway: GatewayServer, key: str) -> list[str]:
    history = credits(gateway, key, kind="usage", limit=100)["history"]["data"]
    return [entry["amount"] for entry in history]


def test_f10_prepaid_balance_is_never_overdrawn(
    gateway: GatewayServer, upstream: FakeUpstream, paid: tuple[str, str, str]
) -> None:
    """F10: "worst case <= balance - reserved", and the debit has a floor."""
    operator, account_id, key = paid
    grant(gateway, operator, account_id, "0.0005")

    # (a) In sequence: the first fits, the second's worst case does not.
    first = chat(gateway, key, F10_TEXT)
    assert first.status_code == 200, first.text
    assert Decimal(first.headers["x-daylite-cost"]) == Decimal("0.0002515")
    assert balance(gateway, key) == Decimal("0.0002485")
    calls = upstream.calls
    second = chat(gateway, key, F10_TEXT)
    assert second.status_code == 402
    assert second.json()["error"]["code"] == "insufficient_credits"
    assert upstream.calls == calls
    assert balance(gateway, key) == Decimal("0.0002485")

    # (b) Back to 0.0005, then five at once while another thread keeps reading.
    grant(gateway, operator, account_id, "0.0002515")
    assert balance(gateway, key) == Decimal("0.0005")
    calls = upstream.calls
    readings: list[Decimal] = []
    done = threading.Event()

    def read_balances() -> None:
        for _ in range(200):
            readings.append(balance(gateway, key))
            if done.is_set():
                return

    reader = threading.Thread(target=read_balances)
    reader.start()
    with ThreadPoolExecutor(5) as pool:
        replies = list(pool.map(lambda _: chat(gateway, key, F10_TEXT), range(5)))
    done.set()
    reader.join()
    assert sorted(reply.status_code for reply in replies) == [200, 402, 402, 402, 402]
    assert upstream.calls == calls + 1
    assert balance(gateway, key) == Decimal("0.0002485")
    assert readings and min(readings) >= 0

    # (c) A top-up makes room for one more.
    grant(gateway, operator, account_id, "0.001")
    assert chat(gateway, key, F10_TEXT).status_code == 200
    assert balance(gateway, key) == Decimal("0.000997")

    assert _usage_debits(gateway, key) == ["-0.0002515"] * 3
    rows = gateway.sql(
        "SELECT min(balance_after_pico) AS low FROM credit_history WHERE account_id=?",
        (account_id,),
    )
    assert rows[0]["low"] >= 0


def test_402_is_an_openai_error_ledgered_as_refused(
    gateway: GatewayServer, upstream: FakeUpstream, paid: tuple[str, str, str]
) -> None:
    _, _, key = paid

    with pytest.raises(openai.APIStatusError) as caught:
        gateway.client(key).chat.completions.create(
            model="llama-3.3-70b",
            max_tokens=500,
            messages=[{"role": "user", "content": F10_TEXT}],
        )

    error = caught.value
    assert error.status_code == 402
    assert error.response.headers["x-should-retry"] == "false"
    body = error.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "insufficient_credits"
    assert body["error"]["type"] == "insufficient_credits"
    assert "0.0002647" in body["error"]["message"]
    assert upstream.calls == 0
    entry = gateway.ledger(error.response.headers["x-daylite-request-id"])
    assert (entry["status"], entry["http_status"], entry["cost_pico"]) == (
        "refused",
        402,
        0,
    )


def test_ten_concurrent_requests_fit_exactly_three_worst_cases(
    gateway: GatewayServer, upstream: FakeUpstream, paid: tuple[str, str, str]
) -> None:
    operator, account_id, key = paid
    # Three worst cases (3 x 0.0002647 = 0.0007941) fit in 0.0008; a fourth never.
    grant(gateway, operator, account_id, "0.0008")

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: chat(gateway, key, F10_TEXT), range(10)))

    statuses = [reply.status_code for reply in replies]
    assert statuses.count(200) == 3 and statuses.count(402) == 7
    assert upstream.calls == 3
    assert balance(gateway, key) == Decimal("0.0000455")
    assert _usage_debits(gateway, key) == ["-0.0002515"] * 3


def test_streamed_request_is_debited_its_settled_cost(
    gateway: GatewayServer, paid: tuple[str, str, str]
) -> None:
    operator, account_id, key = paid
    grant(gateway, operator, account_id, "0.001")

    stream = gateway.client(key).chat.completions.create(
        model="llama-3.3-70b",
        max_tokens=500,
        stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": F10_TEXT}],
    )
    usage = [chunk.usage for chunk in stream if chunk.usage is not None]

    assert usage[0].model_extra == {"cost": "0.0002515"}
    assert balance(gateway, key) == Decimal("0.0007485")


def test_backend_overrun_debits_the_whole_balance_and_records_the_shortfall(
    gateway: GatewayServer, paid: tuple[str, str, str]
) -> None:
    """A backend reporting more output than max_tokens cannot push the balance < 0."""
    operator, account_id, key = paid
    grant(gateway, operator, account_id, "0.0005")

    reply = chat(gateway, key, "overrun usage=5,5000", max_tokens=500)

    assert reply.status_code == 200
    assert reply.headers["x-daylite-cost"] == "0.0025015"
    status = credits(gateway, key)
    assert status["balance"] == "0"
    debit = status["history"]["data"][0]
    assert (debit["kind"], debit["amount"], debit["shortfall"]) == (
        "usage",
        "-0.0005",
        "0.0020015",
    )
    assert debit["request_id"] == reply.headers["x-daylite-request-id"]
    assert chat(gateway, key, F10_TEXT).status_code == 402


def test_failed_backend_call_is_not_debited(
    gateway: GatewayServer, paid: tuple[str, str, str]
) -> None:
    operator, account_id, key = paid
    grant(gateway, operator, account_id, "0.001")

    assert chat(gateway, key, "x fail=503").status_code == 502

    status = credits(gateway, key)
    assert (status["balance"], status["reserved"]) == ("0.001", "0")
    assert _usage_debits(gateway, key) == []


def test_credit_history_pages_newest_first(
    gateway: GatewayServer, paid: tuple[str, str, str]
) -> None:
    operator, account_id, key = paid
    for usd in ("1", "2", "3"):
        grant(gateway, operator, account_id, usd)
    assert chat(gateway, key, F10_TEXT).status_code == 200

    first = credits(gateway, key, limit=2)["history"]
    rest = credits(gateway, key, limit=2, after=first["last_id"])["history"]

    amounts = [entry["amount"] for entry in first["data"] + rest["data"]]
    assert amounts == ["-0.0002515", "3", "2", "1"]
    assert (first["has_more"], rest["has_more"]) == (True, False)
    assert [entry["balance_after"] for entry in rest["data"]] == ["3", "1"]
    assert rest["data"][0]["reason"] == "test top-up"


def test_balance_survives_a_restart(tmp_path: Path, upstream: FakeUpstream) -> None:
    config = config_for(upstream.url)
    with GatewayServer(tmp_path / "gw", config) as gateway:
        operator = operator_key(gateway)
        account_id, key = create_account(gateway, operator, plan="pro")
        grant(gateway, operator, account_id, "0.0005")
        assert chat(gateway, key, F10_TEXT).status_code == 200

    with GatewayServer(tmp_path / "gw", config) as gateway:
        assert balance(gateway, key) == Decimal("0.0002485")
        assert chat(gateway, key, F10_TEXT).status_code == 402
