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


# No single request has ever used a billion tokens; a count beyond it is a
# backend bug, and believing it would bill nonsense (or overflow a column).
MAX_TOKENS = 10**9


def _count(value: Any) -> int | None:
    """A token count as a backend should send it, or None if it is not one."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 <= value <= MAX_TOKENS else None


def _int(value: Any) -> int:
    return _count(value) or 0


def count_from_usage(usage: Any) -> TokenCount | None:
    """Read an OpenAI ``usage`` object; None when it carries no token counts.

    ``reasoning_tokens`` are already inside ``completion_tokens`` and
    ``cached_tokens`` inside ``prompt_tokens``, so neither is added again.
    """
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage.get("prompt_tokens", usage.get("input_tokens", 0)))
    completion = _count(usage.get("completion_tokens", usage.get("output_tokens", 0)))
    if (
        prompt is None
        or completion is None
        or (
            "prompt_tokens" not in usage
            and "completion_tokens" not in usage
            and "input_tokens" not in usage
            and "output_tokens" not in usage
        )
    ):
        # Counts that are missing or not whole numbers: the gateway counts.
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
    return TokenCount(prompt, completion, _int(cached), _int(reasoning))
