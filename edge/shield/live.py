"""Live demand: which tenants are serving tills right now, told to every sync worker.

A live call (a POS sale, return, closure, a proxied write) must not wait in ERPNext's
queue behind the backlog. The sync lane cannot take back a posting it has sent, so it
has to leave room *before* the next live call comes: while a tenant has had live calls
within the last `hold` seconds, the sync lane keeps room for as many as were under way
at once (its reserve), and takes only what is left of the tenant's limit.

Sync workers may run in other processes and on other hosts, so each process writes its
reserve to the store (Store.mark_live) with an expiry, and the workers read the sum
(Store.live_demand). Writing costs a store call, so a process writes only when its
reserve grows or its mark is about to run out (at most about twice per `hold` per
tenant), from a task of its own: the live call never waits for it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from edge.store.base import Store


@dataclass
class _Tenant:
    in_flight: int = 0
    peak: int = 0  # most live calls at once since the last mark was written
    marked: int = 0  # the reserve of the last mark written
    marked_until: float = 0.0
    writing: bool = False


class LiveDemand:
    """This process's live calls per tenant, and their marks in the store."""

    def __init__(self, store: Store, owner: str, hold: float, log: Any) -> None:
        self.store = store
        self.owner = owner
        self.hold = hold
        self.log = log
        self._tenants: dict[str, _Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def begin(self, tenant: str) -> None:
        """A live call for `tenant` starts (pair with end())."""
        t = self._tenants.get(tenant)
        if t is None:
            t = self._tenants[tenant] = _Tenant()
        t.in_flight += 1
        if t.in_flight > t.peak:
            t.peak = t.in_flight
        if self.hold <= 0 or t.writing:
            return
        now = time.time()
        if t.peak > t.marked or now + self.hold / 2 > t.marked_until:
            t.writing = True
            task = asyncio.get_running_loop().create_task(self._mark(tenant, t, now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def end(self, tenant: str) -> None:
        """The live call for `tenant` has its answer."""
        self._tenants[tenant].in_flight -= 1

    def local(self, tenant: str) -> int:
        """Live calls for `tenant` under way in this process now, or marked as recent."""
        t = self._tenants.get(tenant)
        if t is None:
            return 0
        recent = t.marked if time.time() < t.marked_until else 0
        return max(t.in_flight, recent)

    def active(self, tenant: str) -> bool:
        """Whether this process has served `tenant` live calls within `hold` seconds."""
        t = self._tenants.get(tenant)
        return t is not None and (t.in_flight > 0 or time.time() < t.marked_until)

    async def _mark(self, tenant: str, t: _Tenant, now: float) -> None:
        reserve, until = max(t.peak, t.in_flight, 1), now + self.hold
        try:
            await self.store.mark_live(tenant, self.owner, reserve, until, now)
            t.marked, t.marked_until = reserve, until
            t.peak = t.in_flight
        except Exception as exc:  # the sync lane then does not yield: slower live calls, nothing lost
            self.log.warning("live_mark_failed", tenant=tenant, error=type(exc).__name__)
            t.marked_until = now + self.hold / 2  # not again at once: the store is struggling
        finally:
            t.writing = False

    async def close(self) -> None:
        """Wait for marks being written (shut-down)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2)
