"""Time filters are exact at their edges; bad parameters are 400s that name them."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from daylite.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for
from tests.usage.support import Client, Sums, at, top_sums, total

# Each request costs a distinct power of ten in output tokens on llama-3.1-8b
# (0.06 per 1M), so any total names exactly the requests inside it.
EDGES = [
    ("2026-12-10T09:29:59.999999", 1),
    ("2026-12-10T09:30:00", 10),
    ("2026-12-10T10:00:00", 100),
    ("2026-12-10T11:59:59.999999", 1_000),
    ("2026-12-10T12:29:59.999999", 10_000),
    ("2026-12-10T12:30:00", 100_000),
    ("2026-12-11T00:00:00", 1_000_000),
]
PRICE_PER_TOKEN = Decimal("0.00000006")


@pytest.fixture(scope="module")
def edges(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayServer, Client]]:
    clock = FixedClock(at("2026-12-10T00:00:00+00:00"))
    data_dir: Path = tmp_path_factory.mktemp("edges") / "gw"
    with (
        FakeUpstream() as upstream,
        GatewayServer(data_dir, config_for(upstream.url), clock=clock) as gateway,
    ):
        client = Client(gateway)
        for moment, tokens in EDGES:
            clock.set(at(moment + "+00:00"))
            client.chat(f"x usage=0,{tokens}", model="llama-3.1-8b", customer="edge")
        yield gateway, client


def cost_of(*tokens: int) -> Decimal:
    return sum(tokens, 0) * PRICE_PER_TOKEN


@pytest.mark.parametrize(
    ("start", "end", "inside"),
    [
        # Not on hour boundaries: whole hours from rollups, edges from the ledger.
        ("2026-12-10T09:30:00Z", "2026-12-10T12:30:00Z", (10, 100, 1_000, 10_000)),
        # One microsecond wider on each side takes in the two neighbours.
        (
            "2026-12-10T09:29:59.999999Z",
            "2026-12-10T12:30:00.000001Z",
            (1, 10, 100, 1_000, 10_000, 100_000),
        ),
        # Inside a single hour: the ledger alone answers.
        ("2026-12-10T12:00:00Z", "2026-12-10T12:30:00Z", (10_000,)),
        ("2026-12-10T12:29:59.999999Z", "2026-12-10T12:30:00Z", (10_000,)),
        # On hour boundaries: rollups alone answer.
        ("2026-12-10T10:00:00Z", "2026-12-10T12:00:00Z", (100, 1_000)),
        # Dates mean midnight UTC; the next day's midnight is excluded.
        (
            "2026-12-10",
            "2026-12-11",
            (1, 10, 100, 1_000, 10_000, 100_000),
        ),
        # An offset is converted to UTC: 10:30+01:00 is 09:30Z.
        ("2026-12-10T10:30:00+01:00", "2026-12-10T10:00:00Z", (10,)),
        ("2026-12-11", "2026-12-12", (1_000_000,)),
    ],
)
def test_start_is_inclusive_and_end_exclusive_to_the_microsecond(
    edges: tuple[GatewayServer, Client],
    start: str,
    end: str,
    inside: tuple[int, ...],
) -> None:
    _, client = edges
    body = client.usage(start=start, end=end)

    assert Decimal(body["totalCost"]) == cost_of(*inside)
    assert body["totalRequests"] == len(inside)
    assert body["totalTokensOut"] == sum(inside)


def test_a_request_exactly_at_end_is_excluded_one_microsecond_before_included(
    edges: tuple[GatewayServer, Client],
) -> None:
    _, client = edges
    at_end = client.usage(end="2026-12-10T12:30:00Z")
    just_after = client.usage(end="2026-12-10T12:30:00.000001Z")

    assert at_end["totalTokensOut"] == 11_111
    assert just_after["totalTokensOut"] == 111_111


def test_open_ranges_and_the_customer_filter_match_the_ledger(
    edges: tuple[GatewayServer, Client],
) -> None:
    _, client = edges
    from_start = client.usage(start="2026-12-10T12:29:59.999999Z", customer="edge")
    everything = client.usage()

    assert from_start["totalTokensOut"] == 1_110_000
    assert top_sums(everything) == total(client.bills)


def test_a_series_over_partial_hours_sums_to_the_total(
    edges: tuple[GatewayServer, Client],
) -> None:
    _, client = edges
    body = client.usage(
        start="2026-12-10T09:30:00Z", end="2026-12-10T12:30:00Z", granularity="hour"
    )

    tokens = [point["tokensOut"] for point in body["series"]]
    assert tokens == [10, 100, 1_000, 10_000]
    assert sum(Decimal(p["cost"]) for p in body["series"]) == cost_of(
        10, 100, 1_000, 10_000
    )


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-12-01", "end": "2026-12-02"},
        {"start": "2026-12-10T09:00:00Z", "end": "2026-12-10T09:29:59.999999Z"},
        {"customer": "edge", "model": "deepseek-v3"},
        {"start": "2030-01-01"},
    ],
)
def test_empty_ranges_give_zeros_and_empty_breakdowns(
    edges: tuple[GatewayServer, Client], params: dict[str, str]
) -> None:
    _, client = edges
    body = client.usage(**params)

    assert top_sums(body) == Sums()
    assert body["totalCost"] == "0"
    assert (body["byFeature"], body["byModel"], body["byCustomer"]) == ([], [], [])


def test_an_empty_daily_series_still_has_a_zero_point_per_day(
    edges: tuple[GatewayServer, Client],
) -> None:
    _, client = edges
    body = client.usage(start="2026-12-01", end="2026-12-04", granularity="day")

    assert [(p["start"][:10], p["cost"], p["requests"]) for p in body["series"]] == [
        ("2026-12-01", "0", 0),
        ("2026-12-02", "0", 0),
        ("2026-12-03", "0", 0),
    ]


def test_unknown_customer_gets_zeros_not_404(
    edges: tuple[GatewayServer, Client],
) -> None:
    _, client = edges
    body = client.usage(customer="nobody-by-this-name")

    assert top_sums(body) == Sums()
    assert body["byCustomer"] == []
    assert body["filters"]["customer"] == "nobody-by-this-name"
    assert "budget" in body


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-13-01"}, "start"),
        ({"end": "2026-12-10T25:00:00Z"}, "end"),
        ({"end": "2026-02-30"}, "end"),
        ({"start": ""}, "start"),
        ({"start": "2026-12-10", "end": "2026-12-10"}, "end"),
        ({"start": "2026-12-11", "end": "2026-12-10"}, "end"),
        ({"granularity": "week"}, "granularity"),
        ({"format": "xlsx"}, "format"),
        ({"custmer": "edge"}, "custmer"),
        ({"customer": ""}, "customer"),
        ({"feature": "x" * 201}, "feature"),
        ({"start": "2000-01-01", "granularity": "hour"}, "granularity"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    edges: tuple[GatewayServer, Client], params: dict[str, str], param: str
) -> None:
    _, client = edges
    error = client.usage_error(**params)

    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_a_parameter_given_twice_is_400(edges: tuple[GatewayServer, Client]) -> None:
    gateway, _ = edges
    with gateway.http() as http:
        response = http.get("/v1/usage?customer=a&customer=b")

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "customer"


def test_an_unencoded_plus_in_an_offset_still_reads_as_plus(
    edges: tuple[GatewayServer, Client],
) -> None:
    gateway, _ = edges
    with gateway.http() as http:
        response = http.get("/v1/usage?start=2026-12-10T10:30:00+01:00")

    assert response.status_code == 200
    assert response.json()["filters"]["start"] == "2026-12-10T09:30:00.000000Z"


def test_usage_needs_an_account_key(edges: tuple[GatewayServer, Client]) -> None:
    gateway, _ = edges
    with gateway.http(key="dl-wrong") as http:
        response = http.get("/v1/usage")

    assert response.status_code == 401
