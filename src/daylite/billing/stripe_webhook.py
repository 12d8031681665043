"""Stripe webhooks: verify the signature, then credit each payment exactly once.

Two unique keys make crediting idempotent, both written in the transaction
that changes the balance: the event id (``stripe_events``), so a replayed or
concurrently redelivered event does nothing, and the checkout session
(``stripe_checkouts.paid_at``), so two different events about one payment,
in any order, credit it once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import stripe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from daylite.billing.config import BillingConfig
from daylite.billing.credits import Snapshot, add_credits
from daylite.billing.stripe_checkout import CURRENCY
from daylite.billing.upsert import insert_ignoring_duplicates
from daylite.errors import InvalidRequestError
from daylite.money import MoneyFormatError, usd_to_pico
from daylite.storage.tables import stripe_checkouts, stripe_events

log = logging.getLogger(__name__)

PAYING_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
)


@dataclass(frozen=True, slots=True)
class Payment:
    """A paid checkout session as the event describes it."""

    session_id: str
    account_id: str | None
    pack_id: str | None
    credits_usd: str | None
    amount_cents: int
    currency: str


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    payment: Payment | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an event did: ``credited``, ``duplicate``, ``ignored``, ..."""

    result: str
    account_id: str | None = None
    snapshot: Snapshot | None = None


def verify(payload: bytes, header: str | None, secret: str) -> StripeEvent:
    """Check the ``Stripe-Signature`` header with the library; 400 if it fails."""
    try:
        stripe.Webhook.construct_event(payload, header or "", secret)
    except stripe.SignatureVerificationError as exc:
        raise InvalidRequestError(
            f"The Stripe-Signature header does not verify: {exc.user_message}. "
            "Check that the webhook secret matches this endpoint.",
            param="Stripe-Signature",
        ) from None
    except ValueError:
        raise InvalidRequestError("The webhook body is not a JSON event.") from None
    return parse_event(orjson.loads(payload))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _payment(event_type: str, session: Mapping[str, Any]) -> Payment | None:
    if event_type not in PAYING_EVENTS or session.get("payment_status") != "paid":
        return None
    session_id = _text(session.get("id"))
    if session_id is None:
        raise InvalidRequestError("The checkout session in the event has no id.")
    metadata = session.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    amount = session.get("amount_total")
    return Payment(
        session_id=session_id,
        account_id=_text(metadata.get("account_id")),
        pack_id=_text(metadata.get("pack_id")),
        credits_usd=_text(metadata.get("credits_usd")),
        amount_cents=amount if isinstance(amount, int) else 0,
        currency=_text(session.get("currency")) or CURRENCY,
    )


def parse_event(body: object) -> StripeEvent:
    """The parts of a verified event that matter here."""
    if not isinstance(body, Mapping):
        raise InvalidRequestError("The webhook body is not a JSON object.")
    event_id, event_type = _text(body.get("id")), _text(body.get("type"))
    if event_id is None or event_type is None:
        raise InvalidRequestError("The webhook event has no id or type.")
    data = body.get("data")
    session = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(session, Mapping):
        return StripeEvent(event_id, event_type, None)
    return StripeEvent(event_id, event_type, _payment(event_type, session))


class WebhookProcessor:
    """Applies verified events to the database, each at most once."""

    def __init__(self, config: BillingConfig, secret: str, engine: AsyncEngine) -> None:
        self._config = config
        self._secret = secret
        self._engine = engine

    def verify(self, payload: bytes, header: str | None) -> StripeEvent:
        return verify(payload, header, self._secret)

    async def apply(self, event: StripeEvent, now_us: int) -> Outcome:
        async with self._engine.begin() as connection:
            row = {"id": event.id, "type": event.type, "outcome": "pending"}
            fresh = await insert_ignoring_duplicates(
                connection, stripe_events, {**row, "received_at": now_us}
            )
            if not fresh:
                return Outcome("duplicate")
            outcome = Outcome("ignored")
            if event.payment is not None:
                outcome = await self._pay(connection, event, event.payment, now_us)
            await connection.execute(
                update(stripe_events)
                .where(stripe_events.c.id == event.id)
                .values(outcome=outcome.result)
            )
        return outcome

    async def _pay(
        self,
        connection: AsyncConnection,
        event: StripeEvent,
        payment: Payment,
        now: int,
    ) -> Outcome:
        claimed = await connection.execute(
            update(stripe_checkouts)
            .where(
                stripe_checkouts.c.session_id == payment.session_id,
                stripe_checkouts.c.paid_at.is_(None),
            )
            .values(paid_at=now, paid_event_id=event.id)
            .returning(stripe_checkouts.c.account_id, stripe_checkouts.c.credits_pico)
        )
        row = claimed.first()
        if row is None:
            return await self._pay_unrecorded(connection, event, payment, now)
        return await self._credit(connection, row[0], int(row[1]), payment, now)

    async def _pay_unrecorded(
        self,
        connection: AsyncConnection,
        event: StripeEvent,
        payment: Payment,
        now: int,
    ) -> Outcome:
        """A session this database did not create (e.g. restored from a backup)."""
        known = await connection.execute(
            select(stripe_checkouts.c.session_id).where(
                stripe_checkouts.c.session_id == payment.session_id
            )
        )
        if known.first() is not None:
            return Outcome("already_credited")
        credits = self._credits_of(payment)
        if payment.account_id is None or credits is None:
            log.error(
                "paid Stripe checkout names no account or pack; not credited",
                extra={"event_id": event.id, "session_id": payment.session_id},
            )
            return Outcome("unknown_session")
        row = {
            "session_id": payment.session_id,
            "account_id": payment.account_id,
            "pack_id": payment.pack_id or "",
            "amount_cents": payment.amount_cents,
            "currency": payment.currency[:3],
            "credits_pico": credits,
            "created_at": now,
            "paid_at": now,
            "paid_event_id": event.id,
        }
        if not await insert_ignoring_duplicates(connection, stripe_checkouts, row):
            return Outcome("already_credited")
        return await self._credit(connection, payment.account_id, credits, payment, now)

    def _credits_of(self, payment: Payment) -> int | None:
        if payment.credits_usd is not None:
            try:
                credits = usd_to_pico(payment.credits_usd)
            except MoneyFormatError:
                return None
            return credits if credits > 0 else None
        pack = self._config.pack(payment.pack_id or "")
        return pack.credits_pico if pack is not None else None

    async def _credit(
        self,
        connection: AsyncConnection,
        account_id: str,
        credits: int,
        payment: Payment,
        now: int,
    ) -> Outcome:
        snapshot = await add_credits(
            connection,
            account_id,
            credits,
            kind="purchase",
            at=now,
            reason=f"Stripe checkout, pack {payment.pack_id or '?'}",
            reference=payment.session_id,
        )
        if snapshot is None:
            log.error(
                "paid Stripe checkout names an unknown account; not credited",
                extra={"account": account_id, "session_id": payment.session_id},
            )
            return Outcome("unknown_account")
        return Outcome("credited", account_id, snapshot)
