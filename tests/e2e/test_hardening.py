"""Faults found by attacking the gateway, each pinned so it stays fixed."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import DEFAULT_MODELS, GatewayServer, config_for

CAPPED = DEFAULT_MODELS.replace(
    'context_length = 131072\ninput = "0.30"',
    'context_length = 131072\nmax_output_tokens = 8192\ninput = "0.30"',
    1,
)


def _budget(
    gateway: GatewayServer, customer: str, cap: str, action: str = "block"
) -> None:
    response = gateway.http().post(
        "/v1/budgets",
        json={
            "customer_id": customer,
            "monthly_cap_usd": cap,
            "action_on_cap": action,
            "alert_thresholds": [],
        },
    )
    assert response.status_code in (200, 201), response.text


def _stream(gateway: GatewayServer, body: dict[str, Any]) -> tuple[list[str], str]:
    """The data lines of a streamed chat and its request id."""
    payload = {"model": "llama-3.3-70b", "stream": True, **body}
    with (
        gateway.http() as http,
        http.stream("POST", "/v1/chat/completions", json=payload) as response,
    ):
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
        return lines, response.headers["x-daylite-request-id"]


def test_token_id_prompts_are_reserved_one_token_per_id(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    _budget(gateway, "ids", "0.001")
    response = gateway.http().post(
        "/v1/embeddings",
        json={"model": "llama-3.3-70b", "input": [[7] * 20_000]},
        headers={"x-daylite-customer": "ids"},
    )

    assert response.status_code == 429
    assert response.json()["error"]["code"] == "budget_exceeded"
    assert upstream.calls == 0


def test_a_list_of_prompts_reserves_output_for_every_prompt(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    _budget(gateway, "many", "0.0005")
    response = gateway.http().post(
        "/v1/completions",
        json={"model": "llama-3.3-70b", "prompt": ["hi"] * 50, "max_tokens": 100},
        headers={"x-daylite-customer": "many"},
    )

    assert response.status_code == 429
    assert upstream.calls == 0


def test_max_tokens_above_the_model_limit_is_lowered_before_forwarding(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with GatewayServer(tmp_path / "gw", config_for(upstream.url, models=CAPPED)) as gw:
        gw.client().chat.completions.create(
            model="llama-3.3-70b",
            max_tokens=20_000,
            messages=[{"role": "user", "content": "x usage=5,5"}],
        )

    assert upstream.bodies[-1]["max_tokens"] == 8192


def test_clamp_lowers_only_the_limit_the_client_sent(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    _budget(gateway, "reasoner", "0.001", action="clamp")
    gateway.client().chat.completions.create(
        model="llama-3.3-70b",
        max_completion_tokens=100_000,
        messages=[{"role": "user", "content": "x usage=5,5"}],
        extra_headers={"X-Daylite-Customer": "reasoner"},
    )

    sent = upstream.bodies[-1]
    assert "max_tokens" not in sent
    assert 16 <= sent["max_completion_tokens"] < 2000


def test_a_slow_answer_within_upstream_timeout_is_not_cut_by_the_idle_limit(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with GatewayServer(
        tmp_path / "gw",
        config_for(upstream.url),
        upstream_timeout=10.0,
        stream_idle_timeout=0.5,
    ) as gw:
        raw = gw.client().chat.completions.with_raw_response.create(
            model="llama-3.3-70b",
            messages=[{"role": "user", "content": "x usage=5,5 hang=1.5"}],
        )

    assert raw.headers["x-daylite-cost"] == "0.000004"


def test_a_backend_that_ignores_n_still_ends_the_stream_cleanly(
    gateway: GatewayServer,
) -> None:
    lines, request_id = _stream(
        gateway, {"n": 2, "messages": [{"role": "user", "content": "x usage=5,3"}]}
    )

    assert lines[-1] == "data: [DONE]"
    assert gateway.ledger(request_id)["status"] == "ok"


def test_gateway_counted_output_never_exceeds_max_tokens(
    gateway: GatewayServer,
) -> None:
    _, request_id = _stream(
        gateway,
        {
            "max_tokens": 2,
            "messages": [{"role": "user", "content": "x words=10 drop=5 nousage"}],
        },
    )

    entry = gateway.ledger(request_id)
    assert (entry["status"], entry["counted_by"]) == ("backend_error", "gateway")
    assert entry["tokens_out"] == 2


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/v1/chat/completions",
            {
                "model": "llama-3.3-70b",
                "messages": [{"role": ["user"], "content": "x"}],
            },
            "messages[0].role",
        ),
        (
            "/v1/budgets",
            {
                "customer_id": "big",
                "monthly_cap_usd": "1e999999999",
                "action_on_cap": "block",
                "alert_thresholds": [],
            },
            "monthly_cap_usd",
        ),
    ],
)
def test_unusual_values_get_400_not_500(
    gateway: GatewayServer, path: str, body: dict[str, Any], param: str
) -> None:
    response = gateway.http().post(path, json=body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param


def test_huge_history_cursor_is_a_400(gateway: GatewayServer) -> None:
    response = gateway.http().get("/v1/credits", params={"after": "9" * 30})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "after"


def test_a_body_that_never_arrives_gets_408(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with GatewayServer(
        tmp_path / "gw", config_for(upstream.url), body_timeout=0.5
    ) as gw:
        with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + gw.key.encode() + b"\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
            )
            started = time.monotonic()
            reply = sock.recv(65536)
        elapsed = time.monotonic() - started

    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert orjson.loads(body)["error"]["code"] == "request_timeout"
    assert elapsed < 5
    assert upstream.calls == 0


def test_backend_402_moves_to_the_next_backend(tmp_path: Path) -> None:
    with (
        FakeUpstream(fail_status=402) as broke,
        FakeUpstream() as good,
        GatewayServer(tmp_path / "gw", config_for(broke.url, good.url)) as gw,
    ):
        raw = gw.client().chat.completions.with_raw_response.create(
            model="llama-3.3-70b", messages=[{"role": "user", "content": "x usage=1,1"}]
        )
        entry = gw.ledger(raw.headers["x-daylite-request-id"])

    assert (broke.calls, good.calls) == (1, 1)
    assert entry["backend"] == "secondary"


def test_backend_rejection_is_ledgered_as_rejected_with_its_backend(
    gateway: GatewayServer,
) -> None:
    response = gateway.http().post(
        "/v1/chat/completions",
        json={
            "model": "llama-3.3-70b",
            "messages": [{"role": "user", "content": "x fail=422"}],
        },
    )
    entry = gateway.ledger(response.headers["x-daylite-request-id"])

    assert response.status_code == 422
    assert (entry["status"], entry["backend"]) == ("rejected", "primary")


@pytest.mark.parametrize(
    "path", ["/v1/models/llama-3.1-8b/", "/v1/models/", "/v1/webhook/", "/v1/usage/"]
)
def test_every_path_answers_with_a_trailing_slash_and_a_request_id(
    gateway: GatewayServer, path: str
) -> None:
    response = gateway.http().get(path)

    assert response.status_code in (200, 404)
    assert response.status_code == 200 or path == "/v1/webhook/"
    assert response.headers["x-daylite-request-id"].startswith("req_")


def test_a_stalled_stream_ends_with_a_stalled_error_not_a_broken_one(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    with (
        GatewayServer(
            tmp_path / "gw", config_for(upstream.url), stream_idle_timeout=0.5
        ) as gw,
        gw.http() as http,
        http.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "llama-3.3-70b",
                "stream": True,
                "messages": [{"role": "user", "content": "x words=3 slow=2000"}],
            },
        ) as response,
    ):
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
        entry = gw.ledger(response.headers["x-daylite-request-id"])

    assert orjson.loads(lines[-1][6:])["error"]["code"] == "backend_stream_stalled"
    assert (entry["status"], entry["error_code"]) == (
        "backend_error",
        "backend_stream_stalled",
    )


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://[zz]/", "https://a]b/", "http://host:99999/"]
)
def test_a_malformed_webhook_url_is_a_400_and_the_connection_lives_on(
    gateway: GatewayServer, url: str
) -> None:
    with gateway.http() as http:
        refused = http.put("/v1/webhook", json={"url": url})
        after = http.get("/v1/models")

    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == "url"
    assert after.status_code == 200


def test_a_bug_in_a_route_is_an_openai_500_and_the_connection_lives_on(
    tmp_path: Path, upstream: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.requests import Request
    from starlette.routing import Route

    from daylite import extensions

    async def broken(request: Request) -> None:
        raise RuntimeError("a bug")

    routes = extensions.routes
    monkeypatch.setattr(
        extensions, "routes", lambda: [*routes(), Route("/v1/broken", broken)]
    )
    with (
        GatewayServer(tmp_path / "gw", config_for(upstream.url)) as gw,
        gw.http() as http,
    ):
        failed = http.get("/v1/broken")
        after = http.get("/v1/models")

    assert failed.status_code == 500
    assert failed.json()["error"]["code"] == "internal_error"
    assert failed.headers["x-daylite-request-id"].startswith("req_")
    assert after.status_code == 200
