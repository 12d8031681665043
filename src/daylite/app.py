"""Build the ASGI application: routes, error handling and lifespan wiring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from daylite import extensions
from daylite.api import health, inference, models, requests
from daylite.api.responses import error_response
from daylite.auth import KeyStore
from daylite.backends.base import Backend
from daylite.backends.openai_compat import OpenAICompatBackend
from daylite.backends.simulated import SimulatedBackend
from daylite.catalog import SIMULATED, Catalog
from daylite.clock import Clock, SystemClock
from daylite.errors import (
    DayliteError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
)
from daylite.extensions import Extension, ExtensionFactory, Services
from daylite.ids import new_id
from daylite.logs import request_context
from daylite.metering.ledger import LedgerWriter
from daylite.pipeline import Gateway
from daylite.scaleout import start_shared
from daylite.settings import Settings
from daylite.storage.db import create_engine

log = logging.getLogger(__name__)


def _backends(catalog: Catalog) -> dict[str, Backend]:
    backends: dict[str, Backend] = {}
    for model in catalog.models.values():
        for route in model.routes:
            name = route.backend.name
            if name in backends:
                continue
            if name == SIMULATED:
                backends[name] = SimulatedBackend()
            else:
                backends[name] = OpenAICompatBackend(route.backend)
    return backends


def _inference(endpoint: str) -> Callable[[Request], Any]:
    async def endpoint_handler(request: Request) -> Response:
        return await inference.handle(request, endpoint)

    return endpoint_handler


def _routes() -> list[Route]:
    table: list[tuple[str, Any, list[str]]] = [
        ("/v1/chat/completions", _inference("chat"), ["POST"]),
        ("/v1/completions", _inference("completions"), ["POST"]),
        ("/v1/embeddings", _inference("embeddings"), ["POST"]),
        ("/v1/models", models.list_models, ["GET"]),
        ("/v1/models/{model_id:path}", models.get_model, ["GET"]),
        ("/v1/requests/{request_id}", requests.get_request, ["GET"]),
        ("/healthz", health.healthz, ["GET"]),
        ("/readyz", health.readyz, ["GET"]),
    ]
    # Inference POSTs never get here (InferenceFastPath serves them); their
    # routes stay so that other methods on those paths get a 405.
    return [Route(path, handler, methods=methods) for path, handler, methods in table]


async def _daylite_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DayliteError)
    context = request_context.get() or {}
    return error_response(exc, context.get("request_id"))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error: DayliteError = NotFoundError(
            f"Unknown route {request.method} {request.url.path}; "
            "the API lives under /v1 (see the README)."
        )
    elif exc.status_code == 405:
        error = MethodNotAllowedError(
            f"Method {request.method} is not allowed on {request.url.path}."
        )
        return error_response(error, extra=dict(exc.headers or {}))
    else:
        error = InvalidRequestError(str(exc.detail))
    return error_response(error)


async def _unexpected(request: Request, exc: Exception) -> Response:
    # Logged once, by InferenceFastPath, with the request id.
    return error_response(DayliteError("The gateway failed unexpectedly."))


def build_app(
    settings: Settings,
    catalog: Catalog,
    *,
    clock: Clock | None = None,
    factories: Sequence[ExtensionFactory] | None = None,
    config: Mapping[str, Any] | None = None,
) -> InferenceFastPath:
    """The whole product; ``factories`` defaults to every extension there is."""
    clock = clock or SystemClock()
    if factories is None:
        factories = extensions.factories()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        writer = LedgerWriter(engine)
        writer.start()
        keys = KeyStore(engine, clock)
        backends = _backends(catalog)
        shared = await start_shared(settings, engine, keys)
        services = Services(
            engine, settings, clock, keys, catalog, config or {}, shared.redis
        )
        parts: list[Extension] = [factory(services) for factory in factories]
        app.state.extensions = {part.name: part for part in parts}
        app.state.engine = engine
        app.state.clock = clock
        app.state.settings = settings
        app.state.gateway = Gateway(
            settings=settings,
            catalog=catalog,
            backends=backends,
            keys=keys,
            ledger=writer,
            guards=[part.guard for part in parts if part.guard is not None],
            clock=clock,
        )
        writer.batch_hooks = [
            part.ledger_batch_hook for part in parts if part.ledger_batch_hook
        ]
        for part in parts:
            await part.start()
        shared.start_reconciler()
        flusher = asyncio.create_task(_flush_last_used(keys))
        try:
            yield
        finally:
            flusher.cancel()
            for part in reversed(parts):
                await part.stop()
            await shared.stop()
            await writer.stop()
            await keys.flush_last_used()
            for backend in backends.values():
                await backend.close()
            await engine.dispose()

    app = Starlette(
        routes=[*_routes(), *extensions.routes()],
        lifespan=lifespan,
        exception_handlers={
            DayliteError: _daylite_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    return InferenceFastPath(app)


_INFERENCE_PATHS = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}


class InferenceFastPath:
    """The outermost layer: path tidying, request ids, and the inference fast path.

    A trailing slash is dropped from every path, so each route answers with
    and without one. Every response carries ``X-Daylite-Request-Id``. Inference
    POSTs go straight to their handler: it renders every error itself, so the
    router and the middleware stack would only add work to the hottest path
    (profiles showed them at about a fifth of the CPU per request). Everything
    else, lifespan included, goes to the Starlette app.
    """

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope["path"] = path = path.rstrip("/") or "/"
        endpoint = _INFERENCE_PATHS.get(path) if scope["method"] == "POST" else None
        if endpoint is not None:
            scope["app"] = self.app
            response = await inference.handle(Request(scope, receive), endpoint)
            await response(scope, receive, send)
            return
        request_id = new_id("req")
        token = request_context.set({"request_id": request_id})
        header = (b"x-daylite-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(name == header[0] for name, _ in headers):
                    headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Starlette has already answered 500 in OpenAI's shape and re-raises
            # for the server to log; logging it here instead keeps the client's
            # keep-alive connection open rather than having the server reset it.
            log.exception("unhandled error in a management route")
        finally:
            request_context.reset(token)


async def _flush_last_used(keys: KeyStore) -> None:
    while True:
        await asyncio.sleep(5)
        try:
            await keys.flush_last_used()
        except Exception:
            log.exception("could not record key last-use times")
