"""Plans: Developer's 50,000 free requests a month, then credits; pro always pays."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from daylite.clock import FixedClock
from daylite.timefmt import us_from_datetime
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

MAY_31_LATE = us_from_datetime(datetime(2026, 5, 31, 23, 59, 59, tzinfo=UTC))
JUNE_1 = us_from_datetime(datetime(2026, 6, 1, 0, 0, 0, tzinfo=UTC))
TEXT = "please answer briefly usage=5,500"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(MAY_31_LATE)


@pytest.fixture
def gateway(
    tmp_path: Path, upstream: FakeUpstream, clock: FixedClock
) -> Iterator[GatewayServer]:
    with GatewayServer(tmp_path / "gw", config_for(upstream.url), clock=clock) as gw:
        yield gw


def _set_free_used(
    gateway: GatewayServer, account_id: str, period: str, used: int
) -> None:
    gateway.sql(
        "INSERT INTO free_requests (account_id, period, used) VALUES (?, ?, ?)",
        (account_id, period, used),
    )


def test_new_developer_account_has_50000_free_requests_and_no_balance(
    gateway: GatewayServer,
) -> None:
    operator = operator_key(gateway)
    _, key = create_account(gateway, operator)

    reply = chat(gateway, key, TEXT)

    assert reply.status_code == 200
    assert reply.headers["x-daylite-cost"] == "0.0002515"
    status = credits(gateway, key)
    assert (status["plan"], status["balance"]) == ("developer", "0")
    assert status["free_requests"] == {
        "included": 50000,
        "used": 1,
        "remaining": 49999,
        "period": "2026-05",
        "period_start": "2026-05-01T00:00:00.000000Z",
        "period_end": "2026-06-01T00:00:00.000000Z",
    }
    assert status["history"]["data"] == []
    entry = gateway.ledger(reply.headers["x-daylite-request-id"])
    assert (entry["status"], entry["cost_pico"]) == ("ok", 251_500_000)


def test_the_50000th_request_is_free_and_the_50001st_debits(
    gateway: GatewayServer,
) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator)
    _set_free_used(gateway, account_id, "2026-05", 49_999)
    grant(gateway, operator, account_id, "1")

    the_50000th = chat(gateway, key, TEXT)
    assert the_50000th.status_code == 200
    assert balance(gateway, key) == Decimal("1")
    assert credits(gateway, key)["free_requests"]["remaining"] == 0

    the_50001st = chat(gateway, key, TEXT)
    assert the_50001st.status_code == 200
    status = credits(gateway, key)
    assert status["balance"] == "0.9997485"
    assert status["free_requests"]["used"] == 50000
    debits = [e for e in status["history"]["data"] if e["kind"] == "usage"]
    assert [(d["amount"], d["request_id"]) for d in debits] == [
        ("-0.0002515", the_50001st.headers["x-daylite-request-id"])
    ]
    # Both are metered at list price; only the second is paid from credits.
    for reply in (the_50000th, the_50001st):
        entry = gateway.ledger(reply.headers["x-daylite-request-id"])
        assert entry["cost_pico"] == 251_500_000


def test_used_up_allowance_with_no_credits_gets_402(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator)
    _set_free_used(gateway, account_id, "2026-05", 50_000)

    reply = chat(gateway, key, TEXT)

    assert reply.status_code == 402
    assert reply.json()["error"]["code"] == "insufficient_credits"


def test_a_new_month_brings_a_new_allowance(
    gateway: GatewayServer, clock: FixedClock
) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator)
    _set_free_used(gateway, account_id, "2026-05", 50_000)
    assert chat(gateway, key, TEXT).status_code == 402

    clock.set(JUNE_1)
    reply = chat(gateway, key, TEXT)

    assert reply.status_code == 200
    assert credits(gateway, key)["free_requests"]["remaining"] == 49_999
    rows = gateway.sql(
        "SELECT period, used FROM free_requests WHERE account_id=? ORDER BY period",
        (account_id,),
    )
    assert [tuple(row) for row in rows] == [("2026-05", 50_000), ("2026-06", 1)]


def test_failed_requests_do_not_use_the_allowance(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)
    _, key = create_account(gateway, operator)

    assert chat(gateway, key, "x fail=503").status_code == 502

    assert credits(gateway, key)["free_requests"]["used"] == 0


def test_pro_plan_pays_every_request(gateway: GatewayServer) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator, plan="pro")
    grant(gateway, operator, account_id, "0.001")

    assert chat(gateway, key, TEXT).status_code == 200

    status = credits(gateway, key)
    assert status["balance"] == "0.0007485"
    assert status["free_requests"]["included"] == 0


def test_moving_to_pro_takes_effect_on_the_next_request(
    gateway: GatewayServer,
) -> None:
    operator = operator_key(gateway)
    account_id, key = create_account(gateway, operator)
    assert chat(gateway, key, TEXT).status_code == 200

    with gateway.http(operator) as http:
        moved = http.patch(f"/v1/accounts/{account_id}", json={"plan": "pro"})

    assert moved.status_code == 200
    assert moved.json()["plan"] == "pro"
    assert chat(gateway, key, TEXT).status_code == 402
