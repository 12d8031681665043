"""Helpers for usage tests: send requests as a client would and keep what it saw."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from daylite.timefmt import iso_from_us, us_from_datetime
from tests.support.gateway import GatewayServer


def at(text: str) -> int:
    """Epoch microseconds of an ISO date-time (UTC)."""
    return int(us_from_datetime(datetime.fromisoformat(text)))


@dataclass(frozen=True)
class Bill:
    """One request as its client saw it: the cost it was told and where it went."""

    request_id: str
    outcome: str
    cost: Decimal
    tokens_in: int
    tokens_out: int
    customer: str | None
    feature: str | None
    model: str
    day: str


@dataclass(frozen=True)
class Sums:
    requests: int = 0
    billed: int = 0
    refused: int = 0
    failed: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)

    def add(self, bill: Bill) -> Sums:
        return Sums(
            self.requests + 1,
            self.billed + (bill.outcome == "billed"),
            self.refused + (bill.outcome == "refused"),
            self.failed + (bill.outcome == "failed"),
            self.tokens_in + bill.tokens_in,
            self.tokens_out + bill.tokens_out,
            self.cost + bill.cost,
        )


def total(bills: Iterable[Bill]) -> Sums:
    sums = Sums()
    for bill in bills:
        sums = sums.add(bill)
    return sums


def grouped(bills: Iterable[Bill], field: str) -> dict[Any, Sums]:
    groups: dict[Any, Sums] = {}
    for bill in bills:
        key = getattr(bill, field)
        groups[key] = groups.get(key, Sums()).add(bill)
    return groups


def entry_sums(entry: dict[str, Any]) -> Sums:
    """An API breakdown entry (or series point) read back as Sums."""
    cost = entry["cost"]
    assert isinstance(cost, str) and "e" not in cost.lower(), cost
    return Sums(
        entry["requests"],
        entry["billedRequests"],
        entry["refusedRequests"],
        entry["failedRequests"],
        entry["tokensIn"],
        entry["tokensOut"],
        Decimal(cost),
    )


def top_sums(body: dict[str, Any]) -> Sums:
    assert "e" not in body["totalCost"].lower()
    return Sums(
        body["totalRequests"],
        body["billedRequests"],
        body["refusedRequests"],
        body["failedRequests"],
        body["totalTokensIn"],
        body["totalTokensOut"],
        Decimal(body["totalCost"]),
    )


def breakdown(body: dict[str, Any], name: str, key: str) -> dict[Any, Sums]:
    entries = body[name]
    keys = [entry[key] for entry in entries]
    assert len(keys) == len(set(keys)), f"{name} repeats a key: {keys}"
    return {entry[key]: entry_sums(entry) for entry in entries}


def _headers(customer: str | None, feature: str | None) -> dict[str, str]:
    headers = {}
    if customer is not None:
        headers["X-Daylite-Customer"] = customer
    if feature is not None:
        headers["X-Daylite-Feature"] = feature
    return headers


class Client:
    """Sends requests through the gateway at chosen clock times, keeping bills."""

    def __init__(self, gateway: GatewayServer, key: str | None = None) -> None:
        self.gateway = gateway
        self.key = key or gateway.key
        self.bills: list[Bill] = []

    def _day(self) -> str:
        clock = self.gateway.clock
        assert clock is not None
        return str(iso_from_us(clock.now_us()))[:10]

    def _keep(self, bill: Bill) -> Bill:
        self.bills.append(bill)
        return bill

    def chat(
        self,
        text: str,
        *,
        model: str = "llama-3.3-70b",
        customer: str | None = None,
        feature: str | None = None,
        **extra: Any,
    ) -> Bill:
        raw = self.gateway.client(self.key).chat.completions.with_raw_response.create(
            model=model,
            messages=[{"role": "user", "content": text}],
            extra_headers=_headers(customer, feature),
            **extra,
        )
        headers = raw.headers
        return self._keep(
            Bill(
                headers["x-daylite-request-id"],
                "billed",
                Decimal(headers["x-daylite-cost"]),
                int(headers["x-daylite-tokens-in"]),
                int(headers["x-daylite-tokens-out"]),
                customer,
                feature,
                model,
                self._day(),
            )
        )

    def stream(
        self,
        text: str,
        *,
        model: str = "llama-3.3-70b",
        customer: str | None = None,
        feature: str | None = None,
    ) -> Bill:
        client = self.gateway.client(self.key)
        with client.chat.completions.with_streaming_response.create(
            model=model,
            messages=[{"role": "user", "content": text}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=_headers(customer, feature),
        ) as response:
            request_id = response.headers["x-daylite-request-id"]
            chunks = list(response.parse())
        usage = chunks[-1].usage
        assert usage is not None and usage.model_extra is not None
        return self._keep(
            Bill(
                request_id,
                "billed",
                Decimal(usage.model_extra["cost"]),
                usage.prompt_tokens,
                usage.completion_tokens,
                customer,
                feature,
                model,
                self._day(),
            )
        )

    def _failure(
        self,
        body: dict[str, Any],
        status: int,
        outcome: str,
        customer: str | None,
        feature: str | None,
    ) -> Bill:
        with self.gateway.http(self.key) as http:
            response = http.post(
                "/v1/chat/completions",
                json=body,
                headers=_headers(customer, feature),
            )
        assert response.status_code == status, response.text
        assert "x-daylite-cost" not in response.headers
        return self._keep(
            Bill(
                response.headers["x-daylite-request-id"],
                outcome,
                Decimal(0),
                0,
                0,
                customer,
                feature,
                body["model"],
                self._day(),
            )
        )

    def invalid(
        self,
        *,
        model: str = "llama-3.3-70b",
        customer: str | None = None,
        feature: str | None = None,
    ) -> Bill:
        """A request the gateway refuses as invalid (400): no messages."""
        return self._failure({"model": model}, 400, "refused", customer, feature)

    def backend_down(
        self,
        *,
        model: str = "llama-3.3-70b",
        customer: str | None = None,
        feature: str | None = None,
    ) -> Bill:
        """A request every backend fails (503 upstream, 502 to the client)."""
        body = {"model": model, "messages": [{"role": "user", "content": "x fail=503"}]}
        return self._failure(body, 502, "failed", customer, feature)

    def over_budget(
        self,
        *,
        model: str = "llama-3.3-70b",
        customer: str | None = None,
        feature: str | None = None,
    ) -> Bill:
        """A request whose worst case does not fit the customer's budget (429)."""
        body = {
            "model": model,
            "max_tokens": 100_000,
            "messages": [{"role": "user", "content": "x usage=0,100000"}],
        }
        return self._failure(body, 429, "refused", customer, feature)

    def set_budget(self, customer: str, cap_usd: str) -> None:
        budget = {
            "customer_id": customer,
            "monthly_cap_usd": cap_usd,
            "action_on_cap": "block",
            "alert_thresholds": [1],
        }
        with self.gateway.http(self.key) as http:
            response = http.post("/v1/budgets", json=budget)
        assert response.status_code in (200, 201), response.text

    def usage(self, **params: str) -> dict[str, Any]:
        with self.gateway.http(self.key) as http:
            response = http.get("/v1/usage", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def usage_error(self, **params: str) -> dict[str, Any]:
        """The error body of a usage query that must be refused with 400."""
        with self.gateway.http(self.key) as http:
            response = http.get("/v1/usage", params=params)
        assert response.status_code == 400, response.text
        error: dict[str, Any] = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        return error

    def requests(self, **params: str) -> dict[str, Any]:
        with self.gateway.http(self.key) as http:
            response = http.get("/v1/requests", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body
