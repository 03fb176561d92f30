"""Exponential back-off with full jitter (AWS Architecture Blog, "Exponential
Backoff And Jitter"): retry n waits a uniformly random time between 0 and
min(cap, base * 2^(n-1)), so tills that failed together do not retry together."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after the `attempt`-th failed attempt (1-based)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))
    return (rng or random).uniform(0.0, ceiling)
