"""`GET /v1/events`: a Server-Sent Events stream of what changed for the till's tenant and branch.

Events live in the store's per-tenant log (edge.store.events), so an event raised by any
process or replica reaches tills on all of them, and a till that reconnects with
`Last-Event-ID` gets what it missed. Kinds:

- `products.changed`, `customers.changed`, `campaigns.changed`, `prices.changed` (the
  branch's price list only), `settings.changed` (the branch's POS Profile): data
  `{"collection", "cursor"}`; the till asks `/v1/<collection>?since=<its cursor>`;
- `device.blocked`: this device was blocked; the stream ends after it;
- `config.changed`: tenants.yaml changed (load /v1/init again);
- `resync`: events were lost (the reconnect came too late): load /v1/init again.

While a till is connected, its tenant's collections are refreshed from ERPNext every
`masterdata.freshness` seconds (one process of all replicas does it), so a change made
in ERPNext reaches the stream without any till asking.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

HEARTBEAT = 15.0  # seconds between keep-alive comments: proxies drop silent connections
DEVICE_CHECK = 5.0  # seconds between looks at the device's status (blocked?)


def frame(event_id: str, kind: str, data: bytes) -> bytes:
    """One SSE message; without an id ("") the till's Last-Event-ID stays what it was."""
    head = b"id: " + event_id.encode() + b"\n" if event_id else b""
    return head + b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class Stream:
    """One till's event stream: what it may see, and the loop that feeds it."""

    def __init__(self, edge: Any, tenant: str, device: str, generation: int, scopes: dict[str, str],
                 after: str, stopping: asyncio.Event, tenant_alive: Callable[[], bool]) -> None:
        self.edge, self.tenant, self.device, self.generation = edge, tenant, device, generation
        self.scopes = scopes  # kind -> the scope a till of this branch follows ("prices.changed" -> its price list)
        self.after = after
        self.stopping = stopping
        self.tenant_alive = tenant_alive

    def wants(self, kind: str, scope: str) -> bool:
        """Whether this till is shown an event of `kind` about `scope`."""
        if kind == "device.blocked":
            return scope == self.device
        wanted = self.scopes.get(kind)
        return scope == "" if wanted is None else scope == wanted

    async def frames(self) -> AsyncIterator[bytes]:
        """The stream's bytes, until the till goes, the device is blocked, the tenant is
        removed from tenants.yaml or the process stops."""
        store = self.edge.store
        yield b"retry: 3000\n\n"  # how long an EventSource waits before reconnecting
        next_device_check = time.monotonic() + DEVICE_CHECK
        last_sent = time.monotonic()
        while not self.stopping.is_set():
            if not self.tenant_alive():
                return
            # short waits: a stop or the tenant's removal is seen within a second
            events, ok = await store.ev_read(self.tenant, self.after, 100, 1.0)
            if not ok:
                self.after = await store.ev_last(self.tenant)
                yield frame(self.after, "resync", b'{"reason":"events were lost: load /v1/init again"}')
                continue
            for event in events:
                self.after = event.id
                if self.wants(event.kind, event.scope):
                    yield frame(event.id, event.kind, event.data)
                    last_sent = time.monotonic()
                    if event.kind == "device.blocked":
                        return
            if time.monotonic() >= next_device_check:
                next_device_check = time.monotonic() + DEVICE_CHECK
                if await self._blocked():
                    yield frame("", "device.blocked", orjson.dumps({"device_id": self.device}))
                    return
            if time.monotonic() - last_sent >= HEARTBEAT:
                yield b": keep-alive\n\n"
                last_sent = time.monotonic()

    async def _blocked(self) -> bool:
        """The device was blocked or its token replaced (a missed event is caught here)."""
        device = await self.edge.runtime.services.devices.get(self.tenant, self.device, self.generation)
        return device is None or device.status == "blocked" or device.generation != self.generation


@contextlib.asynccontextmanager
async def following(masterdata: Any, tenant: Any, scopes: list[tuple[Any, str]]) -> AsyncIterator[None]:
    """While a stream is open, its tenant's collections are kept fresh (see MasterData.follow)."""
    handle = masterdata.follow(tenant, scopes)
    try:
        yield
    finally:
        masterdata.unfollow(handle)
