"""Device status lookups with a short in-process cache.

The JWT plugin asks for a device on every request; the store is the truth, but
a status may be cached for at most `gateway.device_cache_ttl` seconds (5 s max)
so that a block from another process takes effect quickly without a store
round-trip per request.
"""

from __future__ import annotations

import time

from edge.store.base import Device, Store


class DeviceDirectory:
    """Cached read-through view of devices in the store."""

    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Device | None]] = {}

    async def get(self, tenant: str, device_id: str, generation: int = 0) -> Device | None:
        """The device record, at most `ttl` seconds old.

        A token newer than the cached record (`generation` above the cached one)
        means the device re-registered through another process: read the store
        again rather than refuse a fresh token for up to `ttl` seconds.
        """
        key = (tenant, device_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now and (hit[1] is None or hit[1].generation >= generation):
            return hit[1]
        device = await self._store.get_device(tenant, device_id)
        if self._ttl > 0:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = (now + self._ttl, device)
        return device

    def forget(self, tenant: str, device_id: str) -> None:
        """Drop a cached entry after this process changed the device."""
        self._cache.pop((tenant, device_id), None)
