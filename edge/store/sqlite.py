"""SQLite backend: the embedded default (one node, WAL, survives restarts).

sqlite3 is blocking, so every call runs on one dedicated thread; a single
connection on a single thread serialises writes without lock contention.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from edge.store.base import Device, DeviceStatus, IdempotencyRecord, check_registration
from edge.store.sqlite_audit import SqliteAudit
from edge.store.sqlite_events import SqliteEvents
from edge.store.sqlite_live import SqliteLive
from edge.store.sqlite_masterdata import SqliteMasterdata
from edge.store.sqlite_postings import SqlitePostings
from edge.store.sqlite_queue import SqliteQueue
from edge.store.sqlite_schema import upgrade

T = TypeVar("T")

# Schema version 1 (edge/store/sqlite_schema.py): frozen, files in the field hold it.
# Change a table with a new migration there, not here.
SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    tenant TEXT NOT NULL,
    device_id TEXT NOT NULL,
    device_name TEXT NOT NULL,
    branch_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'blocked')),
    generation INTEGER NOT NULL,
    registered_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    code_hash TEXT NOT NULL DEFAULT '',
    code_until REAL NOT NULL DEFAULT 0,
    proof_jti TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, device_id)
);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant TEXT NOT NULL,
    device TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in_progress', 'completed')),
    status INTEGER,
    body BLOB,
    lease_until REAL NOT NULL,
    expires_at REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, device, key)
);
CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
CREATE TABLE IF NOT EXISTS closures (
    tenant TEXT NOT NULL,
    closure_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant, closure_id)
);
"""
_COLUMNS = "tenant, device_id, device_name, branch_id, status, generation, registered_at, updated_at, code_until"
_READ = _COLUMNS + ", last_seen, last_sale"  # (schema 5's columns: written by touch_device only)


class SqliteStore(SqliteQueue, SqlitePostings, SqliteMasterdata, SqliteEvents, SqliteAudit, SqliteLive):
    """Store backed by one SQLite file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pos-edge-sqlite")

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    async def _transaction(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in one write transaction (BEGIN IMMEDIATE: the write lock is taken
        up front, so a read-then-write cannot race another process)."""
        return await self._run(lambda c: _in_transaction(c, fn))

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("store is not open")
        return fn(self._conn)

    async def open(self) -> None:
        def connect() -> None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            _enable_wal(conn)
            # FULL: a 2xx promise must survive power loss, not only a process crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            try:
                upgrade(conn)  # creates the tables of a new file, migrates an older one forward
            except BaseException:
                conn.close()  # refused (a newer file) or failed: nothing stays open on it
                raise
            self._conn = conn

        await asyncio.get_running_loop().run_in_executor(self._executor, connect)

    async def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda c: c.execute("SELECT 1").fetchone())

    async def durability_warnings(self) -> list[str]:
        return []  # WAL with synchronous=FULL: a committed write survives power loss

    async def register_device(
        self, tenant: str, device_id: str, device_name: str, branch_id: str, now: float, *,
        proven_generation: int | None = None, proof_jti: str = "", code_hash: str | None = None,
    ) -> Device:
        def tx(c: sqlite3.Connection) -> Device:
            row = c.execute(
                "SELECT status, generation, registered_at, code_hash, code_until, proof_jti, updated_at, branch_id, "
                "last_seen, last_sale FROM devices WHERE tenant=? AND device_id=?", (tenant, device_id),
            ).fetchone()
            status, gen, registered, pending, until, last_jti, updated, stored_branch, seen, sold = (
                row if row else ("active", 0, now, "", 0.0, "", 0.0, "", 0.0, 0.0))
            if check_registration(status, gen, pending, until, now, proven_generation, code_hash, proof_jti=proof_jti,
                                  stored_proof_jti=last_jti, updated_at=updated):
                return _device(c.execute(f"SELECT {_READ} FROM devices WHERE tenant=? AND device_id=?",
                                         (tenant, device_id)).fetchone())
            branch = stored_branch if pending and stored_branch else branch_id  # an admin's code: its branch
            c.execute(
                f"INSERT OR REPLACE INTO devices ({_COLUMNS}, code_hash, proof_jti, last_seen, last_sale) "
                "VALUES (?,?,?,?,?,?,?,?,0,'',?,?,?)",
                (tenant, device_id, device_name, branch, "active", gen + 1, registered, now,
                 proof_jti if proven_generation is not None else "", float(seen), float(sold)),
            )
            return Device(tenant, device_id, device_name, branch, "active", gen + 1, registered, now,
                          last_seen=float(seen), last_sale=float(sold))

        return await self._transaction(tx)

    async def reset_device(self, tenant: str, device_id: str, code_hash: str, until: float, now: float, *,
                           branch_id: str | None = None) -> Device | None:
        def tx(c: sqlite3.Connection) -> Device | None:
            c.execute(
                "UPDATE devices SET generation=generation+1, code_hash=?, code_until=?, updated_at=?, "
                "branch_id=COALESCE(?, branch_id) WHERE tenant=? AND device_id=?",
                (code_hash, until, now, branch_id, tenant, device_id),
            )
            row = c.execute(f"SELECT {_READ} FROM devices WHERE tenant=? AND device_id=?", (tenant, device_id)).fetchone()
            return _device(row) if row else None

        return await self._transaction(tx)

    async def provision_device(self, tenant: str, device_id: str, device_name: str, branch_id: str, code_hash: str,
                               until: float, now: float) -> Device | None:
        def tx(c: sqlite3.Connection) -> Device | None:
            done = c.execute(
                f"INSERT INTO devices ({_COLUMNS}, code_hash) VALUES (?,?,?,?,'active',0,?,?,?,?) "
                "ON CONFLICT (tenant, device_id) DO NOTHING",
                (tenant, device_id, device_name, branch_id, now, now, until, code_hash)).rowcount
            return Device(tenant, device_id, device_name, branch_id, "active", 0, now, now, until) if done else None

        return await self._transaction(tx)

    async def get_device(self, tenant: str, device_id: str) -> Device | None:
        row = await self._run(
            lambda c: c.execute(
                f"SELECT {_READ} FROM devices WHERE tenant=? AND device_id=?", (tenant, device_id)
            ).fetchone()
        )
        return _device(row) if row else None

    async def list_devices(self, tenant: str) -> list[Device]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {_READ} FROM devices WHERE tenant=? ORDER BY device_id", (tenant,)
            ).fetchall()
        )
        return [_device(r) for r in rows]

    async def set_device_status(self, tenant: str, device_id: str, status: DeviceStatus, now: float) -> Device:
        def tx(c: sqlite3.Connection) -> Device:
            c.execute(
                f"INSERT INTO devices ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,0) "
                "ON CONFLICT (tenant, device_id) DO UPDATE SET status=excluded.status, updated_at=excluded.updated_at",
                (tenant, device_id, "", "", status, 0, now, now),
            )
            row = c.execute(
                f"SELECT {_READ} FROM devices WHERE tenant=? AND device_id=?", (tenant, device_id)
            ).fetchone()
            return _device(row)

        return await self._transaction(tx)

    async def touch_device(self, tenant: str, device_id: str, seen: float, sale: float) -> None:
        await self._transaction(lambda c: c.execute(
            "UPDATE devices SET last_seen=max(last_seen, ?), last_sale=max(last_sale, ?) WHERE tenant=? AND device_id=?",
            (seen, sale, tenant, device_id)))

    async def delete_device(self, tenant: str, device_id: str) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            return c.execute("DELETE FROM devices WHERE tenant=? AND device_id=?", (tenant, device_id)).rowcount > 0

        return await self._transaction(tx)

    async def claim_idempotency(
        self, tenant: str, device: str, key: str, fingerprint: str, now: float, lease: float, ttl: float, owner: str
    ) -> tuple[bool, IdempotencyRecord | None]:
        def tx(c: sqlite3.Connection) -> tuple[bool, IdempotencyRecord | None]:
            c.execute("DELETE FROM idempotency WHERE expires_at <= ?", (now,))
            row = c.execute(
                "SELECT fingerprint, state, status, body, lease_until FROM idempotency "
                "WHERE tenant=? AND device=? AND key=?",
                (tenant, device, key),
            ).fetchone()
            if row is None:
                c.execute(
                    "INSERT INTO idempotency VALUES (?,?,?,?,'in_progress',NULL,NULL,?,?,?)",
                    (tenant, device, key, fingerprint, now + lease, now + ttl, owner),
                )
                result: tuple[bool, IdempotencyRecord | None] = (True, None)
            else:
                record = IdempotencyRecord(row[0], row[1], row[2], row[3])
                if row[1] == "in_progress" and row[4] <= now and row[0] == fingerprint:
                    c.execute(
                        "UPDATE idempotency SET lease_until=?, owner=? WHERE tenant=? AND device=? AND key=?",
                        (now + lease, owner, tenant, device, key),
                    )
                    result = (True, record)
                else:
                    result = (False, record)
            return result

        return await self._transaction(tx)

    async def complete_idempotency(self, tenant: str, device: str, key: str, status: int, body: bytes, owner: str) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE idempotency SET state='completed', status=?, body=? "
                "WHERE tenant=? AND device=? AND key=? AND state='in_progress' AND owner=?",
                (status, body, tenant, device, key, owner),
            )
        )

    async def release_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        await self._run(
            lambda c: c.execute(
                "DELETE FROM idempotency WHERE tenant=? AND device=? AND key=? AND state='in_progress' AND owner=?",
                (tenant, device, key, owner),
            )
        )

    async def renew_idempotency(self, tenant: str, device: str, key: str, owner: str, until: float) -> bool:
        renewed: bool = await self._run(
            lambda c: c.execute(
                "UPDATE idempotency SET lease_until=? "
                "WHERE tenant=? AND device=? AND key=? AND state='in_progress' AND owner=?",
                (until, tenant, device, key, owner),
            ).rowcount == 1
        )
        return renewed

    async def abandon_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        await self._run(
            lambda c: c.execute(
                "UPDATE idempotency SET lease_until=0 "
                "WHERE tenant=? AND device=? AND key=? AND state='in_progress' AND owner=?",
                (tenant, device, key, owner),
            )
        )

    async def save_closure(self, tenant: str, closure_id: str, body: bytes, now: float) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT OR REPLACE INTO closures VALUES (?,?,?,?)", (tenant, closure_id, body, now)
            )
        )

    async def get_closure(self, tenant: str, closure_id: str) -> bytes | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT body FROM closures WHERE tenant=? AND closure_id=?", (tenant, closure_id)
            ).fetchone()
        )
        return bytes(row[0]) if row else None


def _in_transaction(c: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    c.execute("BEGIN IMMEDIATE")
    try:
        result = fn(c)
    except BaseException:
        c.execute("ROLLBACK")
        raise
    c.execute("COMMIT")
    return result


def _enable_wal(c: sqlite3.Connection, wait: float = 10.0) -> None:
    """Switch the file to WAL (a no-op once it is), retrying for up to `wait` s.

    The switch needs the file to itself; on a file not yet in WAL (a new one, or one of
    an early build) opened by two processes at once, SQLite answers SQLITE_BUSY at once
    rather than call the busy handler, which could deadlock there, so wait here."""
    deadline = time.monotonic() + wait
    while True:
        try:
            c.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _device(row: Any) -> Device:
    return Device(row[0], row[1], row[2], row[3], row[4], int(row[5]), float(row[6]), float(row[7]), float(row[8]),
                  float(row[9]), float(row[10]))
