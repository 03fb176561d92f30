"""Master data in SQLite: one row per (tenant, collection, scope, name) and one state row
per (tenant, collection, scope).

A till's delta ("rows with seq > N") is a range scan of the unique index on
(tenant, collection, scope, seq). `md_apply` runs in one `BEGIN IMMEDIATE` transaction,
so the seqs it hands out cannot race another process on the same file; it reads the
rows it may change in a few set-based queries and writes them with executemany.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from edge.store.masterdata import CollectionState, MasterRow, normalise

# Schema version 2 (edge/store/sqlite_schema.py): frozen once released, like version 1.
# Change a table with a new migration there, not here.
MASTERDATA_SCHEMA = """
CREATE TABLE md_rows (
    tenant TEXT NOT NULL,
    collection TEXT NOT NULL,
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    data BLOB NOT NULL,
    PRIMARY KEY (tenant, collection, scope, name)
);
CREATE UNIQUE INDEX md_rows_seq ON md_rows (tenant, collection, scope, seq);
CREATE TABLE md_state (
    tenant TEXT NOT NULL,
    collection TEXT NOT NULL,
    scope TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    source_cursor TEXT NOT NULL DEFAULT '',
    refreshed_at REAL NOT NULL DEFAULT 0,
    failed_at REAL NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    live INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, collection, scope)
);
"""

# Names looked up per query: well under SQLite's oldest limit of 999 bound variables.
_CHUNK = 500
_KEY = "tenant=? AND collection=? AND scope=?"


class SqliteMasterdata:
    """Master data methods of SqliteStore (it provides `_run` and `_transaction`)."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def md_state(self, tenant: str, collection: str, scope: str) -> CollectionState:
        """The collection's state (a default CollectionState if never written)."""
        row = await self._run(lambda c: c.execute(
            f"SELECT seq, source_cursor, refreshed_at, failed_at, error, live FROM md_state WHERE {_KEY}",
            (tenant, collection, scope),
        ).fetchone())
        if row is None:
            return CollectionState()
        return CollectionState(int(row[0]), row[1], float(row[2]), float(row[3]), row[4], int(row[5]))

    async def md_apply(self, tenant: str, collection: str, scope: str, upserts: list[tuple[str, bytes]],
                       deletes: list[str], source_cursor: str, now: float) -> int:
        """Write upserts and tombstone deletes, one seq per real change (see MasterdataStore)."""
        rows, gone = normalise(upserts, deletes)
        key = (tenant, collection, scope)

        def tx(c: sqlite3.Connection) -> int:
            found = c.execute(f"SELECT seq, live FROM md_state WHERE {_KEY}", key).fetchone()
            seq, live = (int(found[0]), int(found[1])) if found else (0, 0)
            old = _current(c, key, [*rows, *gone])  # name -> (deleted, data)
            written: list[tuple[Any, ...]] = []
            for name, data in rows.items():
                before = old.get(name)
                if before is not None and not before[0] and before[1] == data:
                    continue  # the same bytes as the live row: nothing changed
                seq += 1
                live += 1 if before is None or before[0] else 0
                written.append((*key, name, seq, data))
            buried: list[tuple[Any, ...]] = []
            for name in gone:
                before = old.get(name)
                if before is None or before[0]:
                    continue  # missing or already a tombstone: nothing to tell a till
                seq += 1
                live -= 1
                buried.append((seq, *key, name))
            c.executemany(
                "INSERT INTO md_rows (tenant, collection, scope, name, seq, deleted, data) VALUES (?,?,?,?,?,0,?) "
                "ON CONFLICT (tenant, collection, scope, name) DO UPDATE SET seq=excluded.seq, deleted=0, "
                "data=excluded.data",
                written,
            )
            c.executemany(f"UPDATE md_rows SET seq=?, deleted=1, data=x'' WHERE {_KEY} AND name=?", buried)
            c.execute(
                "INSERT INTO md_state (tenant, collection, scope, seq, source_cursor, refreshed_at, live) "
                "VALUES (?,?,?,?,?,?,?) ON CONFLICT (tenant, collection, scope) DO UPDATE SET seq=excluded.seq, "
                "source_cursor=excluded.source_cursor, refreshed_at=excluded.refreshed_at, failed_at=0, error='', "
                "live=excluded.live",
                (*key, seq, source_cursor, now, live),
            )
            return seq

        result: int = await self._transaction(tx)
        return result

    async def md_failed(self, tenant: str, collection: str, scope: str, error: str, now: float) -> None:
        """Record a failed refresh, keeping every row."""
        await self._run(lambda c: c.execute(
            "INSERT INTO md_state (tenant, collection, scope, failed_at, error) VALUES (?,?,?,?,?) "
            "ON CONFLICT (tenant, collection, scope) DO UPDATE SET failed_at=excluded.failed_at, error=excluded.error",
            (tenant, collection, scope, now, error),
        ))

    async def md_page(self, tenant: str, collection: str, scope: str, after: int, limit: int,
                      tombstones: bool) -> list[MasterRow]:
        """Rows with seq > `after` by seq, at most `limit`; tombstones only if asked."""
        if limit <= 0:
            return []  # SQLite reads a negative LIMIT as no limit at all
        # The index on (tenant, collection, scope, seq) serves the range and the order; skipped
        # tombstones are filtered during the scan, so the page is still full when more rows exist.
        live_only = "" if tombstones else " AND deleted=0"
        found = await self._run(lambda c: c.execute(
            f"SELECT name, seq, deleted, data FROM md_rows WHERE {_KEY} AND seq > ?{live_only} ORDER BY seq LIMIT ?",
            (tenant, collection, scope, after, limit),
        ).fetchall())
        return [MasterRow(r[0], int(r[1]), bool(r[2]), bytes(r[3])) for r in found]

    async def md_lease(self, tenant: str, collection: str, scope: str, owner: str, now: float, ttl: float) -> bool:
        """Take or extend the collection's refresh lease until now + ttl (see MasterdataStore)."""
        if not owner:
            raise ValueError("a lease needs an owner")  # '' marks a free lease
        # One statement: atomic by itself (it takes the write lock), and it creates the
        # state row of a collection never written yet.
        taken: bool = await self._run(lambda c: c.execute(
            "INSERT INTO md_state (tenant, collection, scope, lease_owner, lease_until) VALUES (?,?,?,?,?) "
            "ON CONFLICT (tenant, collection, scope) DO UPDATE SET lease_owner=excluded.lease_owner, "
            "lease_until=excluded.lease_until "
            "WHERE md_state.lease_owner IN ('', excluded.lease_owner) OR md_state.lease_until <= ?",
            (tenant, collection, scope, owner, now + ttl, now),
        ).rowcount == 1)
        return taken

    async def md_release(self, tenant: str, collection: str, scope: str, owner: str) -> None:
        """Give the lease up if `owner` holds it."""
        await self._run(lambda c: c.execute(
            f"UPDATE md_state SET lease_owner='', lease_until=0 WHERE {_KEY} AND lease_owner=? AND lease_owner != ''",
            (tenant, collection, scope, owner),
        ))


def _current(c: sqlite3.Connection, key: tuple[str, str, str], names: list[str]) -> dict[str, tuple[bool, bytes]]:
    """The stored (deleted, data) of those of `names` that have a row."""
    found: dict[str, tuple[bool, bytes]] = {}
    for i in range(0, len(names), _CHUNK):
        chunk = names[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for name, deleted, data in c.execute(
            f"SELECT name, deleted, data FROM md_rows WHERE {_KEY} AND name IN ({marks})", (*key, *chunk)
        ):
            found[name] = (bool(deleted), bytes(data))
    return found
