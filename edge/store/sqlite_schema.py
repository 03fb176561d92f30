"""The SQLite file's schema version (`PRAGMA user_version`) and the migrations that
bring an older file forward when a store opens it.

MIGRATIONS[i] takes a file from version i to version i + 1. Version 1 is the schema
of release 0.1.0, which never set user_version, so its files read 0, like a new
file: migration 1 creates whatever table or index is missing (all of them in a new
file, none in a 0.1.0 file) and adds the device columns 0.1.0 itself added to files
of earlier builds. The CREATE statements it runs (SCHEMA, QUEUE_SCHEMA,
POSTINGS_SCHEMA) are therefore frozen: files in the field already hold them, and
`IF NOT EXISTS` would not change an existing table. A later change to a table is a
new function appended to MIGRATIONS, never an edit of those statements.

Version 2 adds the master data tables (MASTERDATA_SCHEMA, plain CREATE: a file reaches
it exactly once). Once released, its statements are frozen in the same way.

Version 3 adds the event log tables (EVENTS_SCHEMA: events, events_state), the same way.

Version 4 adds the admin audit log (AUDIT_SCHEMA: audit), the same way. Version 5 adds
the devices' last_seen and last_sale columns.

Version 6 adds the sync queue's device lanes (LANES_SCHEMA: sync_lanes, filled from the
jobs already queued, and the per-device due index sync_jobs_device_due) and the live
demand marks (LIVE_SCHEMA: live_marks), the same way.

A file whose version is newer than MIGRATIONS knows was upgraded by a newer
pos-edge; it is refused (SchemaTooNew), since this code could misread or damage it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence

from edge.store.base import StoreUnusable
from edge.store.sqlite_audit import AUDIT_SCHEMA
from edge.store.sqlite_events import EVENTS_SCHEMA
from edge.store.sqlite_live import LIVE_SCHEMA
from edge.store.sqlite_masterdata import MASTERDATA_SCHEMA
from edge.store.sqlite_queue import FILL_LANES, LANES_SCHEMA

Migration = Callable[[sqlite3.Connection], None]

# Columns 0.1.0 added to tables released before them (part of version 1).
_V1_ADDED_COLUMNS = {
    "devices": {"code_hash": "TEXT NOT NULL DEFAULT ''", "code_until": "REAL NOT NULL DEFAULT 0",
                "proof_jti": "TEXT NOT NULL DEFAULT ''"},
}


class SchemaTooNew(StoreUnusable):
    """The SQLite file was upgraded by a newer pos-edge than this one."""

    def __init__(self, path: str, found: int, known: int) -> None:
        self.path, self.found, self.known = path, found, known
        super().__init__(
            f"{path or 'the SQLite database'} has schema version {found}, newer than this pos-edge knows "
            f"(up to {known}): a newer release upgraded it. Run that release or a newer one, or restore the copy "
            "taken before the upgrade; this one refuses to open it rather than misread or damage it"
        )


def _v1(c: sqlite3.Connection) -> None:
    """Version 1: the tables of release 0.1.0."""
    # Imported here: edge.store.sqlite imports this module.
    from edge.store.sqlite import SCHEMA
    from edge.store.sqlite_postings import POSTINGS_SCHEMA
    from edge.store.sqlite_queue import QUEUE_SCHEMA

    for statement in _statements(SCHEMA + QUEUE_SCHEMA + POSTINGS_SCHEMA):
        c.execute(statement)
    for table, columns in _V1_ADDED_COLUMNS.items():
        have = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
        for name, ddl in columns.items():
            if name not in have:
                c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {ddl}")


def _v2(c: sqlite3.Connection) -> None:
    """Version 2: master data kept for tills (md_rows, md_state)."""
    for statement in _statements(MASTERDATA_SCHEMA):
        c.execute(statement)


def _v3(c: sqlite3.Connection) -> None:
    """Version 3: the event log for tills (events, events_state)."""
    for statement in _statements(EVENTS_SCHEMA):
        c.execute(statement)


def _v4(c: sqlite3.Connection) -> None:
    """Version 4: the admin audit log (audit)."""
    for statement in _statements(AUDIT_SCHEMA):
        c.execute(statement)


def _v5(c: sqlite3.Connection) -> None:
    """Version 5: when each device was last seen and last sold (for the admin's views)."""
    c.execute("ALTER TABLE devices ADD COLUMN last_seen REAL NOT NULL DEFAULT 0")
    c.execute("ALTER TABLE devices ADD COLUMN last_sale REAL NOT NULL DEFAULT 0")


def _v6(c: sqlite3.Connection) -> None:
    """Version 6: round-robin claims across a tenant's devices (sync_lanes, a lane for
    each device with queued jobs now) and live demand marks (live_marks)."""
    for statement in _statements(LANES_SCHEMA + FILL_LANES + LIVE_SCHEMA):
        c.execute(statement)


MIGRATIONS: list[Migration] = [_v1, _v2, _v3, _v4, _v5, _v6]


def current_version() -> int:
    """The schema version this code writes (and the newest it can open)."""
    return len(MIGRATIONS)


def upgrade(conn: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the file open on `conn` (autocommit, no transaction pending) up to the last
    of `migrations` (default MIGRATIONS) and return that version.

    One BEGIN IMMEDIATE transaction reads user_version, runs every migration above it
    in order and sets user_version: a second process opening the same file meanwhile
    waits for the write lock, then finds the work done; a migration that fails leaves
    the file as it was. Raises SchemaTooNew if the file is newer than `migrations`.
    """
    steps = MIGRATIONS if migrations is None else migrations
    target = len(steps)
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > target:
            raise SchemaTooNew(_file_of(conn), found, target)
        for migrate in steps[found:]:
            migrate(conn)
        if found != target:
            # PRAGMA takes no parameters; target is an int we computed.
            conn.execute(f"PRAGMA user_version = {target:d}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return target


def _statements(script: str) -> Iterator[str]:
    """The statements of `script`, one at a time: executescript() would COMMIT the
    migration's transaction before running them."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]}")


def _file_of(conn: sqlite3.Connection) -> str:
    """The path of the main database on `conn` ("" in memory), for messages."""
    return str(conn.execute("PRAGMA database_list").fetchone()[2] or "")
