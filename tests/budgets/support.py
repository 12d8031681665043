"""What the budget tests share: a webhook receiver, signature checks, helpers."""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson

from daylite.timefmt import us_from_datetime
from tests.support.gateway import GatewayServer

PERIOD_WAIT_S = 10.0


def at(text: str) -> int:
    """Epoch microseconds of an ISO 8601 UTC time, for a FixedClock."""
    return us_from_datetime(datetime.fromisoformat(text).astimezone(UTC))


def wait_until(check: Callable[[], bool], seconds: float = PERIOD_WAIT_S) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass; bounded, never endless."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def chat_body(text: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": extra.pop("model", "llama-3.3-70b"),
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def set_budget(
    http: httpx.Client,
    customer: str,
    cap: object,
    action: str = "block",
    thresholds: list[float] | None = None,
) -> dict[str, Any]:
    response = http.post(
        "/v1/budgets",
        json={
            "customer_id": customer,
            "monthly_cap_usd": cap,
            "action_on_cap": action,
            "alert_thresholds": thresholds or [],
        },
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def ask(
    http: httpx.Client,
    customer: str,
    body: dict[str, Any],
    path: str = "/v1/chat/completions",
) -> httpx.Response:
    return http.post(path, json=body, headers={"X-Daylite-Customer": customer})


def budget_of(http: httpx.Client, customer: str) -> dict[str, Any]:
    response = http.get(f"/v1/budgets/{customer}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def ledger_total_pico(gateway: GatewayServer, customer: str) -> int:
    rows = gateway.sql(
        "SELECT COALESCE(SUM(cost_pico), 0) AS total FROM ledger WHERE customer = ?",
        (customer,),
    )
    return int(rows[0]["total"])


def signature_valid(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Check X-Daylite-Signature independently of the gateway's own code."""
    fields = dict(
        part.split("=", 1) for part in headers["x-daylite-signature"].split(",")
    )
    if fields.get("t") != headers["x-daylite-timestamp"]:
        return False
    signed = fields["t"].encode() + b"." + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass(frozen=True, slots=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = orjson.loads(self.body)
        return event


class WebhookReceiver:
    """A real HTTP server on 127.0.0.1 that records every webhook attempt.

    ``fail_first`` makes it answer 500 to the first attempts of each event id,
    then 200, like an endpoint that is briefly down.
    """

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.lock = threading.Lock()
        self.attempts: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                status = receiver.answer(headers)
                with receiver.lock:
                    receiver.attempts.append(Delivery(headers, body, status))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, headers: Mapping[str, str]) -> int:
        event_id = headers.get("x-daylite-event-id", "")
        with self.lock:
            earlier = sum(
                1
                for a in self.attempts
                if a.headers.get("x-daylite-event-id") == event_id
            )
        return 500 if earlier < self.fail_first else 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/daylite"

    def accepted(self) -> list[Delivery]:
        with self.lock:
            return [a for a in self.attempts if a.status == 200]

    def all_attempts(self) -> list[Delivery]:
        with self.lock:
            return list(self.attempts)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
