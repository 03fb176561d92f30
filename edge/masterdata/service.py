"""Keeping each tenant's master data in the gateway's store, refreshed from ERPNext.

Requests are answered from the store, never by asking ERPNext while the till waits
(except for a collection never filled yet). A request that finds its collection older
than `masterdata.freshness` starts a refresh in the background; concurrent requests
share it (one per collection per process), and a lease in the store lets one process
of all replicas do it. So 500 tills opening at 8:00 cost ERPNext one round of list
calls per collection, and an ERPNext that is down leaves the last good data served,
marked stale.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable
from edge.masterdata.collections import Collection
from edge.masterdata.reader import Watermark, changes
from edge.store.base import Store
from edge.store.masterdata import CollectionState

LEASE = 30.0  # seconds a refresh holds its collection without renewing


@dataclass(frozen=True)
class Snapshot:
    """A collection's state as a request sees it."""

    state: CollectionState
    stale: bool  # the data is older than it should be: ERPNext failed, or a refresh is long overdue
    age: float  # seconds since the last successful refresh


def _number(value: Any) -> float:
    # ERPNext's numbers are parsed as Decimal (edge.erpnext.client); to a till they are
    # JSON numbers again, as ERPNext sent them
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


class MasterData:
    """One per process: refreshes collections on demand, one refresh at a time each."""

    def __init__(self, store: Store, log: Any, tenants: Callable[[], dict[str, Any]] | None = None) -> None:
        self.store: Store = store  # master data, and the event log where changes are announced
        self.log = log
        self.owner = f"{uuid.uuid4().hex[:12]}"  # this process, as a lease holder
        self._flights: dict[tuple[str, str, str], asyncio.Task[None]] = {}
        self._tenants = tenants or dict  # the serving tenants (TenantRuntime by key), after every reload
        self._followed: dict[object, tuple[str, list[tuple[Collection, str]]]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._again: set[tuple[str, str, str]] = set()  # nudged while refreshing: refresh once more after
        self._closed = False

    def follow(self, tenant: str, scopes: list[tuple[Collection, str]]) -> object:
        """Keep these collections of `tenant` fresh while the returned handle is followed
        (an open event stream): refreshed when due, without a request asking."""
        handle = object()
        self._followed[handle] = (tenant, scopes)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        return handle

    def unfollow(self, handle: object) -> None:
        """The stream closed."""
        self._followed.pop(handle, None)

    async def _poll(self) -> None:
        while self._followed:
            await asyncio.sleep(1.0)
            due = {(t, c.name, s): (t, c, s) for t, scopes in list(self._followed.values()) for c, s in scopes}
            tenants = self._tenants()
            for tenant, coll, scope in due.values():
                rt = tenants.get(tenant)
                if rt is None:
                    continue
                try:
                    await self.snapshot(tenant, rt.config, rt.poster.client, coll, scope)
                except Exception as exc:  # the store is away: the next round tries again
                    self.log.warning("masterdata_poll_failed", tenant=tenant, collection=coll.name,
                                     error=type(exc).__name__)

    async def snapshot(self, tenant: str, cfg: Any, client: ErpnextClient, coll: Collection, scope: str) -> Snapshot:
        """The collection's state, refreshed first if it was never filled (waiting up to
        `masterdata.refresh_wait`), or refreshing in the background if it is due."""
        md = cfg.masterdata
        state = await self.store.md_state(tenant, coll.name, scope)
        now = time.time()
        if now - state.refreshed_at >= md.freshness:
            flight = self._start(tenant, cfg, client, coll, scope)
            if not state.refreshed_at:
                try:
                    await asyncio.wait_for(asyncio.shield(flight), md.refresh_wait)
                except TimeoutError:
                    pass
                state = await self.store.md_state(tenant, coll.name, scope)
        age = time.time() - state.refreshed_at if state.refreshed_at else float("inf")
        stale = bool(state.failed_at) or age > 3 * md.freshness
        return Snapshot(state, stale, age)

    def nudge(self, tenant: str, cfg: Any, client: ErpnextClient, coll: Collection, scope: str) -> None:
        """ERPNext said (a Webhook) that the collection changed: refresh it now, due or not.
        A refresh already running may have read before the change, so one more follows
        it; a burst of Webhooks costs one running and one pending refresh, not one each."""
        key = (tenant, coll.name, scope)
        flight = self._flights.get(key)
        if flight is not None and not flight.done():
            self._again.add(key)
            return
        self._start(tenant, cfg, client, coll, scope, insist=True)

    def _start(self, tenant: str, cfg: Any, client: ErpnextClient, coll: Collection, scope: str,
               insist: bool = False) -> asyncio.Task[None]:
        key = (tenant, coll.name, scope)
        flight = self._flights.get(key)
        if flight is None or flight.done():
            flight = asyncio.create_task(self._refresh(tenant, cfg, client, coll, scope, insist))
            self._flights[key] = flight
            flight.add_done_callback(lambda _: self._landed(key, flight, coll))
        return flight

    def _landed(self, key: tuple[str, str, str], flight: asyncio.Task[None], coll: Collection) -> None:
        if self._flights.get(key) is flight:
            self._flights.pop(key, None)
        if key in self._again and not self._closed:
            self._again.discard(key)
            rt = self._tenants().get(key[0])  # after a reload, its current config and client
            if rt is not None:  # (a tenant removed meanwhile is not refreshed)
                self._start(key[0], rt.config, rt.poster.client, coll, key[2], insist=True)

    async def _refresh(self, tenant: str, cfg: Any, client: ErpnextClient, coll: Collection, scope: str,
                       insist: bool = False) -> None:
        store, name = self.store, coll.name
        # `insist` (a Webhook's refresh): another replica's refresh may have read before the
        # change, so once it is done this one reads the delta itself
        tries = 3 if insist else 1
        for attempt in range(tries):
            try:
                if await store.md_lease(tenant, name, scope, self.owner, time.time(), LEASE):
                    break
            except Exception as exc:  # the store is away: the next request or poll tries again
                self.log.warning("masterdata_lease_failed", tenant=tenant, collection=name, error=type(exc).__name__)
                return
            if attempt + 1 < tries or not insist:
                await self._await_other(tenant, coll, scope, max(cfg.masterdata.refresh_wait, 1.0))
        else:
            if insist:  # the change is found by the next poll (masterdata.freshness)
                self.log.warning("masterdata_nudge_dropped", tenant=tenant, collection=name, scope=scope or None,
                                 detail="another process held the refresh throughout")
            return
        started = time.perf_counter()
        try:
            state = await store.md_state(tenant, name, scope)
            start = mark = Watermark.decode(state.source_cursor)
            rows = 0
            async for batch, mark in changes(client, coll, cfg, scope, start, cfg.masterdata.read_page):
                upserts = [(n, orjson.dumps(r, default=_number)) for n, r in batch if r is not None]
                deletes = [n for n, r in batch if r is None]
                # refreshed_at moves only when the whole refresh is done: a half-filled
                # collection must not look fresh to the requests meanwhile
                await store.md_apply(tenant, name, scope, upserts, deletes, mark.encode(), state.refreshed_at)
                await store.md_lease(tenant, name, scope, self.owner, time.time(), LEASE)
                rows += len(batch)
            seq = await store.md_apply(tenant, name, scope, [], [], mark.encode(), time.time())
            if seq != state.seq:  # tills following this tenant hear of it (GET /v1/events)
                kind = "settings.changed" if name == "settings" else f"{name}.changed"
                await self.store.ev_append(tenant, kind, scope, orjson.dumps(
                    {"collection": name, "scope": scope or None, "cursor": str(seq)}), time.time())
            self.log.info("masterdata_refreshed", tenant=tenant, collection=name, scope=scope or None, rows=rows,
                          seq=seq, ms=round((time.perf_counter() - started) * 1000, 1))
        except (FrappeError, Unreachable) as exc:
            detail = f"{type(exc).__name__}: {exc}"[:300]
            self.log.warning("masterdata_refresh_failed", tenant=tenant, collection=name, scope=scope or None,
                             error=detail)
            await store.md_failed(tenant, name, scope, detail, time.time())
        except Exception as exc:  # a bug must not leave the lease held, nor kill the process
            self.log.exception("masterdata_refresh_error", tenant=tenant, collection=name, error=type(exc).__name__)
            await store.md_failed(tenant, name, scope, type(exc).__name__, time.time())
        finally:
            await store.md_release(tenant, name, scope, self.owner)

    async def _await_other(self, tenant: str, coll: Collection, scope: str, wait: float) -> None:
        """Another process refreshes this collection: wait (a while) for it to finish."""
        before = await self.store.md_state(tenant, coll.name, scope)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            now = await self.store.md_state(tenant, coll.name, scope)
            if now.refreshed_at != before.refreshed_at or now.failed_at != before.failed_at:
                return

    async def close(self) -> None:
        """Cancel refreshes in flight (their leases run out)."""
        self._closed = True
        self._followed.clear()
        if self._poller is not None:
            self._poller.cancel()
        for flight in list(self._flights.values()):
            flight.cancel()
        await asyncio.gather(*self._flights.values(), return_exceptions=True)
