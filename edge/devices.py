"""Device status lookups with a short in-process cache.

The JWT plugin asks for a device on every request; the store is the truth, but
a status may be cached for at most `gateway.device_cache_ttl` seconds (5 s max)
so that a block from another process takes effect quickly without a store
round-trip per request.
"""

from __future__ import annotations

import asyncio
import time

from edge.store.base import Device, Store


class DeviceDirectory:
    """Cached read-through view of devices in the store, which also notes when each was last
    seen and last sold (for the admin's views), writing at most every NOTE_EVERY seconds."""

    NOTE_EVERY = 30.0

    def __init__(self, store: Store, ttl: float) -> None:
        self._store = store
        self._ttl = ttl
        self._cache: dict[tuple[str, str], tuple[float, Device | None]] = {}
        self._noted: dict[tuple[str, str], float] = {}  # when this process last wrote a device's times
        self._writes: set[asyncio.Task[None]] = set()

    def note(self, tenant: str, device_id: str, sale: bool = False) -> None:
        """The device was seen (made a request), or stored a sale: recorded in the store in the
        background (the request never waits for it, and a failed write only leaves the figure
        older); a request at most every NOTE_EVERY seconds per device and process."""
        now = time.time()
        key = (tenant, device_id)
        # a sale is written at once (it cost an ERPNext posting anyway); mere requests at most every NOTE_EVERY s
        if not sale and now - self._noted.get(key, 0.0) < self.NOTE_EVERY:
            return
        if len(self._noted) > 100_000:
            self._noted.clear()
        self._noted[key] = now
        task = asyncio.ensure_future(self._write(tenant, device_id, now, now if sale else 0.0))
        self._writes.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(self._writes.discard)

    async def _write(self, tenant: str, device_id: str, seen: float, sale: float) -> None:
        try:
            await self._store.touch_device(tenant, device_id, seen, sale)
        except Exception:  # the store is away: the next note writes newer times
            self._noted.pop((tenant, device_id), None)

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
