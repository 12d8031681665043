"""Streams: content relayed exactly, usage handled, cost in the closing chunk."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import orjson

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer

CUSTOMER = {"X-Daylite-Customer": "s-done"}


def stream(gateway: GatewayServer, text: str, **extra: Any) -> list[Any]:
    chunks = gateway.client().chat.completions.create(
        model="llama-3.3-70b",
        messages=[{"role": "user", "content": text}],
        stream=True,
        extra_headers=CUSTOMER,
        **extra,
    )
    return list(chunks)


def content_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_stream_relays_content_and_ends_with_one_costed_usage_chunk(
    gateway: GatewayServer,
) -> None:
    chunks = stream(
        gateway, "hi usage=12,847 words=5", stream_options={"include_usage": True}
    )

    usage_chunks = [c for c in chunks if c.usage is not None]
    assert content_of(chunks) == "w0 w1 w2 w3 w4"
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].choices == []
    assert usage_chunks[0].usage.prompt_tokens == 12
    assert usage_chunks[0].usage.completion_tokens == 847
    assert usage_chunks[0].usage.model_extra == {"cost": "0.0004271"}


def _raw_stream(gateway: GatewayServer, body: dict[str, Any]) -> tuple[str, list[str]]:
    with (
        gateway.http() as http,
        http.stream(
            "POST", "/v1/chat/completions", json=body, headers=CUSTOMER
        ) as response,
    ):
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
        return response.headers["x-daylite-request-id"], lines


def _events(lines: list[str]) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in lines if line != "data: [DONE]"]


def test_missing_done_and_endless_pings_still_end_the_stream(
    gateway: GatewayServer,
) -> None:
    """F05 (b) and (c): the gateway adds [DONE] and never leaves the client hanging."""
    for directive in ("nodone", "pings=120"):
        started = time.monotonic()
        request_id, lines = _raw_stream(
            gateway,
            {
                "model": "llama-3.3-70b",
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [
                    {"role": "user", "content": f"hi usage=12,847 words=5 {directive}"}
                ],
            },
        )
        events = _events(lines)
        assert lines[-1] == "data: [DONE]"
        assert [e["usage"]["cost"] for e in events if e.get("usage")] == ["0.0004271"]
        assert time.monotonic() - started < 10
        assert gateway.ledger(request_id)["cost_pico"] == 427_100_000


def test_usage_chunk_reaches_only_clients_that_asked(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F06: include_usage forced upstream, filtered downstream."""
    options: list[dict[str, Any] | None] = [None, {"include_usage": False}]
    for option in options:
        extra = {} if option is None else {"stream_options": option}
        chunks = stream(gateway, "x usage=12,847", **extra)
        assert all(c.choices for c in chunks)
        assert all(c.usage is None for c in chunks)
        assert upstream.bodies[-1]["stream_options"]["include_usage"] is True

    costs = gateway.sql("SELECT cost_pico FROM ledger WHERE customer = 's-done'")
    assert sum(row[0] for row in costs) == 2 * 427_100_000


def test_running_usage_on_every_chunk_is_billed_once(gateway: GatewayServer) -> None:
    chunks = stream(
        gateway,
        "x usage=12,847 words=4 runningusage",
        stream_options={"include_usage": True},
    )

    assert content_of(chunks) == "w0 w1 w2 w3"
    assert [c.usage.model_extra["cost"] for c in chunks if c.usage] == ["0.0004271"]


def test_n2_stream_keeps_each_choice_index(gateway: GatewayServer) -> None:
    """F07 (b)."""
    chunks = stream(
        gateway,
        "colour usage=20,6 n=2 colors",
        n=2,
        stream_options={"include_usage": True},
    )

    texts: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (
                choice.delta.content or ""
            )
    assert texts == {0: "Red.", 1: "Blue."}
    assert [c.usage.model_extra["cost"] for c in chunks if c.usage] == ["0.000009"]


def test_streamed_tool_call_arguments_arrive_intact(gateway: GatewayServer) -> None:
    """F13 (b)."""
    chunks = stream(
        gateway, "weather usage=80,18 toolcall", stream_options={"include_usage": True}
    )

    arguments = ""
    ids, names, finishes = [], [], []
    for chunk in chunks:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or ():
                if call.id:
                    ids.append(call.id)
                if call.function and call.function.name:
                    names.append(call.function.name)
                if call.function and call.function.arguments:
                    arguments += call.function.arguments
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert arguments == '{"city":"Oslo","unit":"c"}'
    assert (ids, names, finishes) == (["call_1"], ["get_weather"], ["tool_calls"])
    assert [c.usage.model_extra["cost"] for c in chunks if c.usage] == ["0.000033"]


def test_stream_broken_by_backend_is_billed_from_gateway_count(
    gateway: GatewayServer,
) -> None:
    request_id, lines = _raw_stream(
        gateway,
        {
            "model": "llama-3.3-70b",
            "stream": True,
            "messages": [{"role": "user", "content": "x drop=3 words=10"}],
        },
    )

    entry = gateway.ledger(request_id)
    assert lines[-1] != "data: [DONE]"
    assert orjson.loads(lines[-1][6:])["error"]["code"] == "backend_stream_broken"
    assert entry["status"] == "backend_error"
    assert entry["counted_by"] == "gateway"
    assert entry["tokens_out"] == 3
    assert entry["cost_pico"] > 0


def test_abandoned_stream_is_cancelled_upstream_and_billed(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    body = {
        "model": "llama-3.3-70b",
        "stream": True,
        "messages": [{"role": "user", "content": "x words=200 slow=50 nousage"}],
    }
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{gateway.url}/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {gateway.key}", **CUSTOMER},
        ) as response,
    ):
        request_id = response.headers["x-daylite-request-id"]
        received = 0
        for line in response.iter_lines():
            if line.startswith("data:"):
                received += 1
            if received == 5:
                break

    deadline = time.monotonic() + 5
    rows: list[Any] = []
    while time.monotonic() < deadline and not rows:
        rows = gateway.sql("SELECT * FROM ledger WHERE id = ?", (request_id,))
        time.sleep(0.05)
    assert rows, "abandoned stream was not ledgered"
    assert rows[0]["status"] == "abandoned"
    assert rows[0]["counted_by"] == "gateway"
    assert 4 <= rows[0]["tokens_out"] < 200
    assert Decimal(rows[0]["cost_pico"]) > 0
