"""Stripe Checkout sessions for credit packs, created with the official library.

The session carries the account and pack in its metadata and is recorded in
``stripe_checkouts`` with the credits it sells, so the webhook credits what
was bought even if the operator changes the pack later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.billing.config import BillingConfig, CreditPack
from daylite.clock import Clock
from daylite.errors import UpstreamError
from daylite.money import format_usd
from daylite.storage.tables import stripe_checkouts

if TYPE_CHECKING:
    from stripe._base_address import BaseAddresses
    from stripe.params.checkout._session_create_params import SessionCreateParams

log = logging.getLogger(__name__)

CURRENCY = "usd"
_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    id: str
    url: str
    pack: CreditPack


def session_params(
    account_id: str, pack: CreditPack, config: BillingConfig
) -> dict[str, Any]:
    """The Checkout Session Stripe is asked to create for one pack."""
    metadata = {
        "account_id": account_id,
        "pack_id": pack.id,
        "credits_usd": format_usd(pack.credits_pico),
    }
    return {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": CURRENCY,
                    "unit_amount": pack.price_cents,
                    "product_data": {
                        "name": f"Daylite credits: {pack.name}",
                        "description": (
                            f"{format_usd(pack.credits_pico)} USD of gateway credits"
                        ),
                    },
                },
            }
        ],
        "success_url": config.success_url,
        "cancel_url": config.cancel_url,
        "client_reference_id": account_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }


class StripeCheckout:
    """Creates Checkout sessions; one per process, built when keys are configured."""

    def __init__(
        self, config: BillingConfig, secret_key: str, engine: AsyncEngine, clock: Clock
    ) -> None:
        self._config = config
        self._engine = engine
        self._clock = clock
        self._http = stripe.HTTPXClient(timeout=_TIMEOUT_S)
        addresses: BaseAddresses = {}
        if config.stripe_api_base:
            addresses["api"] = config.stripe_api_base
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses=addresses,
            http_client=self._http,
            max_network_retries=2,
        )

    async def create(self, account_id: str, pack: CreditPack) -> CheckoutSession:
        params = session_params(account_id, pack, self._config)
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                cast("SessionCreateParams", params)
            )
        except stripe.StripeError as exc:
            log.error(
                "Stripe refused to create a checkout session",
                extra={"stripe_error": type(exc).__name__, "status": exc.http_status},
            )
            raise UpstreamError(
                "Stripe could not create the checkout session "
                f"({type(exc).__name__}: {exc.user_message or 'no message'}); "
                "try again later."
            ) from None
        if not session.url:
            raise UpstreamError("Stripe returned a checkout session without a URL.")
        await self._record(session.id, account_id, pack)
        return CheckoutSession(session.id, session.url, pack)

    async def _record(self, session_id: str, account_id: str, pack: CreditPack) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                stripe_checkouts.insert().values(
                    session_id=session_id,
                    account_id=account_id,
                    pack_id=pack.id,
                    amount_cents=pack.price_cents,
                    currency=CURRENCY,
                    credits_pico=pack.credits_pico,
                    created_at=self._clock.now_us(),
                )
            )

    async def close(self) -> None:
        # The library leaves this method unannotated.
        await self._http.close_async()  # type: ignore[no-untyped-call]
