"""Events for tills (`GET /v1/events`): the store's half, a per-tenant append-only log.

Every process and replica appends to and reads from the same log in the shared store,
so an event raised anywhere (a refresh that found new prices, a webhook, a blocked
device) reaches tills connected to any process. Ids increase within a tenant, so a
till that reconnects with `Last-Event-ID` gets what it missed, as long as the log
still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Event:
    """One event of a tenant's log."""

    id: str  # opaque to callers; increasing within the tenant
    kind: str  # e.g. "prices.changed", "config.changed", "device.blocked"
    scope: str  # what it concerns within the tenant ("" all; a price list, a branch, a device id)
    data: bytes  # JSON


class EventLog(Protocol):
    """A tenant's event log in the gateway's store; safe from many processes at once."""

    async def ev_append(self, tenant: str, kind: str, scope: str, data: bytes, now: float) -> str:
        """Append an event; returns its id. The log keeps at least the last EVENTS_KEPT events
        (or the last day's, whichever is more is not promised: older ones may be dropped)."""
        ...

    async def ev_last(self, tenant: str) -> str:
        """The id of the tenant's latest event ("" when there is none)."""
        ...

    async def ev_read(self, tenant: str, after: str, limit: int, wait: float) -> tuple[list[Event], bool]:
        """Events after id `after` ("" = from the oldest kept), oldest first, at most `limit`;
        when there are none, wait up to `wait` seconds for one. The flag is False when
        `after` is older than what the log still holds or is not an id of this log: events
        were lost to the reader, who must load its data again. With False no events come
        and nothing is waited for: the reader reloads and reads on from ev_last()."""
        ...


EVENTS_KEPT = 10_000  # per tenant: hours of changes for a busy shop


def trim_step(kept: int) -> int:
    """How many events a log may grow beyond `kept` before it is trimmed back to `kept`
    (trimming once every so many appends keeps its cost per append constant)."""
    return max(1, min(100, kept // 100))
