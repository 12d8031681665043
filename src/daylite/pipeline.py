"""The inference pipeline: authenticate, validate, admit, forward, meter, record."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from daylite.admission import Call, Guard, Hold, admit_all, release_all
from daylite.auth import KeyStore, Principal
from daylite.backends.base import Backend, BackendUnavailable, Timeouts
from daylite.catalog import Catalog, Model, Route
from daylite.clock import Clock
from daylite.errors import (
    ClientClosedError,
    DayliteError,
    PayloadTooLargeError,
    PermissionDeniedError,
    UnknownModelError,
    UpstreamRejectedError,
    status_of,
)
from daylite.metering.estimate import (
    approximate_input,
    approximate_tokens,
    input_bound,
    output_bound,
)
from daylite.metering.ledger import LedgerEntry, LedgerWriter
from daylite.metering.pricing import TokenCount, cost_pico, count_from_usage
from daylite.money import format_usd
from daylite.routing import first_answer
from daylite.settings import Settings
from daylite.streaming import StreamRelay, output_bytes
from daylite.validation import attribution_id, check_payload, parse_payload

log = logging.getLogger(__name__)
access = logging.getLogger("daylite.access")

UPSTREAM_PATHS = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "embeddings": "/embeddings",
}

_REFUSED_STATUSES = {402, 429}


@dataclass(slots=True)
class Draft:
    """What is known of a request so far; becomes its ledger entry at the end."""

    request_id: str
    endpoint: str
    created_at: int
    started: float
    principal: Principal | None = None
    customer: str | None = None
    feature: str | None = None
    model: str | None = None
    stream: bool = False
    holds: list[Hold] = field(default_factory=list)

    def entry(self, status: str, http_status: int, **values: Any) -> LedgerEntry:
        assert self.principal is not None and self.principal.account_id is not None
        return LedgerEntry(
            id=self.request_id,
            account_id=self.principal.account_id,
            key_id=self.principal.key_id,
            endpoint=self.endpoint,
            status=status,
            http_status=http_status,
            created_at=self.created_at,
            customer=self.customer,
            feature=self.feature,
            model=self.model,
            stream=self.stream,
            latency_ms=int((time.perf_counter() - self.started) * 1000),
            **values,
        )


@dataclass(frozen=True, slots=True)
class Metered:
    count: TokenCount
    cost_pico: int


def _failure_status(error: DayliteError) -> str:
    status = status_of(error)
    if isinstance(error, UpstreamRejectedError):
        return "rejected"
    if isinstance(error, ClientClosedError):
        return "abandoned"
    if status in _REFUSED_STATUSES:
        return "refused"
    return "invalid" if status < 500 else "failed"


def _cap_output(payload: dict[str, Any], limit: int) -> dict[str, Any]:
    """Lower any output limit the client set above what the model allows.

    The reservation counts at most the model's limit, so a larger value must
    not reach the backend; a limit the client did not set is not added.
    """
    capped = {
        key: limit
        for key in ("max_tokens", "max_completion_tokens")
        if isinstance(payload.get(key), int) and payload[key] > limit
    }
    return {**payload, **capped} if capped else payload


def _upstream_message(status: int, body: bytes) -> tuple[str, str | None]:
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        return error["message"], code if isinstance(code, str) else None
    return f"The backend rejected the request with status {status}.", None


class Gateway:
    """Serves inference requests; one instance per process, built at start-up."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalog: Catalog,
        backends: Mapping[str, Backend],
        keys: KeyStore,
        ledger: LedgerWriter,
        guards: Sequence[Guard],
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.backends = backends
        self.keys = keys
        self.ledger = ledger
        self.guards = list(guards)
        self.clock = clock
        self.timeouts = Timeouts(
            connect=settings.connect_timeout,
            first_byte=settings.upstream_timeout,
            idle=settings.stream_idle_timeout,
        )

    # -- request intake ---------------------------------------------------

    async def authenticate(self, draft: Draft, header: str | None) -> Principal:
        principal = await self.keys.authenticate(header)
        if principal.account_id is None:
            raise PermissionDeniedError(
                "Operator keys manage the gateway; call models with an account key."
            )
        draft.principal = principal
        return principal

    def read_attribution(self, draft: Draft, headers: Mapping[str, str]) -> None:
        draft.customer = attribution_id(headers, "x-daylite-customer")
        draft.feature = attribution_id(headers, "x-daylite-feature")

    def check_size(self, declared: str | None, received: int) -> None:
        limit = self.settings.max_body_bytes
        if received > limit or (
            declared and declared.isdigit() and int(declared) > limit
        ):
            raise PayloadTooLargeError(
                f"The request body is larger than the limit of {limit} bytes "
                "(DAYLITE_MAX_BODY_BYTES)."
            )

    def prepare(self, draft: Draft, body: bytes) -> Call:
        """Parse and check the body; work out its worst-case cost."""
        payload = parse_payload(body)
        model = self._model(payload)
        draft.model = model.id
        check_payload(draft.endpoint, payload)
        payload = _cap_output(payload, model.max_output_tokens)
        draft.stream = payload.get("stream") is True
        assert draft.principal is not None and draft.principal.account_id
        call = Call(
            request_id=draft.request_id,
            principal=draft.principal,
            account_id=draft.principal.account_id,
            endpoint=draft.endpoint,
            customer=draft.customer,
            feature=draft.feature,
            model=model,
            payload=payload,
            stream=draft.stream,
            created_at=draft.created_at,
        )
        self.bound(call)
        return call

    def bound(self, call: Call) -> None:
        """Set the call's worst-case tokens and cost from its current payload."""
        settings = self.settings
        call.input_bound = input_bound(
            call.payload,
            per_message=settings.message_token_allowance,
            per_image=settings.image_token_allowance,
        )
        call.output_bound = (
            0
            if call.endpoint == "embeddings"
            else output_bound(call.payload, call.model.max_output_tokens)
        )
        price = call.model.price
        call.worst_case_pico = (
            call.input_bound * max(price.input, price.cached_input)
            + call.output_bound * price.output
        )

    def _model(self, payload: dict[str, Any]) -> Model:
        model_id = payload.get("model")
        if not isinstance(model_id, str) or not model_id:
            raise UnknownModelError(
                "'model' is required; GET /v1/models lists the models.", param="model"
            )
        model = self.catalog.get(model_id)
        if model is None:
            known = ", ".join(sorted(self.catalog.models))
            raise UnknownModelError(
                f"The model {model_id!r} does not exist. Available models: {known}.",
                param="model",
            )
        return model

    async def admit(self, draft: Draft, call: Call) -> None:
        draft.holds = await admit_all(self.guards, call)

    # -- forwarding -------------------------------------------------------

    def upstream_body(self, call: Call, route: Route) -> bytes:
        payload = call.payload
        if payload.get("model") != route.upstream_model:
            payload = {**payload, "model": route.upstream_model}
        if call.stream:
            options = payload.get("stream_options") or {}
            # Always ask for usage: a stream priced from a guess is a bug. The
            # client gets the usage chunk only if it asked for it.
            payload = {**payload, "stream_options": {**options, "include_usage": True}}
        return orjson.dumps(payload)

    async def _send(self, call: Call, route: Route) -> Any:
        backend = self.backends[route.backend.name]
        response = await backend.send(
            UPSTREAM_PATHS[call.endpoint],
            self.upstream_body(call, route),
            self.timeouts,
        )
        if response.status >= 400:
            body = await response.read()
            # 401/402/403 are the gateway's own account at the backend, and 429
            # a busy backend: not the client's fault, so another backend may serve.
            if response.status >= 500 or response.status in (401, 402, 403, 408, 429):
                raise BackendUnavailable(f"status {response.status}")
            message, code = _upstream_message(response.status, body)
            raise UpstreamRejectedError(
                response.status, message, code=code, backend=route.backend.name
            )
        return response

    async def complete(self, call: Call) -> tuple[Route, dict[str, Any]]:
        async def attempt(route: Route) -> dict[str, Any]:
            response = await self._send(call, route)
            body = await response.read()
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise BackendUnavailable("answer is not JSON") from None
            if not isinstance(data, dict):
                raise BackendUnavailable("answer is not a JSON object")
            return data

        return await first_answer(call.model.routes, attempt)

    async def open_stream(self, call: Call) -> tuple[Route, StreamRelay]:
        choices = call.payload.get("n") or 1

        async def attempt(route: Route) -> StreamRelay:
            response = await self._send(call, route)
            if "text/event-stream" not in response.content_type:
                await response.aclose()
                raise BackendUnavailable("answer is not an event stream")
            relay = StreamRelay(
                response, choices=choices, idle_timeout=self.timeouts.idle
            )
            try:
                await relay.open()
            except BaseException:
                await relay.aclose()
                raise
            return relay

        return await first_answer(call.model.routes, attempt)

    # -- metering ---------------------------------------------------------

    def meter(self, call: Call, usage: Any, output_bytes: int, chunks: int) -> Metered:
        count = count_from_usage(usage)
        if count is None:
            tokens_in = approximate_input(
                call.payload, per_image=self.settings.image_token_allowance
            )
            if call.endpoint == "embeddings":
                tokens_out = 0
            else:
                tokens_out = max(chunks, approximate_tokens(output_bytes))
            # An estimate never bills past what the request could have used.
            count = TokenCount(
                min(tokens_in, call.input_bound),
                min(tokens_out, call.output_bound),
                counted_by="gateway",
            )
        return Metered(count, cost_pico(count, call.model.price))

    def meter_reply(self, call: Call, data: dict[str, Any]) -> Metered:
        output = 0
        choices = data.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict):
                message = choice.get("message")
                output += output_bytes(message if isinstance(message, dict) else choice)
        return self.meter(call, data.get("usage"), output, 0)

    async def record(self, draft: Draft, entry: LedgerEntry) -> None:
        """Commit ``entry`` with its holds' settlement, then free the holds."""
        try:
            await self.ledger.write(entry, [hold.settle for hold in draft.holds])
        finally:
            await release_all(draft.holds)
            draft.holds = []
        access.info(
            "request",
            extra={
                "endpoint": entry.endpoint,
                "status": entry.http_status,
                "outcome": entry.status,
                "model": entry.model,
                "backend": entry.backend,
                "cost": format_usd(entry.cost_pico),
                "tokens_in": entry.tokens_in,
                "tokens_out": entry.tokens_out,
                "latency_ms": entry.latency_ms,
            },
        )

    async def record_failure(self, draft: Draft, error: DayliteError) -> None:
        if draft.principal is None or draft.principal.account_id is None:
            await release_all(draft.holds)
            access.info(
                "request", extra={"status": status_of(error), "code": error.code}
            )
            return
        entry = draft.entry(
            _failure_status(error),
            status_of(error),
            error_code=error.code,
            backend=getattr(error, "backend", None),
        )
        await self.record(draft, entry)

    def success_entry(
        self, draft: Draft, route: Route, metered: Metered, status: str = "ok"
    ) -> LedgerEntry:
        count = metered.count
        return draft.entry(
            status,
            200,
            backend=route.backend.name,
            tokens_in=count.tokens_in,
            tokens_out=count.tokens_out,
            cached_tokens=count.cached,
            reasoning_tokens=count.reasoning,
            cost_pico=metered.cost_pico,
            counted_by=count.counted_by,
        )
