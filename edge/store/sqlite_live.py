"""Live demand marks in SQLite: a row per (tenant, process) that sees live POS calls.

The sync lane reads them to leave room for live postings; a mark counts until its
`until`, so a process that dies stops holding room once its last mark runs out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

# Schema version 6 (edge/store/sqlite_schema.py): frozen once released.
LIVE_SCHEMA = """
CREATE TABLE live_marks (
    tenant TEXT NOT NULL,
    owner TEXT NOT NULL,
    reserve INTEGER NOT NULL,
    until REAL NOT NULL,
    PRIMARY KEY (tenant, owner)
);
"""
KEEP_EXPIRED = 60.0  # seconds an expired mark stays before a later mark deletes it (it no longer counts)


class SqliteLive:
    """Live demand methods of SqliteStore (it provides `_run` and `_transaction`)."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def mark_live(self, tenant: str, owner: str, reserve: int, until: float, now: float) -> None:
        """Keep room for `reserve` live postings until `until` (see Store)."""
        def tx(c: sqlite3.Connection) -> None:
            # Marks of processes gone for good: whoever marks next tidies up, no sweeper needed.
            c.execute("DELETE FROM live_marks WHERE until < ?", (now - KEEP_EXPIRED,))
            if reserve > 0:
                c.execute("INSERT INTO live_marks VALUES (?,?,?,?) ON CONFLICT (tenant, owner) "
                          "DO UPDATE SET reserve=excluded.reserve, until=excluded.until", (tenant, owner, reserve, until))
            else:
                c.execute("DELETE FROM live_marks WHERE tenant=? AND owner=?", (tenant, owner))

        await self._transaction(tx)

    async def live_demand(self, tenants: list[str], now: float) -> dict[str, int]:
        """Per tenant, the reserves of the marks still valid at `now` (see Store)."""
        def read(c: sqlite3.Connection) -> dict[str, int]:
            demand = dict.fromkeys(tenants, 0)
            if tenants:
                marks = ",".join("?" * len(tenants))
                for tenant, total in c.execute(
                    f"SELECT tenant, sum(reserve) FROM live_marks WHERE tenant IN ({marks}) AND until > ? GROUP BY tenant",
                    (*tenants, now),
                ):
                    demand[tenant] = int(total)
            return demand

        result: dict[str, int] = await self._run(read)
        return result
