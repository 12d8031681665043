"""Bad input and failed backends: OpenAI-format errors, ledgered, server still up."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.support.gateway import GatewayServer, config_for


def chat(text: str) -> dict[str, Any]:
    return {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": text}]}


JUNK = {"X-Daylite-Customer": "junk", "content-type": "application/json"}


def _is_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "Traceback" not in response.text
    return error


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b'{"model":"llama-3.3-70b","messages":[', None),
        (b"", None),
        (
            b'{"model":"llama-3.3-70b","messages":[{"role":"user","content":"caf\xc3\x28"}]}',
            None,
        ),
        (b"[]", None),
        (b'"hi"', None),
        (b'{"model":"llama-3.3-70b"}', "messages"),
        (b'{"messages":[{"role":"user","content":"x"}]}', "model"),
        (b'{"model":"gpt-nope","messages":[{"role":"user","content":"x"}]}', "model"),
        (
            b'{"model":"llama-3.3-70b","messages":[{"role":"robot","content":"x"}]}',
            "messages[0].role",
        ),
        (b'{"model":"llama-3.3-70b","max_tokens":"lots","messages":[]}', "max_tokens"),
    ],
)
def test_malformed_bodies_get_400_and_reach_no_backend(
    gateway: GatewayServer, upstream: FakeUpstream, body: bytes, param: str | None
) -> None:
    """F12 (a)-(e)."""
    with gateway.http() as http:
        response = http.post("/v1/chat/completions", content=body, headers=JUNK)

    error = _is_openai_error(response, 400)
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert upstream.calls == 0
    entry = gateway.ledger(response.headers["x-daylite-request-id"])
    assert (entry["status"], entry["cost_pico"]) == ("invalid", 0)


@pytest.mark.parametrize("value", ["c" * 300, "bad\tid", "has space", ""])
def test_bad_customer_header_gets_400(
    gateway: GatewayServer, upstream: FakeUpstream, value: str
) -> None:
    """F12 (g)."""
    body = {"model": "llama-3.3-70b", "messages": [{"role": "user", "content": "x"}]}
    with gateway.http() as http:
        request = http.build_request("POST", "/v1/chat/completions", json=body)
        request.headers["x-daylite-customer"] = value
        response = http.send(request)

    error = _is_openai_error(response, 400)
    assert error["param"] == "x-daylite-customer"
    assert upstream.calls == 0


def test_header_bytes_the_http_parser_refuses_still_get_400(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """Bytes like \\x01 never reach the app: the HTTP parser answers 400 itself."""
    with gateway.http() as http:
        request = http.build_request("POST", "/v1/chat/completions", json={})
        request.headers["x-daylite-customer"] = "bad\x01id"
        refused = http.send(request)
    with gateway.http() as http:
        still_up = http.get("/v1/models")

    assert refused.status_code == 400
    assert still_up.status_code == 200
    assert upstream.calls == 0


def test_body_limit_is_exact_and_413_is_openai_shaped(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """F12 (f): one byte under the limit is served, one byte over is 413."""
    limit = 4096
    with (
        GatewayServer(
            tmp_path / "gw", config_for(upstream.url), max_body_bytes=limit
        ) as gateway,
        gateway.http() as http,
    ):
        prefix = b'{"model":"llama-3.3-70b","messages":[{"role":"user","content":"'
        suffix = b' usage=5,5"}]}'
        fits = prefix + b"a" * (limit - 1 - len(prefix) - len(suffix)) + suffix
        over = prefix + b"a" * (limit + 1 - len(prefix) - len(suffix)) + suffix
        under = http.post("/v1/chat/completions", content=fits, headers=JUNK)
        too_big = http.post("/v1/chat/completions", content=over, headers=JUNK)

        assert len(fits) == limit - 1 and len(over) == limit + 1
        assert under.status_code == 200
        assert under.headers["x-daylite-cost"] == "0.000004"
        assert _is_openai_error(too_big, 413)["code"] == "request_too_large"
        assert upstream.calls == 1
        ok = http.post(
            "/v1/chat/completions",
            json={
                "model": "llama-3.3-70b",
                "messages": [{"role": "user", "content": "x"}],
            },
        )
        assert ok.status_code == 200


def test_wrong_key_is_401_and_unknown_route_is_404(gateway: GatewayServer) -> None:
    with gateway.http(key="dl-not-a-real-key") as http:
        unauthorized = http.post("/v1/chat/completions", json={})
    with gateway.http() as http:
        missing = http.post("/chat/completions", json={})

    assert _is_openai_error(unauthorized, 401)["code"] == "invalid_api_key"
    assert _is_openai_error(missing, 404)["code"] == "not_found"


def test_sdk_sees_authentication_error_for_a_bad_key(gateway: GatewayServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client(key="dl-wrong").models.list()
    assert caught.value.status_code == 401


def test_failover_to_second_backend_when_first_returns_500(tmp_path: Path) -> None:
    with (
        FakeUpstream(fail_status=500) as bad,
        FakeUpstream() as good,
        GatewayServer(tmp_path / "gw", config_for(bad.url, good.url)) as gateway,
    ):
        raw = gateway.client().chat.completions.with_raw_response.create(
            model="llama-3.3-70b",
            messages=[{"role": "user", "content": "x usage=12,847"}],
            extra_headers={"X-Daylite-Customer": "errs"},
        )
        entry = gateway.ledger(raw.headers["x-daylite-request-id"])

        assert raw.headers["x-daylite-cost"] == "0.0004271"
        assert (bad.calls, good.calls) == (1, 1)
        assert entry["backend"] == "secondary"


@pytest.mark.parametrize("stream", [False, True])
def test_502_in_openai_form_when_every_backend_fails(
    tmp_path: Path, stream: bool
) -> None:
    """F11 (c) and (g): never a 500, never a 200 event stream."""
    with (
        FakeUpstream(fail_status=503) as one,
        FakeUpstream(fail_status=503) as two,
        GatewayServer(tmp_path / "gw", config_for(one.url, two.url)) as gateway,
    ):
        with gateway.http() as http:
            response = http.post(
                "/v1/chat/completions",
                json={
                    "model": "llama-3.3-70b",
                    "stream": stream,
                    "messages": [{"role": "user", "content": "x"}],
                },
                headers={"X-Daylite-Customer": "errs"},
            )
        error = _is_openai_error(response, 502)
        entry = gateway.ledger(response.headers["x-daylite-request-id"])

        assert error["code"] == "backend_unavailable"
        assert (one.calls, two.calls) == (1, 1)
        assert (entry["status"], entry["cost_pico"]) == ("failed", 0)


def test_sdk_raises_for_502(tmp_path: Path) -> None:
    with (
        FakeUpstream(fail_status=500) as bad,
        GatewayServer(tmp_path / "gw", config_for(bad.url)) as gateway,
        pytest.raises(openai.InternalServerError) as caught,
    ):
        gateway.client().chat.completions.create(
            model="llama-3.3-70b", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 502


def test_hanging_backend_times_out_after_the_configured_limit(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    """F11 (e)."""
    with (
        GatewayServer(
            tmp_path / "gw", config_for(upstream.url), upstream_timeout=1.0
        ) as gateway,
        gateway.http() as http,
    ):
        started = time.monotonic()
        response = http.post(
            "/v1/chat/completions",
            json={
                "model": "llama-3.3-70b",
                "messages": [{"role": "user", "content": "x hang=30"}],
            },
        )
        elapsed = time.monotonic() - started

    assert _is_openai_error(response, 502)["code"] == "backend_timeout"
    assert 0.9 < elapsed < 5


def test_backend_400_is_relayed_once_without_retry(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F11 (f)."""
    with gateway.http() as http:
        response = http.post(
            "/v1/chat/completions",
            json={
                "model": "llama-3.3-70b",
                "messages": [{"role": "user", "content": "x fail=400"}],
            },
        )

    error = _is_openai_error(response, 400)
    assert error["message"] == "fake failure 400"
    assert upstream.calls == 1
    assert gateway.ledger(response.headers["x-daylite-request-id"])["cost_pico"] == 0


def test_html_200_from_backend_becomes_502(
    gateway: GatewayServer, upstream: FakeUpstream
) -> None:
    """F11 (h)."""
    with gateway.http() as http:
        response = http.post(
            "/v1/chat/completions",
            json={
                "model": "llama-3.3-70b",
                "messages": [{"role": "user", "content": "x html"}],
            },
        )

    _is_openai_error(response, 502)
    assert gateway.ledger(response.headers["x-daylite-request-id"])["cost_pico"] == 0
