"""Account API for keys: create (secret shown once), list, revoke.

A listing shows a key's public prefix and its use, never the secret or its
hash. Revocation goes through the ``KeyStore``, which drops the key from its
cache at once, so the key's very next request is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from daylite.api.management import read_json, text_field
from daylite.api.principal import account_principal
from daylite.api.responses import JSONResponse
from daylite.auth import KeyStore
from daylite.errors import NotFoundError
from daylite.storage.tables import api_keys
from daylite.timefmt import iso_from_us

MAX_NAME = 200


def _present(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "api_key",
        "name": row.name,
        "prefix": row.prefix,
        "created_at": iso_from_us(row.created_at),
        "last_used_at": iso_from_us(row.last_used_at) if row.last_used_at else None,
    }


async def create(request: Request) -> Response:
    """``POST /v1/keys``: the only response that ever carries the secret."""
    principal = await account_principal(request)
    payload = await read_json(request, ("name",), optional=True)
    name = text_field(payload, "name", required=False, max_length=MAX_NAME) or ""
    keys: KeyStore = request.app.state.gateway.keys
    issued = await keys.issue(principal.account_id, name)
    query = select(api_keys).where(api_keys.c.id == issued.id)
    async with request.app.state.engine.connect() as connection:
        row = (await connection.execute(query)).one()
    return JSONResponse({**_present(row), "secret": issued.secret}, status_code=201)


async def list_keys(request: Request) -> Response:
    """``GET /v1/keys``: the account's live keys, oldest first."""
    principal = await account_principal(request)
    keys: KeyStore = request.app.state.gateway.keys
    # Last-use times are buffered in memory; write them so the list is current.
    await keys.flush_last_used()
    query = (
        select(api_keys)
        .where(
            api_keys.c.account_id == principal.account_id,
            api_keys.c.revoked_at.is_(None),
        )
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    async with request.app.state.engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    data = [_present(row) for row in rows]
    return JSONResponse({"object": "list", "data": data, "has_more": False})


async def revoke(request: Request) -> Response:
    """``DELETE /v1/keys/{id}``: refused from the key's very next request on."""
    principal = await account_principal(request)
    key_id = request.path_params["key_id"]
    keys: KeyStore = request.app.state.gateway.keys
    if not await keys.revoke(key_id, principal.account_id):
        raise NotFoundError(f"No live key {key_id!r} in this account.", param="id")
    return JSONResponse({"id": key_id, "object": "api_key", "deleted": True})
