"""Counter storage for the rate-limit plugin, chosen by `gateway.rate_limit_storage`.

`redis://` uses the `limits` library's Redis storage as it is. `memory://`
uses `LocalMovingWindow`, an in-process implementation of the same `limits`
storage interface, driven by the same `MovingWindowRateLimiter`. The stock
`limits.aio.storage.MemoryStorage` could not be kept on the request path: it
re-runs an expiry task after every hit that takes an asyncio lock and makes one
`asyncio.to_thread` hop *per key* per pass, and it prepends to a Python list
per hit. Under the proxy benchmark (bench/proxy.py) that was ~40 µs of CPU per
request on a single core, rising as the window filled. Here each key is a deque
of hit times, pruned when the key is touched, and idle keys are swept at most
once a window, inline: no task, no thread, no lock (the event loop is the lock).
"""

from __future__ import annotations

import time
from collections import deque
from typing import cast

from limits.aio.storage import MovingWindowSupport, Storage
from limits.storage import storage_from_string


class LocalMovingWindow(Storage, MovingWindowSupport):
    """Moving-window counters in this process's memory (single event loop)."""

    STORAGE_SCHEME = ["async+pos-edge-local"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: float | str | bool) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = 0.0
        self._longest = 1.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _window(self, key: str, expiry: float, now: float) -> deque[float]:
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque()
        cutoff = now - expiry
        while hits and hits[0] <= cutoff:
            hits.popleft()
        self._longest = max(self._longest, expiry)
        return hits

    def _sweep(self, now: float) -> None:
        # Forget keys whose newest hit left the longest window seen: memory stays
        # proportional to active devices, not to every device ever seen.
        cutoff = now - self._longest
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= cutoff]:
            del self._hits[key]
        self._next_sweep = now + self._longest

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Record `amount` hits if the window has room for them."""
        now = time.time()
        hits = self._window(key, expiry, now)
        if len(hits) + amount > limit:
            return False
        hits.extend([now] * amount)
        return True

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        """(time of the oldest hit in the window, hits in the window)."""
        now = time.time()
        hits = self._window(key, expiry, now)
        return (hits[0] if hits else now), len(hits)

    async def clear(self, key: str) -> None:
        self._hits.pop(key, None)

    async def reset(self) -> int | None:
        n = len(self._hits)
        self._hits.clear()
        return n

    async def check(self) -> bool:
        return True

    # Counter operations belong to the fixed-window strategies, which pos-edge does not use.
    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        raise NotImplementedError("LocalMovingWindow supports the moving-window strategy only")

    async def get(self, key: str) -> int:
        raise NotImplementedError("LocalMovingWindow supports the moving-window strategy only")

    async def get_expiry(self, key: str) -> float:
        raise NotImplementedError("LocalMovingWindow supports the moving-window strategy only")


def rate_limit_storage(url: str) -> Storage:
    """The `limits` storage for `gateway.rate_limit_storage`."""
    if url.startswith("memory://"):
        return LocalMovingWindow()
    # Short timeouts: the limiter fails open, so a dead Redis must fail fast.
    # "async+" selects limits.aio's storages, which the union in its signature does not express
    return cast(Storage, storage_from_string(
        "async+" + url, implementation="redispy", socket_connect_timeout=0.5, socket_timeout=0.5
    ))
