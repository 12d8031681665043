"""Fake Stripe API: a real HTTP server on 127.0.0.1 that answers Checkout like Stripe.

Point the official ``stripe`` library at it through configuration
(``DAYLITE_STRIPE_API_BASE`` / ``billing.stripe_api_base``). It checks the
secret key, decodes the form-encoded parameters the library sends, records
them, and answers ``POST /v1/checkout/sessions`` with a Checkout Session
object shaped like Stripe's. ``paid_event`` builds the ``checkout.session.*``
event Stripe would later send to the webhook for a recorded session.
"""

from __future__ import annotations

import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

SECRET_KEY = "sk_test_daylite_fake_0123456789"
_CREATED = 1_780_000_000


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``a[b][0][c]=v`` pairs into nested dicts, with lists for indexes."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    nested: dict[str, Any] = _listify(root)
    return nested


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(key.isdigit() for key in node):
        return [_listify(node[key]) for key in sorted(node, key=int)]
    return {key: _listify(value) for key, value in node.items()}


def _error(message: str, kind: str = "invalid_request_error") -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}


class FakeStripeAPI:
    """Records every checkout session request; answers like the Stripe API."""

    def __init__(self, secret_key: str = SECRET_KEY) -> None:
        self.secret_key = secret_key
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.fail_with: int | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeStripeAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> FakeStripeAPI:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the test reads ------------------------------------------------

    def last_params(self) -> dict[str, Any]:
        with self._lock:
            return dict(self.requests[-1]["params"])

    def paid_event(
        self,
        session_id: str,
        *,
        event_id: str,
        event_type: str = "checkout.session.completed",
        payment_status: str = "paid",
    ) -> dict[str, Any]:
        """The event Stripe sends once the buyer pays for ``session_id``."""
        with self._lock:
            session = dict(self.sessions[session_id])
        session.update(payment_status=payment_status, status="complete")
        return {
            "id": event_id,
            "object": "event",
            "api_version": "2025-01-01",
            "created": _CREATED,
            "livemode": False,
            "type": event_type,
            "data": {"object": session},
        }

    # -- the server -----------------------------------------------------------

    def _session(self, params: dict[str, Any]) -> dict[str, Any]:
        number = next(self._ids)
        session_id = f"cs_test_fake{number:06d}"
        items = params.get("line_items", [])
        total = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1))
            for item in items
        )
        currency = items[0]["price_data"]["currency"] if items else "usd"
        return {
            "id": session_id,
            "object": "checkout.session",
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "created": _CREATED,
            "currency": currency,
            "livemode": False,
            "metadata": params.get("metadata", {}),
            "mode": params.get("mode"),
            "payment_status": "unpaid",
            "status": "open",
            "success_url": params.get("success_url"),
            "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        }

    def _answer(
        self, method: str, path: str, auth: str, body: str
    ) -> tuple[int, dict[str, Any]]:
        params = _nest(parse_qsl(body, keep_blank_values=True))
        with self._lock:
            self.requests.append({"method": method, "path": path, "params": params})
            if auth != f"Bearer {self.secret_key}":
                return 401, _error("Invalid API Key provided.")
            if self.fail_with is not None:
                return self.fail_with, _error("Fake failure.", "api_error")
            if (method, path) != ("POST", "/v1/checkout/sessions"):
                return 404, _error(f"Unrecognized request URL ({method}: {path}).")
            session = self._session(params)
            self.sessions[session["id"]] = session
        return 200, session

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode()
                auth = self.headers.get("authorization", "")
                status, answer = fake._answer(self.command, self.path, auth, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req_fake")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler
