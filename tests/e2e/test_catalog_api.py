"""The catalog as clients see it, cached-input pricing, probes and the simulator."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for

CACHED = """
[models."cached-model"]
context_length = 32768
input = "0.30"
output = "0.50"
cached_input = "0.15"
routes = [{ backend = "primary" }]
"""

UNROUTED = """
[models."llama-3.3-70b"]
context_length = 131072
input = "0.30"
output = "0.50"
"""


def test_models_list_prices_per_million_and_context(gateway: GatewayServer) -> None:
    models = {m["id"]: m for m in gateway.http().get("/v1/models").json()["data"]}

    assert set(models) == {"llama-3.3-70b", "llama-3.1-8b", "deepseek-v3"}
    assert models["deepseek-v3"]["context_length"] == 131072
    assert models["deepseek-v3"]["pricing"] == {
        "unit": "USD per 1M tokens",
        "input": "0.35",
        "output": "1",
        "cached_input": "0.35",
        "batch_input": "0.25",
        "batch_output": "0.7",
    }
    assert models["deepseek-v3"]["simulated"] is False
    assert gateway.client().models.retrieve("llama-3.1-8b").id == "llama-3.1-8b"


def test_cached_prompt_tokens_are_priced_at_the_cached_rate_once(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    config = config_for(upstream.url, models=CACHED)
    with GatewayServer(tmp_path / "gw", config) as gateway:
        raw = gateway.client().chat.completions.with_raw_response.create(
            model="cached-model",
            messages=[{"role": "user", "content": "x usage=1000,0 cached=400"}],
        )
        entry = gateway.ledger(raw.headers["x-daylite-request-id"])

    assert raw.headers["x-daylite-cost"] == "0.00024"
    assert raw.headers["x-daylite-tokens-in"] == "1000"
    assert entry["cached_tokens"] == 400


def test_simulated_backend_is_marked_and_metered(tmp_path: Path) -> None:
    with GatewayServer(tmp_path / "gw", UNROUTED) as gateway:
        raw = gateway.client().chat.completions.with_raw_response.create(
            model="llama-3.3-70b",
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=5,
            extra_headers={"X-Daylite-Customer": "demo"},
        )
        again = gateway.client().chat.completions.with_raw_response.create(
            model="llama-3.3-70b",
            messages=[{"role": "user", "content": "Hello"}],
            max_tokens=5,
        )
        listed = gateway.http().get("/v1/models").json()["data"][0]
        entry = gateway.ledger(raw.headers["x-daylite-request-id"])

    assert raw.headers["x-daylite-simulated"] == "true"
    assert (
        raw.parse().choices[0].message.content == "This is Daylite's simulated backend."
    )
    assert raw.headers["x-daylite-tokens-out"] == "5"
    assert raw.headers["x-daylite-cost"] == again.headers["x-daylite-cost"]
    assert listed["simulated"] is True
    assert (entry["backend"], entry["customer"]) == ("simulated", "demo")
    # "Hello": 2 tokens plus 4 for the message in; 5 out, capped by max_tokens.
    assert raw.headers["x-daylite-cost"] == "0.0000043"


def test_health_and_readiness_need_no_key(gateway: GatewayServer) -> None:
    with gateway.http(key="nothing") as http:
        health = http.get("/healthz")
        ready = http.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
