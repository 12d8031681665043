"""Handlers for chat completions, completions and embeddings."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from daylite.admission import Call
from daylite.api.responses import error_response
from daylite.catalog import Route
from daylite.errors import ClientClosedError, DayliteError, RequestTimeoutError
from daylite.ids import new_id
from daylite.logs import request_context
from daylite.money import format_usd
from daylite.pipeline import Draft, Gateway
from daylite.streaming import DONE, StreamRelay

log = logging.getLogger(__name__)


def _meter_headers(draft: Draft, call: Call) -> dict[str, str]:
    headers = {"x-daylite-request-id": draft.request_id}
    if draft.customer:
        headers["x-daylite-customer"] = draft.customer
    if call.model.simulated:
        headers["x-daylite-simulated"] = "true"
    headers.update(call.response_headers)
    return headers


async def _read_body(gateway: Gateway, request: Request) -> bytes:
    declared = request.headers.get("content-length")
    gateway.check_size(declared, 0)
    chunks = []
    size = 0
    limit = gateway.settings.body_timeout
    try:
        # A body trickled in a byte at a time would otherwise hold a slot open
        # for as long as the client likes.
        async with asyncio.timeout(limit):
            async for chunk in request.stream():
                size += len(chunk)
                gateway.check_size(None, size)
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(
            f"The request body did not arrive within {limit:g} seconds "
            "(DAYLITE_BODY_TIMEOUT)."
        ) from None
    except ClientDisconnect:
        raise ClientClosedError("The client closed the connection mid-body.") from None
    return b"".join(chunks)


async def handle(request: Request, endpoint: str) -> Response:
    gateway: Gateway = request.app.state.gateway
    draft = Draft(new_id("req"), endpoint, gateway.clock.now_us(), time.perf_counter())
    context = {"request_id": draft.request_id}
    token = request_context.set(context)
    try:
        return await _serve(gateway, request, draft, context)
    except DayliteError as error:
        await gateway.record_failure(draft, error)
        return error_response(error, draft.request_id)
    except Exception:
        log.exception("unexpected error while serving a request")
        failure = DayliteError("The gateway failed unexpectedly; the error is logged.")
        await gateway.record_failure(draft, failure)
        return error_response(failure, draft.request_id)
    finally:
        request_context.reset(token)


async def _serve(
    gateway: Gateway, request: Request, draft: Draft, context: dict[str, str]
) -> Response:
    principal = await gateway.authenticate(draft, request.headers.get("authorization"))
    context["account"] = principal.account_id or ""
    gateway.read_attribution(draft, request.headers)
    if draft.customer:
        context["customer"] = draft.customer
    call = gateway.prepare(draft, await _read_body(gateway, request))
    await gateway.admit(draft, call)
    if call.stream:
        route, relay = await gateway.open_stream(call)
        return RelayResponse(gateway, draft, call, route, relay, dict(context))
    route, data = await gateway.complete(call)
    metered = gateway.meter_reply(call, data)
    usage = data.get("usage")
    if not isinstance(usage, dict):
        usage = data["usage"] = {
            "prompt_tokens": metered.count.tokens_in,
            "completion_tokens": metered.count.tokens_out,
            "total_tokens": metered.count.tokens_in + metered.count.tokens_out,
        }
    cost = format_usd(metered.cost_pico)
    usage["cost"] = cost
    await gateway.record(draft, gateway.success_entry(draft, route, metered))
    headers = _meter_headers(draft, call)
    headers["x-daylite-cost"] = cost
    headers["x-daylite-tokens-in"] = str(metered.count.tokens_in)
    headers["x-daylite-tokens-out"] = str(metered.count.tokens_out)
    return Response(orjson.dumps(data), headers=headers, media_type="application/json")


# How a stream that did not finish ends for the client: an error event in
# OpenAI's shape instead of [DONE], so SDKs raise rather than take a cut-off
# answer for a whole one. Either way it is billed for what was generated.
_STREAM_PROBLEMS = {
    "broken": (
        "backend_stream_broken",
        "The backend broke off the stream; the answer is incomplete and was "
        "billed for what was generated.",
    ),
    "idle": (
        "backend_stream_stalled",
        "The backend sent nothing for longer than the stream idle timeout "
        "(DAYLITE_STREAM_IDLE_TIMEOUT); the answer is incomplete and was billed "
        "for what was generated.",
    ),
}


async def _until_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


class RelayResponse(Response):
    """Streams a backend's events to the client and settles when it ends.

    The relay and a watcher for the client's disconnect run side by side; a
    client that leaves cancels the relay at once, which closes the backend
    connection so the backend stops generating, and the request is billed for
    what was generated until then.
    """

    def __init__(
        self,
        gateway: Gateway,
        draft: Draft,
        call: Call,
        route: Route,
        relay: StreamRelay,
        context: dict[str, str],
    ) -> None:
        self.gateway = gateway
        self.draft = draft
        self.call = call
        self.route = route
        self.relay = relay
        self.context = context
        self.status_code = 200
        self.background = None
        headers = _meter_headers(draft, call)
        headers["cache-control"] = "no-cache"
        headers["x-accel-buffering"] = "no"
        self.init_headers(headers)
        self.raw_headers.append((b"content-type", b"text/event-stream; charset=utf-8"))
        self._settling: asyncio.Task[bytes] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = request_context.set(self.context)
        try:
            await self._run(receive, send)
        finally:
            request_context.reset(token)

    async def _run(self, receive: Receive, send: Send) -> None:
        pump = asyncio.create_task(self._pump(send))
        watcher = asyncio.create_task(_until_disconnect(receive))
        done, _ = await asyncio.wait(
            {pump, watcher}, return_when=asyncio.FIRST_COMPLETED
        )
        abandoned = pump not in done
        if abandoned:
            pump.cancel()
        watcher.cancel()
        try:
            await pump
        except asyncio.CancelledError:
            abandoned = True
        except OSError:
            abandoned = True
        except Exception:
            log.exception("stream relay failed")
            abandoned = True
        if abandoned:
            await self.relay.aclose()
            await self._settle(abandoned=True)

    async def _pump(self, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        )
        async for piece in self.relay.events():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await self.relay.aclose()
        tail = await self._settle(abandoned=False)
        await send({"type": "http.response.body", "body": tail, "more_body": False})

    def _settle(self, *, abandoned: bool) -> asyncio.Future[bytes]:
        # One settlement per stream, shielded: a disconnect that lands while
        # the ledger commits must neither cancel it nor bill the stream twice.
        if self._settling is None:
            self._settling = asyncio.create_task(self._record(abandoned))
        return asyncio.shield(self._settling)

    async def _record(self, abandoned: bool) -> bytes:
        relay, call = self.relay, self.call
        metered = self.gateway.meter(
            call, relay.usage, relay.output_bytes, relay.content_chunks
        )
        problem = _STREAM_PROBLEMS.get(relay.outcome)
        status = "abandoned" if abandoned else ("backend_error" if problem else "ok")
        entry = self.gateway.success_entry(self.draft, self.route, metered, status)
        if problem and not abandoned:
            entry.error_code = problem[0]
        await self.gateway.record(self.draft, entry)
        return b"" if abandoned else self._tail(metered, problem)

    def _tail(self, metered: Any, problem: tuple[str, str] | None) -> bytes:
        tail = b""
        options = self.call.payload.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            count = metered.count
            usage: dict[str, Any] = {
                "prompt_tokens": count.tokens_in,
                "completion_tokens": count.tokens_out,
                "total_tokens": count.tokens_in + count.tokens_out,
            }
            if count.counted_by == "backend" and isinstance(self.relay.usage, dict):
                # The backend's own object, details and all, when it is believed.
                usage = dict(self.relay.usage)
            usage["cost"] = format_usd(metered.cost_pico)
            chunk = {**self.relay.template, "choices": [], "usage": usage}
            tail += b"data: " + orjson.dumps(chunk) + b"\n\n"
        if problem is None:
            return tail + DONE
        code, message = problem
        error = {"message": message, "type": "api_error", "param": None, "code": code}
        event = self.relay.error_event or (
            b"data: " + orjson.dumps({"error": error}) + b"\n\n"
        )
        return tail + event
