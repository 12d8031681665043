"""Who is calling a management endpoint: an account key, or an operator key."""

from __future__ import annotations

from starlette.requests import Request

from daylite.auth import Principal
from daylite.errors import PermissionDeniedError
from daylite.logs import request_context


async def any_principal(request: Request) -> Principal:
    principal: Principal = await request.app.state.gateway.keys.authenticate(
        request.headers.get("authorization")
    )
    context = request_context.get()
    if context is not None and principal.account_id:
        context["account"] = principal.account_id
    return principal


async def account_principal(request: Request) -> Principal:
    principal = await any_principal(request)
    if principal.account_id is None:
        raise PermissionDeniedError(
            "This endpoint belongs to an account; call it with an account key (dl-...)."
        )
    return principal


async def operator_principal(request: Request) -> Principal:
    principal = await any_principal(request)
    if not principal.is_operator:
        raise PermissionDeniedError(
            "This endpoint is for the operator; use an operator key (dl-op-...)."
        )
    return principal
