"""Full-jitter back-off."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from edge.sync.backoff import full_jitter


@given(st.integers(1, 200), st.floats(0.01, 10), st.floats(0.01, 1000))
def test_waits_stay_between_zero_and_the_capped_exponential(attempt: int, base: float, cap: float) -> None:
    wait = full_jitter(attempt, base, cap)
    assert 0 <= wait <= min(cap, base * 2 ** (attempt - 1)) + 1e-9


def test_the_ceiling_doubles_until_the_cap_and_waits_are_spread() -> None:
    rng = random.Random(7)
    ceilings = [max(full_jitter(n, 2, 300, rng) for _ in range(2000)) for n in range(1, 11)]
    # the largest of 2000 draws is close to each ceiling: 2, 4, 8, ... 256, then 300
    for got, want in zip(ceilings, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300], strict=True):
        assert 0.97 * want <= got <= want
    draws = [full_jitter(3, 2, 300, rng) for _ in range(2000)]
    assert min(draws) < 0.1 and 3.5 < sum(draws) / len(draws) < 4.5  # uniform on [0, 8]: mean 4
