"""Backend order for a model, with failover to the next backend on failure."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from daylite.backends.base import BackendUnavailable
from daylite.catalog import Route
from daylite.errors import UpstreamError, UpstreamTimeoutError

log = logging.getLogger(__name__)

T = TypeVar("T")


async def first_answer(
    routes: Sequence[Route], attempt: Callable[[Route], Awaitable[T]]
) -> tuple[Route, T]:
    """Try ``attempt`` on each route in priority order until one answers.

    Only failures that happen before anything reached the client come here,
    so moving on to the next backend can never duplicate output.
    """
    reasons = []
    all_timeouts = True
    for route in routes:
        try:
            return route, await attempt(route)
        except BackendUnavailable as exc:
            all_timeouts = all_timeouts and exc.timeout
            reasons.append(f"{route.backend.name}: {exc.reason}")
            log.warning(
                "backend failed, trying the next one",
                extra={"backend": route.backend.name, "reason": exc.reason},
            )
    detail = "; ".join(reasons)
    if all_timeouts:
        raise UpstreamTimeoutError(f"Every backend timed out ({detail})")
    raise UpstreamError(f"No backend could serve the request ({detail})")
