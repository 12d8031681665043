"""Buying credits: credit packs, Stripe Checkout, and Stripe's webhook."""

from __future__ import annotations

import logging
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from daylite.api import accounts, credits, keys
from daylite.api.management import read_body, read_json, text_field
from daylite.api.principal import account_principal
from daylite.api.responses import JSONResponse
from daylite.billing.config import CreditPack
from daylite.billing.extension import NAME, BillingExtension
from daylite.errors import InvalidRequestError, ServiceUnavailableError
from daylite.money import format_usd

log = logging.getLogger(__name__)


def _billing(request: Request) -> BillingExtension:
    return cast(BillingExtension, request.app.state.extensions[NAME])


def _present_pack(pack: CreditPack) -> dict[str, Any]:
    return {
        "id": pack.id,
        "object": "credit_pack",
        "name": pack.name,
        "price": format_usd(pack.price_cents * 10**10),
        "currency": "usd",
        "credits": format_usd(pack.credits_pico),
    }


async def list_packs(request: Request) -> Response:
    """``GET /api/packs``: the credit packs on sale."""
    await account_principal(request)
    packs = [_present_pack(pack) for pack in _billing(request).config.packs]
    return JSONResponse({"object": "list", "data": packs, "has_more": False})


def _pack(billing: BillingExtension, payload: dict[str, Any]) -> CreditPack:
    packs = billing.config.packs
    if not packs:
        raise ServiceUnavailableError(
            "No credit packs are configured on this gateway ([[billing.packs]])."
        )
    pack_id = text_field(payload, "pack", required=True, max_length=64)
    pack = billing.config.pack(pack_id or "")
    if pack is None:
        known = ", ".join(item.id for item in packs)
        raise InvalidRequestError(
            f"pack = {pack_id!r} is not on sale; packs: {known} (GET /api/packs).",
            param="pack",
        )
    return pack


async def checkout(request: Request) -> Response:
    """``POST /api/checkout``: a Stripe Checkout session for one credit pack."""
    principal = await account_principal(request)
    billing = _billing(request)
    stripe_checkout = billing.checkout()
    pack = _pack(billing, await read_json(request, ("pack",)))
    assert principal.account_id is not None
    session = await stripe_checkout.create(principal.account_id, pack)
    log.info(
        "checkout session created", extra={"session_id": session.id, "pack": pack.id}
    )
    body = {
        "id": session.id,
        "object": "checkout.session",
        "url": session.url,
        "pack": _present_pack(pack),
    }
    return JSONResponse(body, status_code=201)


async def stripe_webhook(request: Request) -> Response:
    """``POST /api/stripe/webhook``: Stripe's signed events; each credits once."""
    billing = _billing(request)
    processor = billing.webhooks()
    event = processor.verify(
        await read_body(request), request.headers.get("stripe-signature")
    )
    outcome = await processor.apply(event, billing.clock.now_us())
    if outcome.account_id is not None and outcome.snapshot is not None:
        await billing.book.observe(outcome.account_id, outcome.snapshot)
    log.info(
        "stripe event",
        extra={"event_id": event.id, "type": event.type, "outcome": outcome.result},
    )
    return JSONResponse({"received": True, "outcome": outcome.result})


def routes() -> list[BaseRoute]:
    """Accounts (operator), keys and credits (account), checkout and webhook."""
    table: list[tuple[str, Any, list[str]]] = [
        ("/v1/accounts", accounts.create, ["POST"]),
        ("/v1/accounts", accounts.list_all, ["GET"]),
        ("/v1/accounts/{account_id}", accounts.show, ["GET"]),
        ("/v1/accounts/{account_id}", accounts.update, ["PATCH"]),
        ("/v1/accounts/{account_id}/credits", accounts.grant, ["POST"]),
        ("/v1/keys", keys.create, ["POST"]),
        ("/v1/keys", keys.list_keys, ["GET"]),
        ("/v1/keys/{key_id}", keys.revoke, ["DELETE"]),
        ("/v1/credits", credits.get_credits, ["GET"]),
        ("/api/packs", list_packs, ["GET"]),
        ("/api/checkout", checkout, ["POST"]),
        ("/api/stripe/webhook", stripe_webhook, ["POST"]),
    ]
    result: list[BaseRoute] = []
    for path, handler, methods in table:
        result.append(Route(path, handler, methods=methods))
        if path.startswith("/v1/"):
            # The core routes answer with and without a trailing slash; so do these.
            result.append(Route(path + "/", handler, methods=methods))
    return result
