"""The adaptive limit against a modelled ERPNext: W workers, service time S, the rest queued.

The model is closed-loop, as a draining queue is: `limit` postings always in flight,
each taking S * max(1, limit / W) (its own service time plus its share of the queue).
"""

from __future__ import annotations

import random

from edge.shield.limit import AdaptiveLimit


def drive(limit: AdaptiveLimit, workers: int, service: float, postings: int, live: bool = False,
          jitter: float = 0.05, seed: int = 1) -> list[int]:
    rnd = random.Random(seed)
    seen = []
    for _ in range(postings):
        n = limit.limit
        latency = service * max(1.0, n / workers) * (1 + rnd.uniform(-jitter, jitter))
        limit.sample(latency, n, live)
        seen.append(limit.limit)
    return seen


def test_climbs_from_the_lower_bound_and_settles_at_the_knee() -> None:
    for workers in (2, 4, 6):
        limit = AdaptiveLimit(1, 16, 1.0)
        seen = drive(limit, workers, 0.1, 3000)
        tail = seen[-1500:]
        # at the knee most of the time, probing one above it now and then, never far off
        at_knee = sum(1 for n in tail if n == workers) / len(tail)
        assert at_knee > 0.6, (workers, at_knee)
        assert min(tail) >= workers - 1 and max(tail) <= workers + 2, (workers, min(tail), max(tail))


def test_stays_within_its_bounds() -> None:
    low = AdaptiveLimit(3, 5, 1.0)
    seen = drive(low, 1, 0.1, 1000)  # a site of one worker wants 1: the bound says 3
    assert min(seen) == 3
    high = AdaptiveLimit(1, 4, 1.0)
    seen = drive(high, 10, 0.1, 1000)  # a site of ten workers: the bound says 4
    assert max(seen) == 4 and seen[-1] == 4


def test_while_live_calls_are_served_it_only_climbs_back_to_where_it_was() -> None:
    limit = AdaptiveLimit(1, 16, 1.0)
    drive(limit, 4, 0.1, 300, live=True)  # the slow start goes on with live calls: it has not found the knee
    assert limit.limit in (3, 4, 5)
    held = max(n for n, _ in limit.trajectory)
    limit.overload()  # halved, and no longer in the slow start
    assert limit.limit <= held // 2 + 1
    # ERPNext got bigger meanwhile (8 workers): with live calls it climbs back, but never probes past
    # what it held without a queue
    seen = drive(limit, 8, 0.1, 1000, live=True)
    assert max(seen) <= held and seen[-1] >= held - 1, (held, seen[-50:])
    drive(limit, 8, 0.1, 2000, live=False)  # without live calls it finds the new knee
    assert limit.limit >= 7


def test_does_not_grow_when_the_limit_is_not_used() -> None:
    limit = AdaptiveLimit(2, 16, 1.0)
    for _ in range(500):
        limit.sample(0.1, 1, False)  # one posting at a time: room to spare already
    assert limit.limit == 2


def test_overload_halves_and_a_fixed_limit_never_moves() -> None:
    limit = AdaptiveLimit(1, 16, 1.0)
    drive(limit, 8, 0.1, 2000)
    before = limit.limit
    limit.overload()
    assert limit.limit == before // 2
    fixed = AdaptiveLimit(1, 6, 1.0, adaptive=False)
    assert fixed.limit == 6
    drive(fixed, 2, 0.1, 500)
    fixed.overload()
    assert fixed.limit == 6


def test_a_reload_keeps_what_was_learnt_within_the_new_bounds() -> None:
    limit = AdaptiveLimit(1, 16, 1.0)
    drive(limit, 6, 0.1, 2000)
    assert limit.limit >= 5
    limit.configure(1, 4, 1.0, True)
    assert limit.limit == 4
    limit.configure(1, 4, 1.0, False)
    assert limit.limit == 4
    limit.configure(2, 8, 1.0, True)
    assert limit.limit == 2  # adaptive again: it starts from the bottom
