"""Identifiers: time-ordered so that listing by id is listing by time."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, rest = divmod(number, 36)
        digits.append(_ALPHABET[rest])
    return "".join(reversed(digits))


def new_id(prefix: str) -> str:
    """``prefix_`` + 10 chars of milliseconds + 12 random chars."""
    millis = time.time_ns() // 1_000_000
    noise = int.from_bytes(os.urandom(8), "big")
    return f"{prefix}_{_base36(millis, 10)}{_base36(noise, 12)}"
