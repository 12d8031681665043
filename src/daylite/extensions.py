"""The admission guards and management routes that make up the full product."""

from __future__ import annotations

from starlette.routing import Route

from daylite.admission import GuardFactory


def guard_factories() -> list[GuardFactory]:
    return []


def extra_routes() -> list[Route]:
    return []
