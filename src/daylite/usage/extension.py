"""The usage extension: keeps the hourly rollups and serves the usage routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Route

from daylite.admission import Guard
from daylite.api.requests import list_requests
from daylite.api.usage import get_usage
from daylite.metering.ledger import BatchHook
from daylite.usage.rollups import add_to_rollups

if TYPE_CHECKING:
    from daylite.extensions import Services

NAME = "usage"


class UsageExtension:
    """No guard and no background work: just the rollups, kept per ledger batch."""

    name = NAME

    def __init__(self) -> None:
        self.guard: Guard | None = None
        self.ledger_batch_hook: BatchHook | None = add_to_rollups

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def create_usage_extension(services: Services) -> UsageExtension:
    return UsageExtension()


def usage_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for path, handler in (("/v1/usage", get_usage), ("/v1/requests", list_requests)):
        routes.append(Route(path, handler, methods=["GET"]))
        # Clients often add a trailing slash; the same handler answers both.
        routes.append(Route(path + "/", handler, methods=["GET"]))
    return routes
