"""The parts of the product beyond the core proxy, and the one list that wires them.

An extension (budgets, usage, billing) may bring an admission guard, a hook
that runs inside every ledger transaction, background work with a start and a
stop, and HTTP routes. Routes are fixed when the app is built; the runtime half
is made in the lifespan, once the database engine exists, and handlers find it
as ``request.app.state.extensions[name]``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.routing import BaseRoute

from daylite.admission import Guard
from daylite.api.billing import routes as billing_routes
from daylite.api.budgets import budget_routes
from daylite.auth import KeyStore
from daylite.billing.extension import billing_extension
from daylite.budgets.extension import create_budgets_extension
from daylite.catalog import Catalog
from daylite.clock import Clock
from daylite.metering.ledger import BatchHook
from daylite.settings import Settings
from daylite.usage.extension import create_usage_extension, usage_routes

if TYPE_CHECKING:
    from daylite.storage.redis import SharedRedis


@dataclass(frozen=True, slots=True)
class Services:
    """What an extension may use; built once per process in the lifespan."""

    engine: AsyncEngine
    settings: Settings
    clock: Clock
    keys: KeyStore
    catalog: Catalog
    config: Mapping[str, Any] = field(default_factory=dict)
    # The Redis all replicas share, when DAYLITE_REDIS_URL is set.
    redis: SharedRedis | None = None


class Extension(Protocol):
    """A part of the product.

    ``ledger_batch_hook(connection, entries)``, when set, runs once per
    committed ledger batch inside that batch's transaction: one statement per
    batch keeps derived tables (spend, debits, rollups) off the hot path.
    """

    name: str
    guard: Guard | None
    ledger_batch_hook: BatchHook | None

    async def start(self) -> None:
        """Begin background work; called once the app is ready to serve."""

    async def stop(self) -> None:
        """Finish background work; called on shutdown."""


ExtensionFactory = Callable[[Services], Extension]


def factories() -> list[ExtensionFactory]:
    """Extensions in admission order: the first guard refuses first."""
    return [create_budgets_extension, create_usage_extension, billing_extension]


def routes() -> list[BaseRoute]:
    return [*budget_routes(), *usage_routes(), *billing_routes()]
