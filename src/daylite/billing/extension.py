"""The billing extension: credit guard, credit book, Stripe checkout and webhook."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from daylite.admission import Guard
from daylite.billing.book import CreditBook, Loaded, Loader, LocalCreditBook
from daylite.billing.config import BillingConfig, load_billing_config
from daylite.billing.credits import Snapshot, add_credits, read_credits
from daylite.billing.guard import CreditGuard
from daylite.billing.plans import free_used
from daylite.billing.settlement import Settler
from daylite.clock import Clock
from daylite.errors import ServiceUnavailableError
from daylite.metering.ledger import BatchHook

if TYPE_CHECKING:
    from daylite.billing.stripe_checkout import StripeCheckout
    from daylite.billing.stripe_webhook import WebhookProcessor
    from daylite.extensions import Services

log = logging.getLogger(__name__)

NAME = "billing"


def account_loader(engine: AsyncEngine) -> Loader:
    async def load(account_id: str, period: str) -> Loaded:
        async with engine.connect() as connection:
            credits = await read_credits(connection, account_id)
            used = await free_used(connection, account_id, period)
        if credits is None:
            # A key whose account is gone can spend nothing.
            return Loaded("pro", Snapshot(0, 0), 0)
        return Loaded(credits.plan, credits.snapshot, used)

    return load


class BillingExtension:
    """Wired once per process; handlers reach it as ``extensions["billing"]``."""

    name = NAME

    def __init__(
        self, config: BillingConfig, engine: AsyncEngine, clock: Clock, ttl: float
    ) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.book: CreditBook = LocalCreditBook(
            account_loader(engine), ttl=ttl, refresh_seconds=config.refresh_seconds
        )
        self.settler = Settler()
        # Holds hand their claims to the settler; this hook applies them all in
        # the ledger batch's own transaction.
        self.ledger_batch_hook: BatchHook | None = self.settler.apply
        self.guard: Guard | None = CreditGuard(self.book, self.settler)
        self._checkout: StripeCheckout | None = None
        self._webhooks: WebhookProcessor | None = None

    async def start(self) -> None:
        config = self.config
        if config.stripe_secret_key is None and config.stripe_webhook_secret is None:
            return
        try:
            from daylite.billing.stripe_checkout import StripeCheckout
            from daylite.billing.stripe_webhook import WebhookProcessor
        except ImportError:
            log.error("Stripe is configured but the stripe package is not installed")
            return
        if config.stripe_secret_key is not None:
            self._checkout = StripeCheckout(
                config, config.stripe_secret_key, self.engine, self.clock
            )
        if config.stripe_webhook_secret is not None:
            self._webhooks = WebhookProcessor(
                config, config.stripe_webhook_secret, self.engine
            )

    async def stop(self) -> None:
        if self._checkout is not None:
            await self._checkout.close()

    async def grant(
        self, account_id: str, amount_pico: int, reason: str, reference: str, at: int
    ) -> Snapshot | None:
        """Add operator credits; None if the account does not exist."""
        async with self.engine.begin() as connection:
            snapshot = await add_credits(
                connection,
                account_id,
                amount_pico,
                kind="grant",
                at=at,
                reason=reason,
                reference=reference,
            )
        if snapshot is not None:
            await self.book.observe(account_id, snapshot)
        return snapshot

    async def plan_changed(self, account_id: str) -> None:
        await self.book.forget(account_id)

    def checkout(self) -> StripeCheckout:
        if self._checkout is None:
            raise ServiceUnavailableError(
                "Buying credits is not configured on this gateway: the operator "
                "must set DAYLITE_STRIPE_SECRET_KEY (and the stripe package must "
                "be installed)."
            )
        return self._checkout

    def webhooks(self) -> WebhookProcessor:
        if self._webhooks is None:
            raise ServiceUnavailableError(
                "Stripe webhooks are not configured on this gateway: the operator "
                "must set DAYLITE_STRIPE_WEBHOOK_SECRET (and the stripe package "
                "must be installed)."
            )
        return self._webhooks


def billing_extension(services: Services) -> BillingExtension:
    """The factory registered in ``daylite.extensions.factories()``."""
    table = services.config.get("billing", {})
    config = load_billing_config(table, os.environ)
    ttl = services.settings.reservation_ttl
    extension = BillingExtension(config, services.engine, services.clock, ttl)
    if services.redis is not None:
        # Replicas share one book in Redis (DAYLITE_REDIS_URL).
        from daylite.billing.redis_book import RedisCreditBook

        extension.book = RedisCreditBook(
            services.redis,
            account_loader(services.engine),
            ttl=ttl,
            refresh_seconds=config.refresh_seconds,
        )
        extension.guard = CreditGuard(extension.book, extension.settler)
    return extension
