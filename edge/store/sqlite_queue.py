"""The offline-sync queue in SQLite: jobs with lease columns, batches, their order.

Claims run in one `BEGIN IMMEDIATE` transaction per call, so two processes on one
file never lease the same job. Within a tenant a claim goes round-robin across
devices: `sync_lanes` holds a lane per device with queued jobs and the turn it was
last served at, so a till with thousands of queued sales does not hold back
another's ten, and the rotation is shared by every worker on the file. A partial
index per (tenant, device) makes each lane's next due job an index probe however
long the queue is.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from edge.sync.jobs import Batch, Enqueued, Job, JobUpdate, NewJob

# Schema version 1 (edge/store/sqlite_schema.py): frozen, files in the field hold it.
# Change a table with a new migration there, not here.
QUEUE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_jobs (
    job_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    device TEXT NOT NULL,
    batch_uuid TEXT NOT NULL,
    client_txn_id TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('sale', 'return', 'closure')),
    payload BLOB NOT NULL,
    fingerprint TEXT NOT NULL,
    reference TEXT NOT NULL,
    depends_on TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending', 'retrying', 'synced', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    invoice_id TEXT,
    last_error TEXT,
    next_attempt_at REAL NOT NULL,
    lease_until REAL NOT NULL DEFAULT 0,
    owner TEXT NOT NULL DEFAULT '',
    unknown INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    UNIQUE (tenant, device, client_txn_id)
);
CREATE INDEX IF NOT EXISTS sync_jobs_due ON sync_jobs (tenant, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX IF NOT EXISTS sync_jobs_leased ON sync_jobs (tenant, lease_until) WHERE owner != '';
CREATE INDEX IF NOT EXISTS sync_jobs_failed ON sync_jobs (tenant, updated_at) WHERE status = 'failed';
CREATE INDEX IF NOT EXISTS sync_jobs_synced ON sync_jobs (tenant, updated_at) WHERE status = 'synced';
CREATE TABLE IF NOT EXISTS sync_batches (
    batch_uuid TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    device TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_batch_jobs (
    batch_uuid TEXT NOT NULL,
    position INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (batch_uuid, position)
);
CREATE INDEX IF NOT EXISTS sync_batch_jobs_job ON sync_batch_jobs (job_id);
CREATE INDEX IF NOT EXISTS sync_batches_age ON sync_batches (tenant, created_at);
"""
# Schema version 6 (edge/store/sqlite_schema.py): frozen once released. A lane per
# (tenant, device) with pending or retrying jobs; a claim serves the lowest turn first.
LANES_SCHEMA = """
CREATE TABLE sync_lanes (
    tenant TEXT NOT NULL,
    device TEXT NOT NULL,
    turn INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, device)
);
CREATE INDEX sync_jobs_device_due ON sync_jobs (tenant, device, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
"""
# Lanes for the jobs already queued in a file that had none (run once, by migration 6).
FILL_LANES = """
INSERT OR IGNORE INTO sync_lanes (tenant, device)
    SELECT DISTINCT tenant, device FROM sync_jobs WHERE status IN ('pending', 'retrying');
"""
_JOB_COLUMNS = (
    "job_id, tenant, device, batch_uuid, client_txn_id, type, payload, fingerprint, reference, depends_on, status, "
    "attempts, invoice_id, last_error, next_attempt_at, lease_until, owner, unknown, created_at, updated_at"
)
_NAMES = [c.strip() for c in _JOB_COLUMNS.split(",")]


def _job(row: Any) -> Job:
    return Job.from_fields(dict(zip(_NAMES, row, strict=True)))


class SqliteQueue:
    """Queue methods of SqliteStore (it provides `_run` and `_transaction`)."""

    _run: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _transaction: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def enqueue_batch(self, tenant: str, device: str, batch_uuid: str, jobs: list[NewJob], now: float) -> Enqueued:
        def tx(c: sqlite3.Connection) -> Enqueued:
            ids: list[str] = []
            conflicts: list[int] = []
            fresh: list[NewJob] = []
            for i, job in enumerate(jobs):
                row = c.execute(
                    "SELECT job_id, fingerprint FROM sync_jobs WHERE tenant=? AND device=? AND client_txn_id=?",
                    (tenant, device, job.client_txn_id),
                ).fetchone()
                if row is None:
                    ids.append(job.job_id)
                    fresh.append(job)
                elif row[1] != job.fingerprint:
                    conflicts.append(i)
                else:
                    ids.append(row[0])
            if conflicts:
                return Enqueued([], 0, conflicts)
            sales = {j.client_txn_id: j.job_id for j in fresh if j.type == "sale"}
            for job in fresh:
                depends = ""
                if job.type == "return" and job.return_against:
                    depends = sales.get(job.return_against) or _sale_job(c, tenant, device, job.return_against)
                c.execute(
                    f"INSERT INTO sync_jobs ({_JOB_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,'pending',0,NULL,NULL,?,0,'',0,?,?)",
                    (job.job_id, tenant, device, batch_uuid, job.client_txn_id, job.type, job.payload, job.fingerprint,
                     job.reference, depends, now, now, now),
                )
            if fresh:  # a device new to the queue (or back to it) starts at the front
                c.execute("INSERT OR IGNORE INTO sync_lanes (tenant, device, turn) VALUES (?,?,0)", (tenant, device))
            c.execute("INSERT INTO sync_batches VALUES (?,?,?,?)", (batch_uuid, tenant, device, now))
            c.executemany("INSERT INTO sync_batch_jobs VALUES (?,?,?)", [(batch_uuid, i, j) for i, j in enumerate(ids)])
            return Enqueued(ids, len(fresh), [])

        result: Enqueued = await self._transaction(tx)
        return result

    async def get_batch(self, tenant: str, batch_uuid: str) -> Batch | None:
        def read(c: sqlite3.Connection) -> Batch | None:
            head = c.execute(
                "SELECT device, created_at FROM sync_batches WHERE batch_uuid=? AND tenant=?", (batch_uuid, tenant)
            ).fetchone()
            if head is None:
                return None
            rows = c.execute(
                f"SELECT {', '.join('j.' + n for n in _NAMES)} FROM sync_batch_jobs b JOIN sync_jobs j USING (job_id) "
                "WHERE b.batch_uuid=? ORDER BY b.position",
                (batch_uuid,),
            ).fetchall()
            return Batch(batch_uuid, tenant, head[0], float(head[1]), [_job(r) for r in rows])

        batch: Batch | None = await self._run(read)
        return batch

    async def get_job(self, tenant: str, job_id: str) -> Job | None:
        row = await self._run(
            lambda c: c.execute(f"SELECT {_JOB_COLUMNS} FROM sync_jobs WHERE job_id=? AND tenant=?", (job_id, tenant)).fetchone()
        )
        return _job(row) if row else None

    async def claim_jobs(self, rooms: dict[str, int], now: float, owner: str, lease: float, cap: int,
                         leased: dict[str, int] | None = None) -> list[Job]:
        def due(c: sqlite3.Connection) -> bool:
            # Due jobs include those whose lease ran out (they were due when claimed).
            marks = ",".join("?" * len(rooms))
            return c.execute(
                f"SELECT 1 FROM sync_jobs WHERE tenant IN ({marks}) AND status IN ('pending', 'retrying') "
                "AND next_attempt_at <= ? LIMIT 1", (*rooms, now)
            ).fetchone() is not None

        # An idle worker asks often: look without the write lock first.
        if not rooms or not await self._run(due):
            return []

        def tx(c: sqlite3.Connection) -> list[Job]:
            claimed: list[Job] = []
            for tenant, room in rooms.items():
                held = c.execute(
                    "SELECT count(*) FROM sync_jobs WHERE tenant=? AND owner != '' AND lease_until > ?", (tenant, now)
                ).fetchone()[0]
                take = min(room, cap - held)
                mine = _claim_tenant(c, tenant, take, now, owner, lease) if take > 0 else []
                claimed += mine
                if leased is not None:
                    leased[tenant] = held + len(mine)
            return claimed

        jobs: list[Job] = await self._transaction(tx)
        return jobs

    async def renew_leases(self, owner: str, jobs: list[tuple[str, str]], until: float) -> list[str]:
        def tx(c: sqlite3.Connection) -> list[str]:
            lost = []
            for _tenant, job_id in jobs:
                cur = c.execute("UPDATE sync_jobs SET lease_until=? WHERE job_id=? AND owner=?", (until, job_id, owner))
                if cur.rowcount == 0:
                    lost.append(job_id)
            return lost

        lost: list[str] = await self._transaction(tx)
        return lost

    async def settle_job(self, tenant: str, job_id: str, owner: str, update: JobUpdate, now: float) -> bool:
        # No lane to restore for a job queued again: a leased job is still pending or retrying,
        # and a claim drops only the lane of a device with none of those left.
        def tx(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE sync_jobs SET status=?, attempts=attempts+?, invoice_id=coalesce(?, invoice_id), last_error=?, "
                "next_attempt_at=?, unknown=?, owner='', lease_until=0, updated_at=? "
                "WHERE job_id=? AND tenant=? AND owner=? AND owner != ''",
                (update.status, int(update.attempted), update.invoice_id, update.last_error, update.next_attempt_at,
                 int(update.unknown), now, job_id, tenant, owner),
            )
            return cur.rowcount == 1

        done: bool = await self._run(tx)
        return done

    async def failed_jobs(self, tenant: str) -> list[Job]:
        rows = await self._run(
            lambda c: c.execute(
                f"SELECT {_JOB_COLUMNS} FROM sync_jobs WHERE tenant=? AND status='failed' ORDER BY updated_at", (tenant,)
            ).fetchall()
        )
        return [_job(r) for r in rows]

    async def queue_stats(self, tenants: list[str], now: float) -> dict[str, dict[str, float]]:
        def read(c: sqlite3.Connection) -> dict[str, dict[str, float]]:
            stats = {t: {"queued": 0.0, "in_flight": 0.0, "failed": 0.0, "oldest_due_age": 0.0} for t in tenants}
            for tenant, leased, total, oldest in c.execute(
                "SELECT tenant, sum(owner != '' AND lease_until > ?), count(*), min(next_attempt_at) FROM sync_jobs "
                "WHERE status IN ('pending', 'retrying') GROUP BY tenant", (now,)
            ):
                if tenant in stats:
                    stats[tenant].update(queued=total - leased, in_flight=leased, oldest_due_age=max(0.0, now - oldest))
            for tenant, failed in c.execute(
                "SELECT tenant, count(*) FROM sync_jobs WHERE status = 'failed' GROUP BY tenant"
            ):
                if tenant in stats:
                    stats[tenant]["failed"] = failed
            return stats

        stats: dict[str, dict[str, float]] = await self._run(read)
        return stats

    async def device_queue_stats(self, tenant: str, now: float) -> dict[str, dict[str, float]]:
        def read(c: sqlite3.Connection) -> dict[str, dict[str, float]]:
            stats: dict[str, dict[str, float]] = {}

            def of(device: str) -> dict[str, float]:
                return stats.setdefault(device, {"queued": 0.0, "in_flight": 0.0, "failed": 0.0, "oldest_due_age": 0.0})

            for device, leased, total, oldest in c.execute(
                "SELECT device, sum(owner != '' AND lease_until > ?), count(*), min(next_attempt_at) FROM sync_jobs "
                "WHERE tenant=? AND status IN ('pending', 'retrying') GROUP BY device", (now, tenant)
            ):
                of(device).update(queued=total - leased, in_flight=leased, oldest_due_age=max(0.0, now - oldest))
            for device, failed in c.execute(
                "SELECT device, count(*) FROM sync_jobs WHERE tenant=? AND status = 'failed' GROUP BY device", (tenant,)
            ):
                of(device)["failed"] = failed
            return stats

        result: dict[str, dict[str, float]] = await self._run(read)
        return result

    async def purge_synced(self, tenant: str, before: float, limit: int) -> int:
        def tx(c: sqlite3.Connection) -> int:
            ids = [r[0] for r in c.execute(
                "SELECT job_id FROM sync_jobs WHERE tenant=? AND status='synced' AND updated_at < ? LIMIT ?",
                (tenant, before, limit),
            )]
            c.executemany("DELETE FROM sync_jobs WHERE job_id=?", [(i,) for i in ids])
            old = [r[0] for r in c.execute(
                "SELECT batch_uuid FROM sync_batches b WHERE tenant=? AND created_at < ? AND NOT EXISTS "
                "(SELECT 1 FROM sync_batch_jobs x JOIN sync_jobs j USING (job_id) WHERE x.batch_uuid = b.batch_uuid)",
                (tenant, before),
            )]
            c.executemany("DELETE FROM sync_batch_jobs WHERE batch_uuid=?", [(b,) for b in old])
            c.executemany("DELETE FROM sync_batches WHERE batch_uuid=?", [(b,) for b in old])
            return len(ids)

        n: int = await self._transaction(tx)
        return n

    async def requeue_failed(self, tenant: str, job_ids: list[str], now: float) -> int:
        def tx(c: sqlite3.Connection) -> int:
            n = 0
            for job_id in job_ids:
                done = c.execute(
                    "UPDATE sync_jobs SET status='pending', attempts=0, next_attempt_at=?, updated_at=? "
                    "WHERE job_id=? AND tenant=? AND status='failed'",
                    (now, now, job_id, tenant),
                ).rowcount
                if done:
                    _lane_for(c, tenant, job_id)
                n += done
            return n

        n: int = await self._transaction(tx)
        return n


def _sale_job(c: sqlite3.Connection, tenant: str, device: str, client_txn_id: str) -> str:
    row = c.execute(
        "SELECT job_id FROM sync_jobs WHERE tenant=? AND device=? AND client_txn_id=? AND type='sale'",
        (tenant, device, client_txn_id),
    ).fetchone()
    return str(row[0]) if row else ""


def _claim_tenant(c: sqlite3.Connection, tenant: str, take: int, now: float, owner: str, lease: float) -> list[Job]:
    """Lease up to `take` of the tenant's due jobs, round-robin across its devices' lanes.

    Lanes are walked least recently served first (lowest turn; a new lane has 0), one
    due job each per pass; a served lane gets the tenant's next turn and goes to the
    back, so the next claim, by any worker, carries on where this one stopped. A lane
    with no due job keeps its turn (it is first when its jobs fall due); one whose
    device has no queued job left is dropped."""
    lanes = deque(d for (d,) in c.execute("SELECT device FROM sync_lanes WHERE tenant=? ORDER BY turn, device", (tenant,)))
    turn = int(c.execute("SELECT coalesce(max(turn), 0) FROM sync_lanes WHERE tenant=?", (tenant,)).fetchone()[0])
    claimed: list[Job] = []
    while lanes and len(claimed) < take:
        device = lanes.popleft()
        row = c.execute(
            f"SELECT {_JOB_COLUMNS} FROM sync_jobs WHERE tenant=? AND device=? AND status IN ('pending', 'retrying') "
            "AND next_attempt_at <= ? AND (owner = '' OR lease_until <= ?) ORDER BY next_attempt_at, rowid LIMIT 1",
            (tenant, device, now, now),
        ).fetchone()
        if row is None:
            if c.execute("SELECT 1 FROM sync_jobs WHERE tenant=? AND device=? AND status IN ('pending', 'retrying') "
                         "LIMIT 1", (tenant, device)).fetchone() is None:
                c.execute("DELETE FROM sync_lanes WHERE tenant=? AND device=?", (tenant, device))
            continue
        claimed.append(_lease(c, _job(row), now, owner, lease))
        turn += 1
        c.execute("UPDATE sync_lanes SET turn=? WHERE tenant=? AND device=?", (turn, tenant, device))
        lanes.append(device)
    if len(claimed) < take:
        # Jobs of a device with no lane (there should be none): claimed rather than stranded, and given a lane.
        for row in c.execute(
            f"SELECT {_JOB_COLUMNS} FROM sync_jobs WHERE tenant=? AND status IN ('pending', 'retrying') "
            "AND next_attempt_at <= ? AND (owner = '' OR lease_until <= ?) ORDER BY next_attempt_at, rowid LIMIT ?",
            (tenant, now, now, take - len(claimed)),
        ).fetchall():
            job = _lease(c, _job(row), now, owner, lease)
            turn += 1
            c.execute("INSERT OR IGNORE INTO sync_lanes (tenant, device, turn) VALUES (?,?,?)", (tenant, job.device, turn))
            claimed.append(job)
    return claimed


def _lease(c: sqlite3.Connection, job: Job, now: float, owner: str, lease: float) -> Job:
    # A lease that ran out: its worker died mid-attempt, so the outcome is unknown.
    unknown = job.unknown or bool(job.owner)
    c.execute("UPDATE sync_jobs SET owner=?, lease_until=?, unknown=? WHERE job_id=?",
              (owner, now + lease, int(unknown), job.job_id))
    return replace(job, owner=owner, lease_until=now + lease, unknown=unknown)


def _lane_for(c: sqlite3.Connection, tenant: str, job_id: str) -> None:
    """Give the device of a job queued again a lane, at the front, unless it has one."""
    c.execute("INSERT OR IGNORE INTO sync_lanes (tenant, device, turn) SELECT tenant, device, 0 FROM sync_jobs "
              "WHERE job_id=? AND tenant=?", (job_id, tenant))
