"""Identifiers: time-ordered so that listing by id is listing by time."""

from __future__ import annotations

import random
import time

# Ids are names, not secrets, so a fast non-cryptographic source is enough;
# ``os.urandom`` is a system call on every request of the hot path.
_random = random.Random()


def new_id(prefix: str) -> str:
    """``prefix_`` + 11 hex digits of milliseconds + 13 random hex digits."""
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{millis:011x}{_random.getrandbits(52):013x}"
