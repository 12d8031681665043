"""Operator API for accounts: create, list, show, change plan, grant credits.

Only operator keys (``dl-op-``) may call these; account keys get 403.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from daylite.accounts import create_account
from daylite.api.credits import present_entry, present_status
from daylite.api.management import listing, page_of, read_json, text_field
from daylite.api.principal import operator_principal
from daylite.api.responses import JSONResponse
from daylite.billing.config import MAX_AMOUNT_PICO
from daylite.billing.credits import HistoryEntry
from daylite.billing.extension import NAME, BillingExtension
from daylite.billing.plans import PLANS, set_plan
from daylite.billing.status import credit_status
from daylite.errors import InvalidRequestError, NotFoundError
from daylite.money import MoneyFormatError, usd_to_pico
from daylite.storage.tables import accounts
from daylite.timefmt import iso_from_us

MAX_REASON = 500


def _billing(request: Request) -> BillingExtension:
    return cast(BillingExtension, request.app.state.extensions[NAME])


async def _present(request: Request, account_id: str) -> dict[str, Any]:
    billing = _billing(request)
    async with billing.engine.connect() as connection:
        row = (
            await connection.execute(
                select(accounts).where(accounts.c.id == account_id)
            )
        ).first()
        status = await credit_status(connection, account_id, billing.clock.now_us())
    if row is None or status is None:
        raise NotFoundError(f"No account {account_id!r}.", param="id")
    return {
        "id": row.id,
        "object": "account",
        "name": row.name,
        "created_at": iso_from_us(row.created_at),
        **present_status(status),
    }


def _plan(payload: dict[str, Any], default: str | None) -> str | None:
    plan = payload.get("plan", default)
    if plan is not None and (not isinstance(plan, str) or plan not in PLANS):
        raise InvalidRequestError(
            f"plan = {plan!r} is not a plan; plans: {', '.join(PLANS)}.", param="plan"
        )
    return plan


async def create(request: Request) -> Response:
    """``POST /v1/accounts``: a new account and its first key, shown once."""
    await operator_principal(request)
    payload = await read_json(request, ("name", "plan"))
    name = text_field(payload, "name", required=True, max_length=200)
    plan = _plan(payload, "developer")
    assert name is not None and plan is not None
    billing = _billing(request)
    account = await create_account(billing.engine, billing.clock, name, plan)
    issued = await request.app.state.gateway.keys.issue(account.id, "first key")
    body = await _present(request, account.id)
    body["key"] = {"id": issued.id, "prefix": issued.prefix, "secret": issued.secret}
    return JSONResponse(body, status_code=201)


async def list_all(request: Request) -> Response:
    """``GET /v1/accounts``: newest first, ``limit`` and ``after`` to page."""
    await operator_principal(request)
    page = page_of(request)
    query = select(accounts.c.id).order_by(accounts.c.id.desc()).limit(page.limit + 1)
    if page.after is not None:
        query = query.where(accounts.c.id < page.after)
    async with _billing(request).engine.connect() as connection:
        ids = list((await connection.execute(query)).scalars())
    items = [await _present(request, account_id) for account_id in ids[: page.limit]]
    return JSONResponse(listing(items, len(ids) > page.limit))


async def show(request: Request) -> Response:
    """``GET /v1/accounts/{id}``."""
    await operator_principal(request)
    return JSONResponse(await _present(request, request.path_params["account_id"]))


async def update(request: Request) -> Response:
    """``PATCH /v1/accounts/{id}``: change the plan."""
    await operator_principal(request)
    account_id = request.path_params["account_id"]
    plan = _plan(await read_json(request, ("plan",)), None)
    if plan is None:
        raise InvalidRequestError("Send the new 'plan'.", param="plan")
    billing = _billing(request)
    async with billing.engine.begin() as connection:
        found = await set_plan(connection, account_id, plan)
    if not found:
        raise NotFoundError(f"No account {account_id!r}.", param="id")
    await billing.plan_changed(account_id)
    return JSONResponse(await _present(request, account_id))


def _amount(payload: dict[str, Any]) -> int:
    raw = payload.get("amount_usd")
    try:
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            raise MoneyFormatError("not a number")
        amount = usd_to_pico(raw)
    except MoneyFormatError:
        raise InvalidRequestError(
            f'amount_usd = {raw!r} must be a decimal amount of USD such as "10.00".',
            param="amount_usd",
        ) from None
    if not 0 < amount <= MAX_AMOUNT_PICO:
        raise InvalidRequestError(
            f"amount_usd = {raw!r} must be more than 0 and at most 1000000.",
            param="amount_usd",
        )
    return amount


async def grant(request: Request) -> Response:
    """``POST /v1/accounts/{id}/credits``: add credits, with a reason."""
    principal = await operator_principal(request)
    account_id = request.path_params["account_id"]
    payload = await read_json(request, ("amount_usd", "reason"))
    amount = _amount(payload)
    reason = text_field(payload, "reason", required=True, max_length=MAX_REASON)
    assert reason is not None
    billing = _billing(request)
    at = billing.clock.now_us()
    reference = f"operator key {principal.key_id}"
    snapshot = await billing.grant(account_id, amount, reason, reference, at)
    if snapshot is None:
        raise NotFoundError(f"No account {account_id!r}.", param="id")
    entry = HistoryEntry(
        seq=snapshot.seq,
        kind="grant",
        amount_pico=amount,
        balance_after_pico=snapshot.balance_pico,
        shortfall_pico=0,
        request_id=None,
        reference=reference,
        reason=reason,
        created_at=at,
    )
    return JSONResponse(
        {**present_entry(entry), "account_id": account_id}, status_code=201
    )
