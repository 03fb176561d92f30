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
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

from edge.store.events import Event

HEARTBEAT = 15.0  # seconds between keep-alive comments: proxies drop silent connections
DEVICE_CHECK = 5.0  # seconds between looks at the device's status (blocked?)


class StoreAway(Exception):
    """The event log cannot be read: the stream ends, and the till reconnects."""


def frame(event_id: str, kind: str, data: bytes) -> bytes:
    """One SSE message; without an id ("") the till's Last-Event-ID stays what it was."""
    head = b"id: " + event_id.encode() + b"\n" if event_id else b""
    return head + b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


class Feed:
    """One reader of a tenant's event log per process, shared by all its streams there:
    2,000 tills on one process cost the store one read loop, not 2,000."""

    WINDOW = 2000  # recent events kept in memory for the streams to catch up from

    def __init__(self, store: Any, tenant: str, log: Any) -> None:
        self.store, self.tenant, self.log = store, tenant, log
        self.events: collections.deque[Event] = collections.deque(maxlen=self.WINDOW)
        self.start = ""  # the last id before the window's first event ("" the log's beginning)
        self.last = ""  # the newest id read
        # set, and replaced, whenever events arrive: a waiter holds the one current when it began
        self._arrived = asyncio.Event()
        self.users = 0
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()  # the reader knows the log's position

    async def join(self) -> None:
        """A stream starts reading from this feed (once it knows where the log is)."""
        self.users += 1
        if self._task is None or self._task.done():
            # made before any await: streams joining meanwhile share this reader (one each
            # would read every event into the window as many times)
            self._started = asyncio.Event()
            self._task = asyncio.create_task(self._read())
        try:
            await self._started.wait()
        except BaseException:  # the till went while the reader started: not a user any more
            self.users -= 1
            raise
        if self._task.done():  # the reader could not find the log's position: the store is away
            self.users -= 1
            raise StoreAway(f"the event log of {self.tenant} cannot be read")

    def leave(self) -> None:
        self.users -= 1

    async def _read(self) -> None:
        try:
            self.last = self.start = await self.store.ev_last(self.tenant)
        except Exception as exc:  # the store is away: the joined streams end (tills reconnect)
            self.log.warning("events_read_failed", tenant=self.tenant, error=type(exc).__name__)
            return
        finally:
            self._started.set()
        self.events.clear()
        while self.users > 0:
            try:
                events, ok = await self.store.ev_read(self.tenant, self.last, 500, 1.0)
            except Exception as exc:  # the store is away: the streams keep waiting, this retries
                self.log.warning("events_read_failed", tenant=self.tenant, error=type(exc).__name__)
                await asyncio.sleep(1.0)
                continue
            if not ok:  # the log moved on without us: streams that need older events read the store
                try:
                    self.last = self.start = await self.store.ev_last(self.tenant)
                except Exception as exc:
                    self.log.warning("events_read_failed", tenant=self.tenant, error=type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                self.events.clear()
                continue
            if events:
                if len(self.events) + len(events) > self.WINDOW:
                    dropped = len(self.events) + len(events) - self.WINDOW
                    self.start = (list(self.events) + events)[dropped - 1].id
                self.events.extend(events)
                self.last = events[-1].id
                self.kick()

    def after(self, event_id: str) -> list[Event] | None:
        """The events after `event_id` that this feed holds, or None if it does not know
        that position (older than its window, or not of this log)."""
        if event_id == self.last:
            return []
        if event_id == self.start:
            return list(self.events)
        for i in range(len(self.events) - 1, -1, -1):
            if self.events[i].id == event_id:
                return list(self.events)[i + 1:]
        return None

    async def wait(self, seconds: float) -> None:
        """Until new events arrive (or a kick), or `seconds` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # no task per waiter, as wait_for would make
                await self._arrived.wait()

    def kick(self) -> None:
        """Wake every stream of this feed to look at its state (stopping, tenant removed)."""
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()


class Feeds:
    """The feeds of this process, one per tenant with open streams."""

    def __init__(self, store: Any, log: Any) -> None:
        self.store, self.log = store, log
        self._feeds: dict[str, Feed] = {}

    def kick(self) -> None:
        """Wake every stream of this process (the process stops, or tenants.yaml changed)."""
        for feed in list(self._feeds.values()):
            feed.kick()

    @contextlib.asynccontextmanager
    async def joined(self, tenant: str) -> AsyncIterator[Feed]:
        feed = self._feeds.get(tenant)
        if feed is None:
            feed = self._feeds[tenant] = Feed(self.store, tenant, self.log)
        try:
            await feed.join()
        except BaseException:
            if feed.users <= 0 and self._feeds.get(tenant) is feed:
                del self._feeds[tenant]
            raise
        try:
            yield feed
        finally:
            feed.leave()
            if feed.users <= 0 and self._feeds.get(tenant) is feed:
                del self._feeds[tenant]


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
        try:
            async with self.edge.feeds.joined(self.tenant) as feed:
                async for chunk in self._frames(feed):
                    yield chunk
        except StoreAway:  # logged by the feed; the till's EventSource reconnects after `retry`
            return

    async def _frames(self, feed: Feed) -> AsyncIterator[bytes]:
        store = self.edge.store
        yield b"retry: 3000\n\n"  # how long an EventSource waits before reconnecting
        if not self.after:
            self.after = feed.last  # from now on
        next_device_check = time.monotonic() + DEVICE_CHECK
        last_sent = time.monotonic()
        while not self.stopping.is_set():
            if not self.tenant_alive():
                return
            held = feed.after(self.after)
            if held is None:  # a position before the feed's window (a late reconnect): the store has it
                events, ok = await store.ev_read(self.tenant, self.after, 500, 0.0)
                if not ok:
                    self.after = feed.last
                    yield frame(self.after, "resync", b'{"reason":"events were lost: load /v1/init again"}')
                    continue
                if not events:  # the newest there is, and the feed has not read up to it yet
                    await feed.wait(1.0)
                    continue
            elif held:
                events = held
            else:
                # until an event, a kick (stop, reload), the device check or the keep-alive is due
                await feed.wait(max(0.05, min(next_device_check, last_sent + HEARTBEAT) - time.monotonic()))
                events = feed.after(self.after) or []
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
