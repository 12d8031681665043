"""``GET /v1/requests/{id}``: one ledger entry of the calling account."""

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
