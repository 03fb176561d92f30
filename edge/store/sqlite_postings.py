"""The posting records in SQLite: one row per (tenant, reference), claimed in one
`BEGIN IMMEDIATE` transaction so that two processes never both own a posting."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from edge.store.base import ClaimResult, Posting, SettleOutcome

# Schema version 1 (edge/store/sqlite_schema.py): frozen, files in the field hold it.
# Change a table with a new migration there, not here.
POSTINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS postings (
    tenant TEXT NOT NULL,
    reference TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('posting', 'posted', 'unknown')),
    owner TEXT NOT NULL DEFAULT '',
    lease_until REAL NOT NULL DEFAULT 0,
    invoice TEXT,
    unknown_since REAL NOT NULL DEFAULT 0,
    expires_at REAL NOT NULL,
    PRIMARY KEY (tenant, reference)
);
CREATE INDEX IF NOT EXISTS postings_expiry ON postings (expires_at);
"""


class SqlitePostings:
    """Posting-record methods of SqliteStore (it provides `_run` and `_transaction`)."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def claim_posting(self, tenant: str, reference: str, fingerprint: str, owner: str, now: float, lease: float,
                            ttl: float) -> tuple[ClaimResult, Posting | None]:
        def tx(c: sqlite3.Connection) -> tuple[ClaimResult, Posting | None]:
            c.execute("DELETE FROM postings WHERE expires_at <= ?", (now,))
            row = c.execute(
                "SELECT fingerprint, state, lease_until, invoice, unknown_since FROM postings WHERE tenant=? AND reference=?",
                (tenant, reference),
            ).fetchone()
            if row is None:
                c.execute("INSERT INTO postings VALUES (?,?,?,'posting',?,?,NULL,0,?)",
                          (tenant, reference, fingerprint, owner, now + lease, now + ttl))
                return "new", None
            stored, state, lease_until, invoice, since = row
            record = Posting(stored, state, invoice, since)
            if stored != fingerprint:
                return "conflict", record
            if state == "posted":
                return "posted", record
            if state == "posting" and lease_until > now:
                return "busy", record
            # unknown, or a holder whose lease ran out: it may have sent until its lease ended
            since = since if state == "unknown" else max(since, lease_until)
            c.execute("UPDATE postings SET state='posting', owner=?, lease_until=?, unknown_since=?, expires_at=? "
                      "WHERE tenant=? AND reference=?", (owner, now + lease, since, now + ttl, tenant, reference))
            return "taken_over", Posting(stored, "unknown", invoice, since)

        result: tuple[ClaimResult, Posting | None] = await self._transaction(tx)
        return result

    async def renew_posting(self, tenant: str, reference: str, owner: str, until: float) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            return c.execute("UPDATE postings SET lease_until=? WHERE tenant=? AND reference=? AND owner=? "
                             "AND state='posting'", (until, tenant, reference, owner)).rowcount == 1

        renewed: bool = await self._run(tx)
        return renewed

    async def settle_posting(self, tenant: str, reference: str, owner: str, outcome: SettleOutcome, *,
                             invoice: str | None = None, unknown_since: float = 0.0, now: float, ttl: float) -> bool:
        def tx(c: sqlite3.Connection) -> bool:
            mine = (tenant, reference, owner)
            if outcome == "not_posted":
                cur = c.execute("DELETE FROM postings WHERE tenant=? AND reference=? AND owner=? AND state='posting'", mine)
            elif outcome == "posted":
                cur = c.execute("UPDATE postings SET state='posted', invoice=?, owner='', lease_until=0, unknown_since=0, "
                                "expires_at=? WHERE tenant=? AND reference=? AND owner=? AND state='posting'",
                                (invoice, now + ttl, *mine))
            else:
                cur = c.execute("UPDATE postings SET state='unknown', owner='', lease_until=0, unknown_since=?, "
                                "expires_at=? WHERE tenant=? AND reference=? AND owner=? AND state='posting'",
                                (unknown_since, now + ttl, *mine))
            return cur.rowcount == 1

        settled: bool = await self._run(tx)
        return settled
