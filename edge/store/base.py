"""The Store protocol and the records it keeps. The store knows nothing of HTTP."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal, Protocol

from edge.store.audit import AuditLog
from edge.store.events import EventLog
from edge.store.masterdata import MasterdataStore
from edge.sync.jobs import Batch, Enqueued, Job, JobUpdate, NewJob

DeviceStatus = Literal["active", "blocked"]


@dataclass(frozen=True)
class Device:
    """A till registered with a tenant. `generation` increases at each registration
    (and at an admin reset): tokens of an older generation no longer verify."""

    tenant: str
    device_id: str
    device_name: str
    branch_id: str
    status: DeviceStatus
    generation: int
    registered_at: float
    updated_at: float
    code_until: float = 0.0  # a one-time enrollment code (admin reset) is valid until then; 0: none
    last_seen: float = 0.0  # its last authenticated request (written at most every DeviceDirectory.NOTE_EVERY s)
    last_sale: float = 0.0  # its last sale or return stored (live, or synced from its offline queue)

    def code_pending(self, now: float) -> bool:
        """An admin reset the device and its enrollment code is still valid."""
        return self.code_until > now


@dataclass(frozen=True)
class IdempotencyRecord:
    """What the store holds for an idempotency key (scoped per tenant and device)."""

    fingerprint: str
    state: Literal["in_progress", "completed"]
    status: int | None = None
    body: bytes | None = None


ClaimResult = Literal["new", "taken_over", "posted", "conflict", "busy"]
SettleOutcome = Literal["posted", "unknown", "not_posted"]


@dataclass(frozen=True)
class Posting:
    """The gateway's record of a transaction's posting to ERPNext, per (tenant, reference)."""

    fingerprint: str  # of the payload posted under this reference
    state: Literal["posting", "posted", "unknown"]
    invoice: str | None  # once posted
    unknown_since: float  # the last moment an attempt whose outcome is unknown may have sent it (0: none)


class DeviceBlocked(Exception):
    """Registration refused: an admin blocked this device."""


class DeviceProofRequired(Exception):
    """Registration refused: the device is registered and the request did not prove it
    is that device (its current token), nor bring an admin's enrollment code."""


class EnrollmentCodeInvalid(Exception):
    """Registration refused: the enrollment code is not this device's, was used, or expired."""


class StoreUnusable(Exception):
    """Store.open() refused the store: it answered, but its data is not this code's to use
    (e.g. a newer release upgraded it). Retrying will not help; the message says what will."""


REPLAY_WINDOW = 600.0  # seconds a re-registration can be repeated with the same proof (its answer was lost)


def check_registration(status: str, generation: int, stored_code_hash: str, code_until: float, now: float,
                       proven_generation: int | None, code_hash: str | None, *, proof_jti: str = "",
                       stored_proof_jti: str = "", updated_at: float = 0.0) -> bool:
    """Store.register_device's rule for a device in this state (stores that run it in
    Python call this inside their transaction; the Redis store's script mirrors it).
    True: a repeat of the last re-registration (same proof token, within REPLAY_WINDOW),
    whose answer the till may not have received: nothing changes, it gets a token again."""
    if status == "blocked":
        raise DeviceBlocked()
    if stored_code_hash:  # an admin reset it: only its enrollment code re-registers it
        if code_hash is not None and hmac.compare_digest(code_hash, stored_code_hash) and now <= code_until:
            return False
        raise EnrollmentCodeInvalid() if code_hash is not None else DeviceProofRequired()
    if code_hash is not None:  # no code was issued for this device
        raise EnrollmentCodeInvalid()
    if generation > 0 and proven_generation != generation:
        if (proven_generation == generation - 1 and proof_jti and proof_jti == stored_proof_jti
                and now - updated_at <= REPLAY_WINDOW):
            return True
        raise DeviceProofRequired()
    return False


class Store(MasterdataStore, EventLog, AuditLog, Protocol):
    """Durable gateway state. Every method is safe to call from many processes.
    The master data methods (md_*) are MasterdataStore's, the event log's (ev_*) EventLog's,
    the admin audit log's (audit_*) AuditLog's."""

    async def open(self) -> None:
        """Connect and create what is missing (tables, scripts)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...

    async def durability_warnings(self) -> list[str]:
        """Why a 2xx might not survive a crash of the store's host (empty when it would)."""
        ...

    async def register_device(
        self, tenant: str, device_id: str, device_name: str, branch_id: str, now: float, *,
        proven_generation: int | None = None, proof_jti: str = "", code_hash: str | None = None,
    ) -> Device:
        """Create a device, or re-register one, and bump its token generation, atomically.

        A device id never registered (or only blocked/unblocked by an admin) is created.
        An existing one is re-registered only when `proven_generation` is its current
        generation (the caller verified a token of it; `proof_jti` is that token's jti),
        or, after an admin reset, when `code_hash` is the sha256 of its enrollment code
        while valid (the code is then used up). The same proof again within REPLAY_WINDOW
        of its re-registration returns the device unchanged (the till lost the answer).
        Changing nothing, raises DeviceBlocked for a blocked device, EnrollmentCodeInvalid
        for a code that does not match, DeviceProofRequired otherwise.
        """
        ...

    async def reset_device(self, tenant: str, device_id: str, code_hash: str, until: float, now: float, *,
                           branch_id: str | None = None) -> Device | None:
        """Retire the device's tokens now (generation + 1) and let it re-register once with
        the enrollment code whose sha256 is `code_hash`, until `until`, into `branch_id` when
        given (a move: its tokens name the old branch) or its own; None if no such device.
        A registration with such a code keeps the device's stored branch."""
        ...

    async def provision_device(self, tenant: str, device_id: str, device_name: str, branch_id: str, code_hash: str,
                               until: float, now: float) -> Device | None:
        """Create a device not registered yet (generation 0) in `branch_id` that only the
        enrollment code whose sha256 is `code_hash` enrols, until `until`; None (and nothing
        changed) if the id exists."""
        ...

    async def get_device(self, tenant: str, device_id: str) -> Device | None:
        """The device, or None."""
        ...

    async def list_devices(self, tenant: str) -> list[Device]:
        """All devices of a tenant, ordered by id."""
        ...

    async def set_device_status(self, tenant: str, device_id: str, status: DeviceStatus, now: float) -> Device:
        """Block or unblock. Blocking an unknown id creates a blocked placeholder so it can never enrol."""
        ...

    async def touch_device(self, tenant: str, device_id: str, seen: float, sale: float) -> None:
        """Move the device's last_seen (and, when `sale` is not 0, last_sale) forward to these
        times, never back; nothing for an unknown device."""
        ...

    async def delete_device(self, tenant: str, device_id: str) -> bool:
        """Forget a device record (a mistyped id, a retired till); False if there was none.
        Its tokens stop working: a token is honoured only while its device's record exists."""
        ...

    async def claim_idempotency(
        self, tenant: str, device: str, key: str, fingerprint: str, now: float, lease: float, ttl: float, owner: str
    ) -> tuple[bool, IdempotencyRecord | None]:
        """Try to own `key` for a request (as `owner`); returns (owned, previous record).

        (True, None): a new key, now in progress under a lease of `lease` seconds.
        (True, record): an in-progress claim whose lease ran out (its holder died)
        with the same fingerprint, taken over: the earlier attempt's outcome is unknown.
        (False, record): someone holds or completed the key; the caller replays,
        waits, or refuses. Records expire `ttl` seconds after their claim.
        """
        ...

    async def complete_idempotency(self, tenant: str, device: str, key: str, status: int, body: bytes, owner: str) -> None:
        """Store the final response for replays (only while `owner` still holds the claim)."""
        ...

    async def release_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        """Forget `owner`'s in-progress claim (the request ended, known not to have posted anything)."""
        ...

    async def abandon_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        """End `owner`'s in-progress claim's lease now, keeping the record: the request ended with
        its outcome unknown, so the next claim takes it over and looks before posting."""
        ...

    async def renew_idempotency(self, tenant: str, device: str, key: str, owner: str, until: float) -> bool:
        """Extend `owner`'s in-progress claim to `until` (a live request renews its claim, so
        the lease can be short); False if it no longer holds it."""
        ...

    async def claim_posting(self, tenant: str, reference: str, fingerprint: str, owner: str, now: float, lease: float,
                            ttl: float) -> tuple[ClaimResult, Posting | None]:
        """Own the posting of `reference` (a transaction's `<device>/<client_txn_id>`) before
        sending it to ERPNext, for `lease` seconds (renew_posting extends it):

        ("new", None): nobody posted it: post. ("taken_over", p): an earlier attempt's
        outcome is unknown (settled so, or its holder's lease ran out); `p.unknown_since`
        says since when: look before posting. ("posted", p): posted as `p.invoice` with
        this fingerprint: post nothing. ("conflict", p): posted, or being posted, with
        another fingerprint. ("busy", p): another live attempt holds it. Records expire
        `ttl` seconds after their last change."""
        ...

    async def renew_posting(self, tenant: str, reference: str, owner: str, until: float) -> bool:
        """Extend `owner`'s claim on `reference`; False if it no longer holds it."""
        ...

    async def settle_posting(self, tenant: str, reference: str, owner: str, outcome: SettleOutcome, *,
                             invoice: str | None = None, unknown_since: float = 0.0, now: float, ttl: float) -> bool:
        """End `owner`'s claim: "posted" as `invoice`; "unknown" (an insert may have been sent at
        `unknown_since`); or "not_posted" (nothing of it can be in ERPNext: the record goes).
        False, changing nothing, if `owner` no longer holds the claim."""
        ...

    async def save_closure(self, tenant: str, closure_id: str, body: bytes, now: float) -> None:
        """Keep a till's closure (the gateway's record where ERPNext gets no closing document)."""
        ...

    async def get_closure(self, tenant: str, closure_id: str) -> bytes | None:
        """A recorded closure, or None."""
        ...

    # --- offline sync queue -------------------------------------------------

    async def enqueue_batch(self, tenant: str, device: str, batch_uuid: str, jobs: list[NewJob], now: float) -> Enqueued:
        """Store an upload and its jobs in one atomic, durable write (client_txn_ids are
        unique within `jobs`). A transaction the store already has for this device is
        not queued again: the batch points at the existing job. If one of them was
        stored with another fingerprint, nothing is written and its position is
        reported in `Enqueued.conflicts`. A return whose return_against is the
        client_txn_id of a sale of this device (in this upload or an earlier one)
        depends on that sale's job."""
        ...

    async def get_batch(self, tenant: str, batch_uuid: str) -> Batch | None:
        """The batch with its jobs in upload order, or None."""
        ...

    async def get_job(self, tenant: str, job_id: str) -> Job | None:
        """One job, or None."""
        ...

    async def claim_jobs(self, rooms: dict[str, int], now: float, owner: str, lease: float, cap: int,
                         leased: dict[str, int] | None = None) -> list[Job]:
        """Lease due jobs to `owner` for `lease` seconds: at most rooms[tenant] per tenant,
        and never more than `cap` leased per tenant across all workers. Jobs whose
        lease ran out are claimable again, marked `unknown` (their worker died mid-attempt).
        `leased`, when given, gets each tenant's jobs leased after the claim (all workers),
        for tenants the claim looked at.

        Within a tenant, jobs are taken round-robin across devices, least recently served
        device first (a device new to the queue first of all), so a till with a long backlog
        does not hold back another's few; the rotation is kept in the store, shared by every
        worker. A device's own jobs come in order: earliest next attempt first, then upload order."""
        ...

    async def renew_leases(self, owner: str, jobs: list[tuple[str, str]], until: float) -> list[str]:
        """Extend `owner`'s leases on (tenant, job_id); returns the ids it no longer holds."""
        ...

    async def settle_job(self, tenant: str, job_id: str, owner: str, update: JobUpdate, now: float) -> bool:
        """Record how `owner`'s attempt ended and end its lease; False (changing nothing)
        if `owner` no longer holds the job."""
        ...

    async def failed_jobs(self, tenant: str) -> list[Job]:
        """The tenant's failed jobs, oldest first."""
        ...

    async def queue_stats(self, tenants: list[str], now: float) -> dict[str, dict[str, float]]:
        """Per tenant: `queued` (waiting for an attempt), `in_flight` (leased now), `failed`,
        and `oldest_due_age` (seconds the most overdue queued job has been due, 0 if none)."""
        ...

    async def device_queue_stats(self, tenant: str, now: float) -> dict[str, dict[str, float]]:
        """queue_stats's figures of one tenant, per device (devices with no pending or failed job left out)."""
        ...

    async def purge_synced(self, tenant: str, before: float, limit: int) -> int:
        """Forget up to `limit` jobs synced before `before`, and the batches left with no
        job at all; returns how many jobs went. Failed and queued jobs are never purged.
        A transaction uploaded again after its job was purged gets a new job, which
        finds its invoice in ERPNext by reference instead of posting a second one."""
        ...

    async def requeue_failed(self, tenant: str, job_ids: list[str], now: float) -> int:
        """Put failed jobs among `job_ids` back in the queue with a fresh attempt count."""
        ...

    # --- live demand (the sync lane leaves room for live POS calls) ---------

    async def mark_live(self, tenant: str, owner: str, reserve: int, until: float, now: float) -> None:
        """Process `owner` sees live calls for `tenant`: keep room for `reserve` postings until `until`
        (a later mark by the same owner replaces its earlier one; reserve 0 withdraws it).
        Marks are shared by every process on the store; one whose process died stops
        counting at its `until`, and is forgotten some time after."""
        ...

    async def live_demand(self, tenants: list[str], now: float) -> dict[str, int]:
        """Per tenant, the sum of the reserves whose `until` is after `now` (0 when none): one round trip."""
        ...
