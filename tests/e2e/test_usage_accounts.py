"""An account sees only its own usage and requests, whatever ids it passes."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from daylite.accounts import create_account
from daylite.auth import KeyStore
from daylite.clock import FixedClock
from daylite.storage.db import create_engine
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for
from tests.usage.support import Client, at, top_sums, total


def second_account_key(gateway: GatewayServer) -> str:
    async def issue() -> str:
        engine = create_engine(gateway.settings.resolved_database_url)
        try:
            clock = FixedClock(at("2026-12-01T00:00:00+00:00"))
            account = await create_account(engine, clock, "second")
            issued = await KeyStore(engine, clock).issue(account.id, "test")
            return str(issued.secret)
        finally:
            await engine.dispose()

    return asyncio.run(issue())


@pytest.fixture(scope="module")
def two(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayServer, Client, Client]]:
    clock = FixedClock(at("2026-12-10T09:00:00+00:00"))
    data_dir: Path = tmp_path_factory.mktemp("accounts") / "gw"
    with (
        FakeUpstream() as upstream,
        GatewayServer(data_dir, config_for(upstream.url), clock=clock) as gateway,
    ):
        first = Client(gateway)
        second = Client(gateway, second_account_key(gateway))
        first.chat("x usage=12,847", customer="shared", feature="chat")
        second.chat("x usage=1000,1000", customer="shared", feature="chat")
        clock.set(at("2026-12-10T10:30:00+00:00"))
        second.stream("x usage=64,1186", model="deepseek-v3", customer="shared")
        first.invalid(customer="shared")
        second.chat("x usage=5,5", customer="second-only")
        yield gateway, first, second


def test_each_account_sees_only_its_own_totals(
    two: tuple[GatewayServer, Client, Client],
) -> None:
    _, first, second = two

    assert top_sums(first.usage()) == total(first.bills)
    assert top_sums(second.usage()) == total(second.bills)
    assert first.usage()["totalCost"] == "0.0004271"
    assert second.usage()["totalCost"] == "0.0020124"


def test_same_customer_id_in_two_accounts_is_two_customers(
    two: tuple[GatewayServer, Client, Client],
) -> None:
    _, first, second = two
    mine = first.usage(customer="shared")
    theirs = second.usage(customer="shared")

    assert top_sums(mine) == total(first.bills)
    assert (mine["totalCost"], mine["totalRequests"]) == ("0.0004271", 2)
    assert theirs["totalCost"] == "0.0020084"
    assert first.usage(customer="second-only")["totalRequests"] == 0
    assert [entry["customer"] for entry in first.usage()["byCustomer"]] == ["shared"]


def test_csv_holds_only_the_callers_rows(
    two: tuple[GatewayServer, Client, Client],
) -> None:
    gateway, first, _ = two
    with gateway.http(first.key) as http:
        text = http.get("/v1/usage", params={"format": "csv"}).text

    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    assert sum(Decimal(row[10]) for row in rows) == Decimal("0.0004271")
    assert {row[1] for row in rows} == {"shared"}
    assert sum(int(row[4]) for row in rows) == 2


def test_another_accounts_request_id_is_404(
    two: tuple[GatewayServer, Client, Client],
) -> None:
    gateway, first, second = two
    with gateway.http(first.key) as http:
        responses = [http.get(f"/v1/requests/{b.request_id}") for b in second.bills]

    assert [response.status_code for response in responses] == [404] * 3


def test_request_lists_hold_only_the_callers_entries(
    two: tuple[GatewayServer, Client, Client],
) -> None:
    _, first, second = two
    mine = first.requests(customer="shared")
    theirs = second.requests(limit="1000")

    assert {entry["id"] for entry in mine["data"]} == {
        bill.request_id for bill in first.bills
    }
    assert {entry["id"] for entry in theirs["data"]} == {
        bill.request_id for bill in second.bills
    }


def test_a_cursor_from_another_account_shows_nothing_of_it(
    two: tuple[GatewayServer, Client, Client],
) -> None:
    _, first, second = two
    page = second.requests(limit="1")
    assert page["has_more"] is True

    rest = first.requests(cursor=page["next_cursor"], limit="1000")
    assert {entry["id"] for entry in rest["data"]} <= {
        bill.request_id for bill in first.bills
    }
