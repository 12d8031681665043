"""``GET /v1/credits``: balance, plan, free requests left and the credit history."""

from __future__ import annotations

from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from daylite.api.management import listing, page_of
from daylite.api.principal import account_principal
from daylite.api.responses import JSONResponse
from daylite.billing.credits import KINDS, HistoryEntry, read_history
from daylite.billing.extension import NAME, BillingExtension
from daylite.billing.status import CreditStatus, credit_status
from daylite.errors import InvalidRequestError, NotFoundError
from daylite.money import format_usd
from daylite.timefmt import iso_from_us


def present_status(status: CreditStatus) -> dict[str, Any]:
    return {
        "plan": status.plan,
        "balance": format_usd(status.balance_pico),
        "currency": "usd",
        "free_requests": {
            "included": status.free_included,
            "used": min(status.free_used, status.free_included),
            "remaining": status.free_remaining,
            "period": status.period,
            "period_start": iso_from_us(status.period_start),
            "period_end": iso_from_us(status.period_end),
        },
    }


def present_entry(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.seq,
        "object": "credit_entry",
        "kind": entry.kind,
        "amount": format_usd(entry.amount_pico),
        "balance_after": format_usd(entry.balance_after_pico),
        "shortfall": format_usd(entry.shortfall_pico),
        "request_id": entry.request_id,
        "reference": entry.reference,
        "reason": entry.reason,
        "created_at": iso_from_us(entry.created_at),
    }


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidRequestError(
            f"after = {raw!r} must be the id of a history entry (a whole number).",
            param="after",
        )
    return int(raw)


def _kind(request: Request) -> str | None:
    kind = request.query_params.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidRequestError(
            f"kind = {kind!r} is not a kind of entry; kinds: {', '.join(KINDS)}.",
            param="kind",
        )
    return kind


async def get_credits(request: Request) -> Response:
    principal = await account_principal(request)
    account_id = principal.account_id
    assert account_id is not None
    page = page_of(request)
    before, kind = _cursor(page.after), _kind(request)
    billing = cast(BillingExtension, request.app.state.extensions[NAME])
    async with billing.engine.connect() as connection:
        status = await credit_status(connection, account_id, billing.clock.now_us())
        entries = await read_history(
            connection, account_id, limit=page.limit + 1, before=before, kind=kind
        )
    if status is None:
        raise NotFoundError("The account of this key no longer exists.")
    reserved = await billing.book.reserved_pico(account_id)
    items = [present_entry(entry) for entry in entries[: page.limit]]
    body = {
        "object": "credits",
        "account_id": account_id,
        **present_status(status),
        "reserved": format_usd(reserved),
        "available": format_usd(max(0, status.balance_pico - reserved)),
        "history": listing(items, len(entries) > page.limit),
    }
    return JSONResponse(body)
