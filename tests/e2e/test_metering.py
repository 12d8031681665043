"""Exact costs, tokens and attribution as SDK users see them (non-streaming)."""

from __future__ import annotations

from decimal import Decimal

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer

ATTRIBUTION = {"X-Daylite-Customer": "customer_123", "X-Daylite-Feature": "summary"}


def ask(gateway: GatewayServer, model: str, text: str, **extra: object):  # type: ignore[no-untyped-def]
    return gateway.client().chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "user", "content": text}],
        extra_headers=ATTRIBUTION,
        **extra,
    )


def test_llama70b_12_in_847_out_costs_0_0004271(gateway: GatewayServer) -> None:
    raw = ask(gateway, "llama-3.3-70b", "hi usage=12,847")

    completion = raw.parse()
    assert raw.headers["x-daylite-cost"] == "0.0004271"
    assert raw.headers["x-daylite-tokens-in"] == "12"
    assert raw.headers["x-daylite-tokens-out"] == "847"
    assert raw.headers["x-daylite-customer"] == "customer_123"
    assert completion.usage is not None
    assert completion.usage.model_extra == {"cost": "0.0004271"}


def test_ledger_entry_names_customer_feature_and_exact_cost(
    gateway: GatewayServer,
) -> None:
    raw = ask(gateway, "llama-3.3-70b", "hi usage=12,847")

    entry = gateway.ledger(raw.headers["x-daylite-request-id"])
    assert entry["customer"] == "customer_123"
    assert entry["feature"] == "summary"
    assert entry["model"] == "llama-3.3-70b"
    assert entry["backend"] == "primary"
    assert entry["status"] == "ok"
    assert (entry["tokens_in"], entry["tokens_out"]) == (12, 847)
    assert entry["cost_pico"] == 427_100_000
    assert entry["counted_by"] == "backend"


def test_llama8b_a_million_each_way_costs_ten_cents(gateway: GatewayServer) -> None:
    raw = ask(gateway, "llama-3.1-8b", "big usage=1000000,1000000")

    assert Decimal(raw.headers["x-daylite-cost"]) == Decimal("0.10")
    assert raw.headers["x-daylite-cost"] == "0.1"


def test_reasoning_tokens_are_not_billed_twice(gateway: GatewayServer) -> None:
    """F01: reasoning tokens are part of completion_tokens."""
    raw = ask(gateway, "deepseek-v3", "solve usage=64,1186 reasoning=1024")

    usage = raw.parse().usage
    assert raw.headers["x-daylite-cost"] == "0.0012084"
    assert raw.headers["x-daylite-tokens-out"] == "1186"
    assert usage is not None and usage.total_tokens == 1250
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 1024


def test_sub_micro_costs_are_never_rounded_to_zero(gateway: GatewayServer) -> None:
    raw = ask(gateway, "llama-3.1-8b", "x usage=1,0", max_tokens=1)

    assert raw.headers["x-daylite-cost"] == "0.00000004"


def test_n2_choices_keep_both_and_bill_usage_once(gateway: GatewayServer) -> None:
    """F07 (a): n>1 non-stream keeps two choices, usage billed as reported."""
    raw = ask(gateway, "llama-3.3-70b", "colour usage=20,6 n=2", n=2)

    assert len(raw.parse().choices) == 2
    assert raw.headers["x-daylite-tokens-out"] == "6"
    assert raw.headers["x-daylite-cost"] == "0.000009"


def test_missing_usage_is_counted_by_the_gateway_and_marked(
    gateway: GatewayServer,
) -> None:
    raw = ask(gateway, "llama-3.3-70b", "hello there nousage words=8")

    entry = gateway.ledger(raw.headers["x-daylite-request-id"])
    # 27 bytes of prompt: 7 tokens plus 4 for the message; "w0 w1 ... w7" is
    # 23 bytes of answer: 6 tokens. 11 x 0.30/M + 6 x 0.50/M.
    assert (
        raw.headers["x-daylite-tokens-in"],
        raw.headers["x-daylite-tokens-out"],
    ) == (
        "11",
        "6",
    )
    assert raw.headers["x-daylite-cost"] == "0.0000063"
    assert (entry["counted_by"], entry["cost_pico"]) == ("gateway", 6_300_000)


def test_every_parameter_passes_through_untouched(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F13 (a): nothing dropped, renamed or defaulted in."""
    body = {
        "model": "llama-3.3-70b",
        "messages": [{"role": "user", "content": "weather usage=10,5"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "w", "schema": {"type": "object"}},
        },
        "tools": [
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}},
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "stop": ["\n\n"],
        "user": "u9",
        "metadata": {"k": "v"},
        "x_future_option": {"a": 1},
    }
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", json=body)

    assert response.status_code == 200
    assert upstream.bodies[-1] == body


def test_extra_response_fields_reach_the_client(gateway: GatewayServer) -> None:
    """F13 (c)."""
    raw = ask(gateway, "llama-3.3-70b", "x usage=3,3 extra")

    data = raw.http_response.json()
    assert data["system_fingerprint"] == "fp_fake"
    assert data["service_tier"] == "default"
    assert data["provider_meta"] == {"x": 1}


def test_completions_and_embeddings_are_metered(gateway: GatewayServer) -> None:
    client = gateway.client()
    completion = client.completions.with_raw_response.create(
        model="llama-3.3-70b", prompt="say usage=100,200", extra_headers=ATTRIBUTION
    )
    embedding = client.embeddings.with_raw_response.create(
        model="llama-3.1-8b", input="embed usage=500,0", extra_headers=ATTRIBUTION
    )

    assert completion.headers["x-daylite-cost"] == "0.00013"
    assert embedding.headers["x-daylite-tokens-in"] == "500"
    assert embedding.headers["x-daylite-cost"] == "0.00002"
    entry = gateway.ledger(embedding.headers["x-daylite-request-id"])
    assert entry["endpoint"] == "embeddings"
    assert entry["customer"] == "customer_123"
