"""Time as the gateway sees it, injectable so tests never sleep to cross a month."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_us(self) -> int:
        """Microseconds since the Unix epoch, UTC."""


class SystemClock:
    def now_us(self) -> int:
        return time.time_ns() // 1_000


class FixedClock:
    """A clock that stands still until moved; for tests."""

    def __init__(self, now_us: int) -> None:
        self.value = now_us

    def now_us(self) -> int:
        return self.value

    def set(self, now_us: int) -> None:
        self.value = now_us
