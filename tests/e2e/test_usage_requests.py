"""GET /v1/requests: newest first, filtered, and paged by an opaque cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daylite.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for
from tests.usage.support import Bill, Client, at


@pytest.fixture(scope="module")
def listed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayServer, Client]]:
    clock = FixedClock(at("2026-12-10T09:00:00+00:00"))
    data_dir: Path = tmp_path_factory.mktemp("requests") / "gw"
    with (
        FakeUpstream() as upstream,
        GatewayServer(data_dir, config_for(upstream.url), clock=clock) as gateway,
    ):
        client = Client(gateway)
        # Three requests share one instant, so ties must be broken by id.
        for n in range(3):
            client.chat(f"x usage={n},1", customer="tie", feature="same-time")
        clock.set(at("2026-12-10T09:30:00+00:00"))
        client.stream("x usage=2,2", model="deepseek-v3", customer="acme")
        client.invalid(customer="acme", feature="chat")
        clock.set(at("2026-12-10T10:00:00+00:00"))
        client.backend_down(model="llama-3.1-8b", customer="acme", feature="chat")
        client.chat("x usage=3,3", model="llama-3.1-8b")
        yield gateway, client


def newest_first(bills: list[Bill], gateway: GatewayServer) -> list[str]:
    rows = gateway.sql("SELECT id FROM ledger ORDER BY created_at DESC, id DESC")
    ordered = [row["id"] for row in rows]
    mine = {bill.request_id for bill in bills}
    return [request_id for request_id in ordered if request_id in mine]


def all_pages(client: Client, **params: str) -> tuple[list[dict[str, Any]], int]:
    entries: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = client.requests(**params, **extra)
        pages += 1
        assert page["object"] == "list"
        entries.extend(page["data"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return entries, pages
        cursor = page["next_cursor"]
        assert pages < 20


def test_the_list_is_newest_first_with_ties_broken_by_id(
    listed: tuple[GatewayServer, Client],
) -> None:
    gateway, client = listed
    body = client.requests()

    assert [entry["id"] for entry in body["data"]] == newest_first(
        client.bills, gateway
    )
    times = [entry["created_at"] for entry in body["data"]]
    assert times == sorted(times, reverse=True)
    assert (body["has_more"], body["next_cursor"]) == (False, None)


@pytest.mark.parametrize("limit", ["1", "2", "3", "7"])
def test_pages_cover_every_entry_once_in_order(
    listed: tuple[GatewayServer, Client], limit: str
) -> None:
    gateway, client = listed
    entries, pages = all_pages(client, limit=limit)

    assert [entry["id"] for entry in entries] == newest_first(client.bills, gateway)
    assert pages == -(-len(client.bills) // int(limit))


def test_entries_have_the_same_shape_as_the_single_entry_endpoint(
    listed: tuple[GatewayServer, Client],
) -> None:
    gateway, client = listed
    listed_entries = client.requests()["data"]
    with gateway.http() as http:
        singles = [http.get(f"/v1/requests/{e['id']}").json() for e in listed_entries]

    assert listed_entries == singles


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"customer": "acme"}, {3, 4, 5}),
        ({"feature": "chat"}, {4, 5}),
        ({"model": "llama-3.1-8b"}, {5, 6}),
        ({"status": "invalid"}, {4}),
        ({"status": "failed,invalid"}, {4, 5}),
        ({"status": "ok", "customer": "acme"}, {3}),
        ({"start": "2026-12-10T09:30:00Z", "end": "2026-12-10T10:00:00Z"}, {3, 4}),
        ({"start": "2026-12-10T10:00:00Z"}, {5, 6}),
        ({"end": "2026-12-10T09:00:00.000001Z"}, {0, 1, 2}),
        ({"customer": "nobody"}, set()),
    ],
)
def test_filters_choose_exactly_the_matching_entries(
    listed: tuple[GatewayServer, Client], params: dict[str, str], expected: set[int]
) -> None:
    _, client = listed
    entries, _ = all_pages(client, limit="2", **params)

    assert {entry["id"] for entry in entries} == {
        client.bills[index].request_id for index in expected
    }


def test_entries_name_their_outcome(listed: tuple[GatewayServer, Client]) -> None:
    _, client = listed
    entries = {entry["id"]: entry for entry in client.requests()["data"]}

    for bill in client.bills:
        assert entries[bill.request_id]["outcome"] == bill.outcome


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "MTIz"}, "cursor"),
        ({"status": "OK!"}, "status"),
        ({"start": "2026-12-10T10:00:00Z", "end": "2026-12-10T09:00:00Z"}, "end"),
        ({"granularity": "day"}, "granularity"),
    ],
)
def test_bad_list_parameters_are_400_naming_them(
    listed: tuple[GatewayServer, Client], params: dict[str, str], param: str
) -> None:
    gateway, _ = listed
    with gateway.http() as http:
        response = http.get("/v1/requests", params=params)

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_limit_defaults_to_50_and_allows_1000(
    listed: tuple[GatewayServer, Client],
) -> None:
    _, client = listed

    assert len(client.requests()["data"]) == len(client.bills)
    assert len(client.requests(limit="1000")["data"]) == len(client.bills)
