"""The admin audit log in SQLite: one row per record, ids from SQLite's rowid (increasing)."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from edge.store.audit import AUDIT_KEPT, AuditRecord

# Schema version 4 (edge/store/sqlite_schema.py): frozen once released.
AUDIT_SCHEMA = """
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,  -- the rowid: increasing, since only the oldest rows are ever deleted
    tenant TEXT NOT NULL,
    at REAL NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX audit_tenant ON audit (tenant, id);
"""
TRIM_EVERY = 1000  # appends between two trims of a tenant's log


class SqliteAudit:
    """Audit log methods of SqliteStore (it provides `_run` and `_transaction`)."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def audit_append(self, tenant: str, data: bytes, now: float) -> str:
        """Append a record (see AuditLog)."""

        def tx(c: sqlite3.Connection) -> int:
            new = int(c.execute("INSERT INTO audit (tenant, at, data) VALUES (?,?,?)",
                                (tenant, now, bytes(data))).lastrowid or 0)
            if new % TRIM_EVERY == 0:
                c.execute("DELETE FROM audit WHERE tenant=? AND id < (SELECT id FROM audit WHERE tenant=? "
                          "ORDER BY id DESC LIMIT 1 OFFSET ?)", (tenant, tenant, AUDIT_KEPT - 1))
            return new

        return str(await self._transaction(tx))

    async def audit_list(self, tenant: str, before: str, limit: int) -> list[AuditRecord]:
        """Records newest first (see AuditLog)."""
        bound = int(before) if before.isdigit() and len(before) <= 18 else 2**62
        rows = await self._run(lambda c: c.execute(
            "SELECT id, at, data FROM audit WHERE tenant=? AND id<? ORDER BY id DESC LIMIT ?",
            (tenant, bound, max(0, limit))).fetchall())
        return [AuditRecord(str(r[0]), float(r[1]), bytes(r[2])) for r in rows]
