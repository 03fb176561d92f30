"""The event log in Redis: one stream per tenant, `<prefix>:{<tenant>}:events` (fields
kind, scope, data), ids are the stream's (`<ms>-<n>`), and `<prefix>:{<tenant>}:events:trimmed`
holds the id of the newest event trimmed away. Both keys carry the tenant's hash tag,
so the append script stays valid on Redis Cluster.

Why not XADD MAXLEN ~: Redis does not record how far trimming went (XINFO STREAM's
max-deleted-entry-id counts XDEL only), so a reader whose `after` was trimmed could
not be told it lost events. The append script trims itself, exactly, once every
`trim_step(EVENTS_KEPT)` events, and records the last id it dropped.

A waiting `ev_read` is an XREAD BLOCK, which holds its connection for the wait: those
run on a client of their own (at most `EV_BLOCKING_CONNECTIONS` per process), so tills
waiting for events never starve the store's other commands of connections.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import redis.asyncio as aioredis

from edge.store import events
from edge.store.events import Event, trim_step

# KEYS: stream, trimmed. ARGV: kind, scope, data, kept, step. -> the new event's id.
_APPEND = """
local id = redis.call('XADD', KEYS[1], '*', 'kind', ARGV[1], 'scope', ARGV[2], 'data', ARGV[3])
local kept, step = tonumber(ARGV[4]), tonumber(ARGV[5])
local len = redis.call('XLEN', KEYS[1])
if len >= kept + step then
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - kept + 1)
  redis.call('XTRIM', KEYS[1], 'MINID', head[#head][1])  -- drops every id below the first one kept
  redis.call('SET', KEYS[2], head[#head - 1][1])
end
return id
"""

EV_BLOCKING_CONNECTIONS = 100  # per process: tills waiting for an event at once (more wait for a connection)

_MAX = 2**64 - 1
_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")


def _parse(event_id: bytes | str | None) -> tuple[int, int] | None:
    if event_id is None:
        return None
    text = event_id.decode() if isinstance(event_id, bytes) else event_id
    m = _ID.fullmatch(text)
    if m is None or int(m[1]) > _MAX or int(m[2]) > _MAX or int(m[1]) == int(m[2]) == _MAX:
        return None  # not an id Redis would give (nor one XRANGE could start after)
    return int(m[1]), int(m[2])


def _event(entry: Any) -> Event:
    event_id, fields = entry
    return Event(event_id.decode(), fields[b"kind"].decode(), fields[b"scope"].decode(), bytes(fields[b"data"]))


class RedisEvents:
    """Event log methods of RedisStore (it provides `_raw`, a client that keeps bytes, and `url`)."""

    _raw: Any
    prefix: str
    url: str
    _ev_block: aioredis.Redis | None = None

    def _open_events(self) -> None:
        self._ev_append = self._raw.register_script(_APPEND)
        pool = aioredis.BlockingConnectionPool.from_url(
            self.url, max_connections=EV_BLOCKING_CONNECTIONS, timeout=None, decode_responses=False,
            socket_connect_timeout=5, socket_timeout=None,  # a read blocks as long as asked; ev_read bounds it
        )
        self._ev_block = aioredis.Redis.from_pool(pool)  # closing the client closes the pool

    async def _close_events(self) -> None:
        if self._ev_block is not None:
            await self._ev_block.aclose()
            self._ev_block = None

    def _ev_keys(self, tenant: str) -> list[str]:
        stream = f"{self.prefix}:{{{tenant}}}:events"
        return [stream, f"{stream}:trimmed"]

    async def ev_append(self, tenant: str, kind: str, scope: str, data: bytes, now: float) -> str:
        """Append an event; returns its id (see EventLog)."""
        kept = events.EVENTS_KEPT
        event_id = await self._ev_append(keys=self._ev_keys(tenant), args=[kind, scope, bytes(data), kept, trim_step(kept)])
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    async def ev_last(self, tenant: str) -> str:
        """The id of the tenant's latest event ("" when there is none)."""
        last = await self._raw.xrevrange(self._ev_keys(tenant)[0], "+", "-", count=1)
        return str(last[0][0].decode()) if last else ""

    async def ev_read(self, tenant: str, after: str, limit: int, wait: float) -> tuple[list[Event], bool]:
        """Events after `after`, oldest first, at most `limit`, waiting up to `wait` s for one (see EventLog)."""
        start = _parse(after) if after else (0, 0)
        if start is None:
            return [], False
        stream, trimmed_key = self._ev_keys(tenant)
        count = max(limit, 1)
        async with self._raw.pipeline(transaction=True) as pipe:  # one slot: a consistent snapshot
            pipe.get(trimmed_key)
            pipe.xrevrange(stream, "+", "-", count=1)
            pipe.xrange(stream, f"({after}" if after else "-", "+", count=count)
            trimmed, last, entries = await pipe.execute()
        if after:
            gone, newest = _parse(trimmed), _parse(last[0][0]) if last else None
            if (gone is not None and start < gone) or newest is None or start > newest:
                return [], False  # trimmed past it, or an id this log never handed out
        if limit <= 0:
            return [], True
        if entries or wait <= 0:
            return [_event(e) for e in entries], True
        return await self._ev_wait(stream, after or "0-0", count, wait), True

    async def _ev_wait(self, stream: str, after: str, count: int, wait: float) -> list[Event]:
        if self._ev_block is None:
            raise RuntimeError("store is not open")
        try:
            # The margin covers the round trip; past it (a pool full of waiting readers, a hung
            # server) the read is given up as "nothing yet": the reader asks again.
            async with asyncio.timeout(wait + 2.0):
                got: Any = await self._ev_block.xread({stream: after}, count=count, block=max(1, int(wait * 1000)))
        except TimeoutError:
            return []
        return [_event(e) for _, entries in got for e in entries] if got else []
