"""The in-process moving window behind `memory://`, driven by limits' own strategy."""

from __future__ import annotations

import asyncio
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter

from edge.ratelimit_storage import LocalMovingWindow, rate_limit_storage


async def test_moving_window_allows_exactly_the_limit_then_slides() -> None:
    storage = LocalMovingWindow()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/second")
    assert [await limiter.hit(item, "shop1", "d1") for _ in range(4)] == [True, True, True, False]
    stats = await limiter.get_window_stats(item, "shop1", "d1")
    assert stats.remaining == 0 and 0 < stats.reset_time - time.time() <= 1
    assert await limiter.hit(item, "shop1", "d2")  # other keys are independent
    await asyncio.sleep(1.05)
    assert await limiter.hit(item, "shop1", "d1")  # the oldest hits left the window
    assert (await limiter.get_window_stats(item, "shop1", "d1")).remaining == 2


async def test_idle_keys_are_forgotten() -> None:
    storage = LocalMovingWindow()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("5/second")
    for i in range(100):
        await limiter.hit(item, "shop1", f"d{i}")
    assert len(storage._hits) == 100
    await asyncio.sleep(1.05)
    await limiter.hit(item, "shop1", "fresh")  # a touch after a window triggers the sweep
    assert set(storage._hits) == {item.key_for("shop1", "fresh")}


def test_storage_by_url() -> None:
    assert isinstance(rate_limit_storage("memory://"), LocalMovingWindow)
    assert type(rate_limit_storage("redis://127.0.0.1:6379/15")).__name__ == "RedisStorage"
