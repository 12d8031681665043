"""Cost of a request from its token counts and the model's price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from daylite.catalog import Price


@dataclass(frozen=True, slots=True)
class TokenCount:
    """What a request consumed; cached and reasoning are subsets, never extra."""

    tokens_in: int
    tokens_out: int
    cached: int = 0
    reasoning: int = 0
    counted_by: str = "backend"


def cost_pico(count: TokenCount, price: Price) -> int:
    """Exact cost in pico-dollars: tokens times micro-dollars per million."""
    cached = min(count.cached, count.tokens_in)
    fresh = count.tokens_in - cached
    return (
        fresh * price.input
        + cached * price.cached_input
        + (count.tokens_out * price.output)
    )


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return 0
    return value


def count_from_usage(usage: Any) -> TokenCount | None:
    """Read an OpenAI ``usage`` object; None when it carries no token counts.

    ``reasoning_tokens`` are already inside ``completion_tokens`` and
    ``cached_tokens`` inside ``prompt_tokens``, so neither is added again.
    """
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cached = (
        prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
    )
    reasoning = (
        completion_details.get("reasoning_tokens")
        if isinstance(completion_details, dict)
        else 0
    )
    return TokenCount(_int(prompt), _int(completion), _int(cached), _int(reasoning))
