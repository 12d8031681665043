"""``GET /v1/requests/{id}`` and ``GET /v1/requests``: the calling account's ledger."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from daylite.api.principal import account_principal
from daylite.api.responses import JSONResponse
from daylite.errors import NotFoundError
from daylite.money import format_usd
from daylite.storage.tables import ledger
from daylite.timefmt import iso_from_us
from daylite.usage.listing import (
    RequestFilter,
    decode_cursor,
    encode_cursor,
    list_entries,
    parse_statuses,
)
from daylite.usage.params import parse_id, parse_limit, parse_range, single_values
from daylite.usage.rollups import outcome_of

LIST_PARAMETERS = (
    "customer",
    "feature",
    "model",
    "status",
    "start",
    "end",
    "limit",
    "cursor",
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def present(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "request",
        "created_at": iso_from_us(row.created_at),
        "customer": row.customer,
        "feature": row.feature,
        "model": row.model,
        "backend": row.backend,
        "endpoint": row.endpoint,
        "status": row.status,
        "outcome": outcome_of(row.status),
        "http_status": row.http_status,
        "error_code": row.error_code,
        "stream": bool(row.stream),
        "tokens_in": row.tokens_in,
        "tokens_out": row.tokens_out,
        "cached_tokens": row.cached_tokens,
        "reasoning_tokens": row.reasoning_tokens,
        "cost": format_usd(row.cost_pico),
        "counted_by": row.counted_by,
        "latency_ms": row.latency_ms,
        "key_id": row.key_id,
    }


async def get_request(request: Request) -> Response:
    principal = await account_principal(request)
    request_id = request.path_params["request_id"]
    query = select(ledger).where(
        ledger.c.id == request_id, ledger.c.account_id == principal.account_id
    )
    async with request.app.state.engine.connect() as connection:
        row = (await connection.execute(query)).first()
    if row is None:
        raise NotFoundError(f"No request {request_id!r} in this account.", param="id")
    return JSONResponse(present(row))


async def list_requests(request: Request) -> Response:
    principal = await account_principal(request)
    assert principal.account_id is not None
    values = single_values(request.query_params, LIST_PARAMETERS)
    start, end = parse_range(values)
    flt = RequestFilter(
        principal.account_id,
        customer=parse_id("customer", values.get("customer")),
        feature=parse_id("feature", values.get("feature")),
        model=parse_id("model", values.get("model")),
        statuses=parse_statuses(values.get("status")),
        start=start,
        end=end,
    )
    limit = parse_limit(values.get("limit"), default=DEFAULT_LIMIT, most=MAX_LIMIT)
    after = decode_cursor(values.get("cursor"))
    async with request.app.state.engine.connect() as connection:
        page = await list_entries(connection, flt, limit, after)
    return JSONResponse(
        {
            "object": "list",
            "data": [present(row) for row in page.rows],
            "has_more": page.next is not None,
            "next_cursor": None if page.next is None else encode_cursor(page.next),
        }
    )
