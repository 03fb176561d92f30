"""The queue's records: a job per till transaction, a batch per upload.

A job is keyed by (tenant, device, client_txn_id): uploading a transaction again
points at the job that already exists instead of making a second one.

Job states: `pending` (never tried) -> `retrying` (a transient failure, waiting
for its next attempt) -> `synced`, or `failed` (ERPNext refused it, or
`max_attempts` transient failures). Whether a job is being posted right now is
its lease (`owner`, `lease_until`), not a state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

JobType = Literal["sale", "return", "closure"]
JobStatus = Literal["pending", "retrying", "synced", "failed"]
BatchStatus = Literal["pending", "processing", "partial", "synced", "failed"]
QUEUED: frozenset[str] = frozenset({"pending", "retrying"})
FINAL: frozenset[str] = frozenset({"synced", "failed"})


@dataclass(frozen=True)
class NewJob:
    """A validated transaction of an upload, before the store has it."""

    job_id: str
    client_txn_id: str
    type: JobType
    payload: bytes  # the validated payload as JSON (Decimals as strings)
    fingerprint: str
    reference: str
    # a return's return_against: if it is the client_txn_id of a sale the store
    # knows for this device, the return waits for that sale
    return_against: str = ""


@dataclass(frozen=True)
class Job:
    """A queued transaction as the store holds it."""

    job_id: str
    tenant: str
    device: str
    batch_uuid: str
    client_txn_id: str
    type: JobType
    payload: bytes
    fingerprint: str
    reference: str
    depends_on: str  # job id of the sale a return waits for, or ""
    status: JobStatus
    attempts: int
    invoice_id: str | None
    last_error: str | None
    next_attempt_at: float
    lease_until: float
    owner: str
    unknown: bool  # the last attempt's outcome is unknown: look in ERPNext before posting
    created_at: float
    updated_at: float

    def in_flight(self, now: float) -> bool:
        """Claimed by a live worker right now."""
        return bool(self.owner) and self.lease_until > now

    @classmethod
    def from_fields(cls, f: dict[str, Any]) -> Job:
        """Build from a column/field mapping (SQLite row or Redis hash, values as stored)."""
        def text(key: str) -> str:
            v = f.get(key)
            return v.decode() if isinstance(v, bytes) else ("" if v is None else str(v))

        payload = f["payload"]
        return cls(
            job_id=text("job_id"),
            tenant=text("tenant"),
            device=text("device"),
            batch_uuid=text("batch_uuid"),
            client_txn_id=text("client_txn_id"),
            type=text("type"),  # type: ignore[arg-type]
            payload=payload if isinstance(payload, bytes) else str(payload).encode(),
            fingerprint=text("fingerprint"),
            reference=text("reference"),
            depends_on=text("depends_on"),
            status=text("status"),  # type: ignore[arg-type]
            attempts=int(text("attempts") or 0),
            invoice_id=text("invoice_id") or None,
            last_error=text("last_error") or None,
            next_attempt_at=float(text("next_attempt_at") or 0),
            lease_until=float(text("lease_until") or 0),
            owner=text("owner"),
            unknown=text("unknown") not in ("", "0", "False"),
            created_at=float(text("created_at") or 0),
            updated_at=float(text("updated_at") or 0),
        )


@dataclass(frozen=True)
class JobUpdate:
    """How an attempt ended, applied by `Store.settle_job`.

    `attempted=False` (a return still waiting for its sale) leaves the attempt
    count alone.
    """

    status: JobStatus
    next_attempt_at: float = 0.0
    invoice_id: str | None = None
    last_error: str | None = None
    unknown: bool = False
    attempted: bool = True


@dataclass(frozen=True)
class Batch:
    """An upload: who sent it and its jobs, in upload order."""

    batch_uuid: str
    tenant: str
    device: str
    created_at: float
    jobs: list[Job]


@dataclass(frozen=True)
class Enqueued:
    """What `Store.enqueue_batch` did: the batch's job ids (in upload order), how
    many jobs are new, and the positions whose client_txn_id the store already
    holds with a different payload (then nothing was written)."""

    job_ids: list[str]
    enqueued: int
    conflicts: list[int]


def batch_status(jobs: list[Job], now: float) -> BatchStatus:
    """One word for a batch: nothing started, under way, or how it ended."""
    states = Counter(j.status for j in jobs)
    if states["synced"] + states["failed"] == len(jobs):
        if states["failed"] == 0:
            return "synced"
        return "failed" if states["synced"] == 0 else "partial"
    if all(j.status == "pending" and j.attempts == 0 and not j.in_flight(now) for j in jobs):
        return "pending"
    return "processing"


def summary(jobs: list[Job]) -> dict[str, int]:
    """Jobs per state (every state named, zeros included)."""
    states = Counter(j.status for j in jobs)
    return {s: states[s] for s in ("pending", "retrying", "synced", "failed")}
