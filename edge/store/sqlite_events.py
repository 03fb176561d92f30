"""The event log in SQLite: one row per event, ids 1, 2, 3... per tenant (decimal text
outside), and one `events_state` row per tenant with the last id handed out and the
id up to which the log was trimmed.

`ev_append` runs in one `BEGIN IMMEDIATE` transaction, so two processes on the same
file cannot hand out the same id. Every `trim_step(EVENTS_KEPT)` ids the same
transaction deletes the events older than the newest EVENTS_KEPT and records how far
it went, so `ev_read` can tell a reader whose `after` was trimmed that it lost events.
SQLite cannot tell another process that a row arrived: a waiting `ev_read` polls; an
append in the same process wakes it at once (the embedded default is one process).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from edge.store import events
from edge.store.events import Event, trim_step

# Schema version 3 (edge/store/sqlite_schema.py): frozen once released, like versions 1 and 2.
# Change a table with a new migration there, not here.
EVENTS_SCHEMA = """
CREATE TABLE events (
    tenant TEXT NOT NULL,
    id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE TABLE events_state (
    tenant TEXT NOT NULL PRIMARY KEY,
    last_id INTEGER NOT NULL DEFAULT 0,
    trimmed_upto INTEGER NOT NULL DEFAULT 0
);
"""

POLL_INTERVAL = 0.2  # seconds between two looks of a waiting ev_read

_ID = re.compile(r"[0-9]{1,18}")  # below 2**63: SQLite's INTEGER


class SqliteEvents:
    """Event log methods of SqliteStore (it provides `_run` and `_transaction`)."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _appended: dict[str, asyncio.Event] | None = None  # per tenant: set, and replaced, by an append here

    def _woken(self, tenant: str) -> asyncio.Event:
        if self._appended is None:
            self._appended = {}
        woken = self._appended.get(tenant)
        if woken is None:
            woken = self._appended[tenant] = asyncio.Event()
        return woken

    async def ev_append(self, tenant: str, kind: str, scope: str, data: bytes, now: float) -> str:
        """Append an event; returns its id (see EventLog)."""
        kept = events.EVENTS_KEPT

        def tx(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT last_id, trimmed_upto FROM events_state WHERE tenant=?", (tenant,)).fetchone()
            last, trimmed = (int(row[0]), int(row[1])) if row else (0, 0)
            new = last + 1
            c.execute("INSERT INTO events (tenant, id, kind, scope, data, created_at) VALUES (?,?,?,?,?,?)",
                      (tenant, new, kind, scope, bytes(data), now))
            cutoff = new - kept
            if new % trim_step(kept) == 0 and cutoff > trimmed:
                c.execute("DELETE FROM events WHERE tenant=? AND id<=?", (tenant, cutoff))
                trimmed = cutoff  # ids are contiguous: every id up to cutoff existed, and is gone
            c.execute("INSERT INTO events_state (tenant, last_id, trimmed_upto) VALUES (?,?,?) ON CONFLICT (tenant) "
                      "DO UPDATE SET last_id=excluded.last_id, trimmed_upto=excluded.trimmed_upto",
                      (tenant, new, trimmed))
            return new

        new = str(await self._transaction(tx))
        woken = self._woken(tenant)
        assert self._appended is not None
        self._appended[tenant] = asyncio.Event()
        woken.set()
        return new

    async def ev_last(self, tenant: str) -> str:
        """The id of the tenant's latest event ("" when there is none)."""
        row = await self._run(lambda c: c.execute(
            "SELECT last_id FROM events_state WHERE tenant=?", (tenant,)).fetchone())
        return str(row[0]) if row and int(row[0]) > 0 else ""

    async def ev_read(self, tenant: str, after: str, limit: int, wait: float) -> tuple[list[Event], bool]:
        """Events after `after`, oldest first, at most `limit`, waiting up to `wait` s for one (see EventLog)."""
        if after and not _ID.fullmatch(after):
            return [], False
        start = int(after) if after else 0
        deadline = time.monotonic() + wait
        while True:
            woken = self._woken(tenant)  # before the look: an append during it is not missed
            found, ok = await self._run(lambda c: _read(c, tenant, start, bool(after), limit))
            if found or not ok or limit <= 0:
                return found, ok
            left = deadline - time.monotonic()
            if left <= 0:
                return [], True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(POLL_INTERVAL, left)):
                    await woken.wait()


def _read(c: sqlite3.Connection, tenant: str, after: int, given: bool, limit: int) -> tuple[list[Event], bool]:
    c.execute("BEGIN")  # one snapshot: the state and the rows agree
    try:
        row = c.execute("SELECT last_id, trimmed_upto FROM events_state WHERE tenant=?", (tenant,)).fetchone()
        last, trimmed = (int(row[0]), int(row[1])) if row else (0, 0)
        if given and (after < trimmed or after > last):
            return [], False  # trimmed past it, or an id this log never handed out
        rows = c.execute("SELECT id, kind, scope, data FROM events WHERE tenant=? AND id>? ORDER BY id LIMIT ?",
                         (tenant, after, max(limit, 0))).fetchall()
    finally:
        c.execute("COMMIT")
    return [Event(str(r[0]), r[1], r[2], bytes(r[3])) for r in rows], True
