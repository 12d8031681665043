"""GET /v1/usage and its CSV export agree, to the last digit, with what clients saw.

A known mix of requests (several customers, features and models, streamed and
not, refused and failed) is sent at chosen clock times; every total, breakdown,
series point and CSV cell is checked against the X-Daylite-Cost headers, the
stream usage.cost values and the token counts the clients received.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from daylite.clock import FixedClock
from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for
from tests.usage.support import (
    Bill,
    Client,
    Sums,
    at,
    breakdown,
    entry_sums,
    grouped,
    top_sums,
    total,
)

CSV_HEADER = [
    "date",
    "customer",
    "feature",
    "model",
    "requests",
    "billed_requests",
    "refused_requests",
    "failed_requests",
    "tokens_in",
    "tokens_out",
    "cost_usd",
]


def send_mix(client: Client, clock: FixedClock) -> None:
    """Fourteen requests over two days; expected costs are in the comments."""
    clock.set(at("2026-12-10T09:15:00+00:00"))
    client.chat("a usage=12,847", customer="acme", feature="chat")  # 0.0004271
    clock.set(at("2026-12-10T09:40:00+00:00"))
    client.stream(  # 0.0012084
        "b usage=64,1186", model="deepseek-v3", customer="acme", feature="search"
    )
    clock.set(at("2026-12-10T10:05:00+00:00"))
    client.chat(  # 0.00016
        "c usage=1000,2000", model="llama-3.1-8b", customer="globex", feature="chat"
    )
    client.stream("d usage=5,7")  # no customer, no feature: 0.000005
    clock.set(at("2026-12-10T11:30:00+00:00"))
    client.invalid(customer="acme", feature="chat")
    clock.set(at("2026-12-10T11:31:00+00:00"))
    client.backend_down(model="deepseek-v3", customer="globex")
    client.chat("e usage=1,0", model="llama-3.1-8b", customer="globex")  # 4e-8
    clock.set(at("2026-12-11T00:00:00+00:00"))
    client.chat("f usage=100,200", customer="acme", feature="chat")  # 0.00013
    clock.set(at("2026-12-11T13:59:59.999999+00:00"))
    client.stream("g usage=3,4", model="llama-3.1-8b", feature="search")
    clock.set(at("2026-12-11T14:00:00+00:00"))
    client.chat(  # 0.00001145
        "h usage=7,9", model="deepseek-v3", customer="globex", feature="search"
    )
    client.invalid(customer="acme")
    client.stream(  # 0.001
        "i usage=0,1000", model="deepseek-v3", customer="acme", feature="search"
    )
    client.set_budget("capped", "0.001")
    client.chat("j usage=5,500", customer="capped", max_tokens=500)  # 0.0002515
    client.over_budget(customer="capped", feature="chat")


@pytest.fixture(scope="module")
def mix(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayServer, Client]]:
    clock = FixedClock(at("2026-12-10T09:00:00+00:00"))
    data_dir: Path = tmp_path_factory.mktemp("usage") / "gw"
    with (
        FakeUpstream() as upstream,
        GatewayServer(data_dir, config_for(upstream.url), clock=clock) as gateway,
    ):
        client = Client(gateway)
        send_mix(client, clock)
        yield gateway, client


def test_the_mix_is_what_the_comments_say(mix: tuple[GatewayServer, Client]) -> None:
    _, client = mix
    sums = total(client.bills)

    assert (sums.requests, sums.billed, sums.refused, sums.failed) == (14, 10, 3, 1)
    assert sums.cost == Decimal("0.00319385")


def test_totals_equal_the_sum_of_what_clients_were_charged(
    mix: tuple[GatewayServer, Client],
) -> None:
    _, client = mix
    body = client.usage()

    assert top_sums(body) == total(client.bills)
    assert body["totalCost"] == "0.00319385"
    assert body["currency"] == "USD"
    assert "series" not in body and "budget" not in body


@pytest.mark.parametrize(
    ("name", "key", "field"),
    [
        ("byFeature", "feature", "feature"),
        ("byModel", "model", "model"),
        ("byCustomer", "customer", "customer"),
    ],
)
def test_every_breakdown_entry_is_exact(
    mix: tuple[GatewayServer, Client], name: str, key: str, field: str
) -> None:
    _, client = mix
    body = client.usage()

    assert breakdown(body, name, key) == grouped(client.bills, field)
    assert None in breakdown(body, name, key) or field == "model"


def test_breakdowns_are_ordered_by_cost_descending(
    mix: tuple[GatewayServer, Client],
) -> None:
    _, client = mix
    body = client.usage()

    for name in ("byFeature", "byModel", "byCustomer"):
        costs = [Decimal(entry["cost"]) for entry in body[name]]
        assert costs == sorted(costs, reverse=True)


def test_customer_view_narrows_to_that_customer_and_adds_budget(
    mix: tuple[GatewayServer, Client],
) -> None:
    _, client = mix
    body = client.usage(customer="acme")
    acme = [bill for bill in client.bills if bill.customer == "acme"]

    assert top_sums(body) == total(acme)
    assert top_sums(body).cost == Decimal("0.0027655")
    assert (body["refusedRequests"], body["failedRequests"]) == (2, 0)
    assert breakdown(body, "byFeature", "feature") == grouped(acme, "feature")
    assert breakdown(body, "byModel", "model") == grouped(acme, "model")
    assert breakdown(body, "byCustomer", "customer") == {"acme": total(acme)}
    assert body["filters"]["customer"] == "acme"
    assert "budget" in body


def test_customer_view_shows_the_budget_next_to_exact_spend(
    mix: tuple[GatewayServer, Client],
) -> None:
    _, client = mix
    body = client.usage(customer="capped")

    assert (body["totalCost"], body["billedRequests"]) == ("0.0002515", 1)
    assert (body["refusedRequests"], body["totalRequests"]) == (1, 2)
    budget = body["budget"]
    assert budget["customer_id"] == "capped"
    assert Decimal(budget["spent_usd"]) == Decimal(body["totalCost"])
    assert Decimal(budget["monthly_cap_usd"]) == Decimal("0.001")
    assert client.usage(customer="acme")["budget"] is None


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ({"feature": "search"}, "feature", "search"),
        ({"model": "deepseek-v3"}, "model", "deepseek-v3"),
        ({"customer": "globex", "model": "deepseek-v3"}, "customer", "globex"),
    ],
)
def test_feature_and_model_filters(
    mix: tuple[GatewayServer, Client],
    params: dict[str, str],
    field: str,
    value: str,
) -> None:
    _, client = mix
    body = client.usage(**params)
    chosen = [
        bill
        for bill in client.bills
        if all(getattr(bill, name) == wanted for name, wanted in params.items())
    ]

    assert chosen and all(getattr(bill, field) == value for bill in chosen)
    assert top_sums(body) == total(chosen)
    assert breakdown(body, "byCustomer", "customer") == grouped(chosen, "customer")


def test_daily_series_has_one_exact_point_per_day(
    mix: tuple[GatewayServer, Client],
) -> None:
    _, client = mix
    body = client.usage(granularity="day")

    days = grouped(client.bills, "day")
    assert [point["start"] for point in body["series"]] == [
        "2026-12-10T00:00:00.000000Z",
        "2026-12-11T00:00:00.000000Z",
    ]
    assert [entry_sums(point) for point in body["series"]] == [
        days["2026-12-10"],
        days["2026-12-11"],
    ]
    assert top_sums(body) == total(client.bills)


def test_hourly_series_is_zero_filled_across_the_range(
    mix: tuple[GatewayServer, Client],
) -> None:
    _, client = mix
    body = client.usage(
        granularity="hour", start="2026-12-10T09:30:00Z", end="2026-12-10T12:00:00Z"
    )

    points = body["series"]
    assert [point["start"][11:16] for point in points] == [
        "09:00",
        "10:00",
        "11:00",
    ]
    # The 09:00 bucket holds only what is inside the range: the 09:40 stream.
    assert points[0]["cost"] == "0.0012084"
    assert points[1]["cost"] == "0.000165"
    assert (points[2]["cost"], points[2]["requests"]) == ("0.00000004", 3)
    assert sum(Decimal(point["cost"]) for point in points) == Decimal(body["totalCost"])


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _csv_expected(bills: list[Bill]) -> dict[tuple[str, str, str, str], Sums]:
    cells: dict[tuple[str, str, str, str], Sums] = {}
    for bill in bills:
        key = (bill.day, bill.customer or "", bill.feature or "", bill.model)
        cells[key] = cells.get(key, Sums()).add(bill)
    return cells


def _csv_sums(row: list[str]) -> Sums:
    requests, billed, refused, failed, tokens_in, tokens_out = map(int, row[4:10])
    return Sums(
        requests, billed, refused, failed, tokens_in, tokens_out, Decimal(row[10])
    )


@pytest.mark.parametrize("how", ["format", "accept"])
def test_csv_export_has_every_cell_exact(
    mix: tuple[GatewayServer, Client], how: str
) -> None:
    gateway, client = mix
    with gateway.http() as http:
        if how == "format":
            response = http.get("/v1/usage", params={"format": "csv"})
        else:
            response = http.get("/v1/usage", headers={"accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="daylite-usage.csv"'
    )
    text = response.text
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    rows = _csv_rows(text)
    assert rows[0] == CSV_HEADER
    body = rows[1:]
    keys = [tuple(row[:4]) for row in body]
    assert keys == sorted(keys), "rows come ordered by date, customer, feature, model"
    assert {tuple(row[:4]): _csv_sums(row) for row in body} == _csv_expected(
        client.bills
    )
    assert len(body) == len(_csv_expected(client.bills))
    costs = [row[10] for row in body]
    assert all("e" not in cost.lower() for cost in costs)
    assert "2026-12-10,globex,,llama-3.1-8b,1,1,0,0,1,0,0.00000004" in text


def test_csv_respects_filters_and_names_the_range(
    mix: tuple[GatewayServer, Client],
) -> None:
    gateway, client = mix
    params = {"format": "csv", "customer": "acme", "start": "2026-12-11"}
    with gateway.http() as http:
        response = http.get("/v1/usage", params=params)

    rows = _csv_rows(response.text)
    acme = [b for b in client.bills if b.customer == "acme" and b.day == "2026-12-11"]
    assert response.headers["content-disposition"] == (
        'attachment; filename="daylite-usage-20261211-now.csv"'
    )
    assert {tuple(row[:4]): _csv_sums(row) for row in rows[1:]} == _csv_expected(acme)


def test_csv_with_no_data_is_just_the_header(
    mix: tuple[GatewayServer, Client],
) -> None:
    gateway, _ = mix
    params = {"format": "csv", "start": "2025-01-01", "end": "2025-02-01"}
    with gateway.http() as http:
        response = http.get("/v1/usage", params=params)

    assert response.text == ",".join(CSV_HEADER) + "\r\n"
    assert response.headers["content-disposition"] == (
        'attachment; filename="daylite-usage-20250101-20250201.csv"'
    )


def test_hourly_csv_rows_are_exact(mix: tuple[GatewayServer, Client]) -> None:
    gateway, client = mix
    params = {"format": "csv", "granularity": "hour", "end": "2026-12-10T10:00:00Z"}
    with gateway.http() as http:
        response = http.get("/v1/usage", params=params)

    rows = _csv_rows(response.text)
    assert rows[0][0] == "hour"
    assert rows[1:] == [
        ["2026-12-10T09:00:00Z", "acme", "chat", "llama-3.3-70b"]
        + ["1", "1", "0", "0", "12", "847", "0.0004271"],
        ["2026-12-10T09:00:00Z", "acme", "search", "deepseek-v3"]
        + ["1", "1", "0", "0", "64", "1186", "0.0012084"],
    ]


def test_each_request_id_finds_its_entry_with_the_same_cost(
    mix: tuple[GatewayServer, Client],
) -> None:
    gateway, client = mix
    with gateway.http() as http:
        entries = [http.get(f"/v1/requests/{bill.request_id}") for bill in client.bills]

    for bill, response in zip(client.bills, entries, strict=True):
        entry = response.json()
        assert Decimal(entry["cost"]) == bill.cost
        assert entry["outcome"] == bill.outcome
        assert (entry["customer"], entry["feature"]) == (bill.customer, bill.feature)


def test_totals_survive_a_restart(tmp_path: Path, upstream: FakeUpstream) -> None:
    clock = FixedClock(at("2026-12-10T09:59:59.999999+00:00"))
    data_dir = tmp_path / "gw"
    with GatewayServer(data_dir, config_for(upstream.url), clock=clock) as first:
        client = Client(first)
        client.chat("x usage=12,847", customer="acme")
        clock.set(at("2026-12-10T10:00:00+00:00"))
        client.stream("x usage=64,1186", model="deepseek-v3", customer="acme")
        key = first.key
    with GatewayServer(data_dir, config_for(upstream.url), clock=clock) as second:
        second.key = key
        after = Client(second)
        after.chat("x usage=1,0", model="llama-3.1-8b", customer="acme")
        body = after.usage(customer="acme", start="2026-12-10T09:30:00Z")

    assert top_sums(body) == total([*client.bills, *after.bills])
    assert body["totalCost"] == "0.00163554"
