"""Sync workers: claim due jobs, post them with the tenant's Poster, record the outcome.

One SyncWorker runs per process (inside `pos-edge serve`, or as `pos-edge worker`);
any number may share a store. Each claims jobs with a lease it renews while the
posting runs; a worker that dies stops renewing, and its jobs are claimed again
once the lease runs out, marked "outcome unknown", so the next attempt looks the
transaction up in ERPNext before it posts. The per-tenant cap on postings in
flight is enforced by the store, across all workers.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from edge.config import SyncConfig
from edge.erpnext.client import OUTAGE_STATUSES, BreakerOpen, FrappeError, Unreachable, to_json
from edge.erpnext.documents import unpaid_warning
from edge.erpnext.posting import Rejected
from edge.erpnext.setup import ReferenceFields
from edge.metrics import Metrics
from edge.posting_guard import OutcomeUnknown, PostingBusy, PostingGuard, ReferenceConflict
from edge.sales import PAYLOAD_MODELS, ClosureView
from edge.store.base import Store
from edge.sync.backoff import full_jitter
from edge.sync.jobs import QUEUED, Job, JobUpdate

# How long a return waits before it looks at its sale again (when the sale has no later due time).
DEPENDENCY_RECHECK = 1.0
PURGE_BATCH = 500  # jobs deleted per store call by the retention purge


class SyncWorker:
    """Claims and posts jobs until stopped."""

    def __init__(self, store: Store, runtime: Callable[[], Any], references: ReferenceFields, log: Any,
                 metrics: Metrics | None = None) -> None:
        self.store = store
        self.metrics = metrics
        self._runtime = runtime  # the current serving Runtime (a new one after a config reload)
        self.references = references
        self.log = log
        self.postings = PostingGuard(store, references, lambda: self._runtime().config.gateway, log)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[str, int] = {}
        # per tenant, its jobs leased by every worker at this worker's last claim: with several
        # workers, whether a tenant's limit is used up is a store-wide question
        self._leased: dict[str, int] = {}
        self._tasks: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self._changed = asyncio.Event()
        self._stopping = False
        self._loop_done = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []

    def wake(self) -> None:
        """Look for due jobs now (a batch was just queued in this process)."""
        self._changed.set()

    async def run(self) -> None:
        """Claim, post and settle until stop()."""
        # Leases are renewed until the last posting has ended, through stop()'s grace too.
        self._background = [asyncio.create_task(self._renew_leases()), asyncio.create_task(self._purge_old())]
        self.log.info("sync_worker_started", owner=self.owner)
        try:
            while not self._stopping:
                runtime = self._runtime()
                cfg: SyncConfig = runtime.config.gateway.sync
                self._changed.clear()
                for cap, rooms in (await self._rooms(runtime)).items():
                    try:
                        jobs = await self.store.claim_jobs(rooms, time.time(), self.owner, cfg.lease, cap,
                                                           leased=self._leased)
                    except Exception as exc:
                        self.log.warning("sync_claim_failed", error=f"{type(exc).__name__}: {exc}")
                        jobs = []
                    for job in jobs:
                        self._start(job, runtime, cfg)
                try:
                    await asyncio.wait_for(self._changed.wait(), cfg.poll_interval)
                except TimeoutError:
                    pass
        finally:
            self._loop_done.set()
            if not self._stopping:  # cancelled rather than stopped: nobody will wait for the postings
                self._end_background()

    async def _rooms(self, runtime: Any) -> dict[int, dict[str, int]]:
        """What to claim now, grouped by the tenants' caps (the store holds every worker
        to a cap): per tenant, its adaptive limit less the room kept for live calls (one
        at least), none while its breaker is open (waiting costs a job no attempt), one while it is
        half-open (the probe)."""
        shields = runtime.shields
        wanted: dict[str, int] = {}
        for key, tenant in runtime.services.tenants.items():
            if not tenant.config.pos_enabled or tenant.shield is None:
                continue
            breaker = tenant.shield.breaker
            if breaker.blocked() is not None:
                continue
            limit = tenant.shield.limit.limit
            wanted[key] = 1 if breaker.state != "closed" else limit
        if not wanted:
            return {}
        demand = await self._live_demand(list(wanted))
        groups: dict[int, dict[str, int]] = {}
        for key, limit in wanted.items():
            live = max(demand.get(key, 0), shields.live.local(key))
            # Live calls get their room and one more: the limit counts postings from claim to
            # settle, part of which they spend in the gateway, so it holds a little more than
            # ERPNext has workers. One posting at least: a shop that sells all day still drains.
            cap = max(1, limit - live - 1) if live else limit
            room = cap - self._inflight.get(key, 0)
            if room > 0:
                groups.setdefault(cap, {})[key] = room
        return groups

    async def _live_demand(self, tenants: list[str]) -> dict[str, int]:
        try:
            return await self.store.live_demand(tenants, time.time())
        except Exception as exc:  # the lane does not yield then: slower live calls, nothing lost
            self.log.warning("live_demand_unreadable", error=f"{type(exc).__name__}: {exc}")
            return {}

    async def stop(self, grace: float) -> None:
        """Stop claiming; let postings in flight finish for up to `grace` seconds (their
        leases still renewed), then cancel the rest and hand their jobs back (outcome
        unknown: the next worker looks first)."""
        self._stopping = True
        self._changed.set()
        if not self._background:
            return  # never ran
        # Wait for the claim loop to end, so that jobs from a claim under way are counted too.
        loop_done = asyncio.ensure_future(self._loop_done.wait())
        await asyncio.wait({loop_done}, timeout=max(grace, 1.0))
        loop_done.cancel()
        tasks = [t for _, t in self._tasks.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        self._end_background()

    def _end_background(self) -> None:
        for task in self._background:
            task.cancel()

    def _start(self, job: Job, runtime: Any, cfg: SyncConfig) -> None:
        self._inflight[job.tenant] = self._inflight.get(job.tenant, 0) + 1
        task = asyncio.create_task(self._run_job(job, runtime, cfg))
        self._tasks[job.job_id] = (job, task)

        def done(_: asyncio.Task[None]) -> None:
            self._inflight[job.tenant] -= 1
            self._tasks.pop(job.job_id, None)
            self._changed.set()

        task.add_done_callback(done)

    async def _run_job(self, job: Job, runtime: Any, cfg: SyncConfig) -> None:
        log = self.log.bind(tenant=job.tenant, device=job.device, job=job.job_id, txn=job.client_txn_id)
        try:
            update = await self._attempt(job, runtime, cfg, log)
        except asyncio.CancelledError:
            # Shut-down mid-attempt: give the job back at once, outcome unknown.
            back = JobUpdate(job.status, next_attempt_at=time.time(), last_error=job.last_error, unknown=True,
                             attempted=False)
            await asyncio.shield(self.store.settle_job(job.tenant, job.job_id, self.owner, back, time.time()))
            raise
        except Exception as exc:
            log.exception("sync_job_error")
            update = self._transient(job, cfg, f"internal error: {type(exc).__name__}", unknown=True)
        try:
            settled = await self.store.settle_job(job.tenant, job.job_id, self.owner, update, time.time())
        except Exception as exc:
            # The lease runs out and another attempt looks in ERPNext first: nothing is lost.
            log.error("sync_settle_failed", error=f"{type(exc).__name__}: {exc}")
            return
        finally:
            # settled (or given up): no longer a lease to renew, nor one to miss if a renewal
            # running now finds it gone
            self._tasks.pop(job.job_id, None)
        if not settled:
            log.warning("sync_lease_lost", detail="another worker holds this job now")
        elif update.attempted:
            if self.metrics is not None:
                self.metrics.sync_outcomes.labels(job.tenant, update.status).inc()
            runtime = self._runtime()
            if update.status == "synced" and job.type != "closure" and runtime is not None:
                runtime.services.devices.note(job.tenant, job.device, sale=True)  # its last sale, for the admin
            event = {"synced": "sync_job_synced", "retrying": "sync_job_retrying", "failed": "sync_job_failed"}
            # a job given up on needs someone (pos-edge sync retry): a warning, written at once
            write = log.warning if update.status == "failed" else log.info
            write(event.get(update.status, "sync_job_" + update.status), attempts=job.attempts + 1,
                  invoice=update.invoice_id, error=update.last_error)

    async def _attempt(self, job: Job, runtime: Any, cfg: SyncConfig, log: Any) -> JobUpdate:
        tenant = runtime.services.tenants.get(job.tenant)
        if tenant is None or not tenant.config.pos_enabled:
            return self._transient(job, cfg, f"tenant {job.tenant} is not configured for POS", unknown=job.unknown)
        payload: Any = PAYLOAD_MODELS[job.type].model_validate_json(job.payload)
        if job.depends_on:
            sale = await self.store.get_job(job.tenant, job.depends_on)
            if sale is not None and sale.status == "failed":
                return JobUpdate("failed", last_error=f"the original sale {payload.return_against} failed to sync")
            if sale is not None and sale.status != "synced":
                # Waiting for the sale is not a failed attempt.
                return JobUpdate(job.status, next_attempt_at=max(time.time() + DEPENDENCY_RECHECK, sale.next_attempt_at),
                                 last_error=job.last_error, unknown=job.unknown, attempted=False)
            if sale is not None:
                payload = payload.model_copy(update={"return_against": sale.invoice_id})
            # else the sale's job was synced and then purged: the Poster finds its invoice
            # by the client_txn_id still in return_against
        if job.type == "closure" and await self._earlier_still_queued(job):
            # A closure totals what ERPNext holds for its period: the sales uploaded
            # before it must be in ERPNext (or have failed) first.
            return JobUpdate(job.status, next_attempt_at=time.time() + DEPENDENCY_RECHECK, last_error=job.last_error,
                             unknown=job.unknown, attempted=False)
        if job.type != "closure" and await self.references.missing(tenant):
            return self._transient(job, cfg, f"{tenant.config.invoice_doctype}.{tenant.config.reference_field} is "
                                   f"missing in ERPNext: run pos-edge erpnext setup --tenant {job.tenant}", unknown=job.unknown)
        poster = tenant.poster
        started = time.monotonic()
        live = runtime.shields.live.active(job.tenant)
        mine = self._inflight.get(job.tenant, 0)
        in_flight = max(mine, self._leased.get(job.tenant, mine)) + runtime.shields.live.local(job.tenant)
        try:
            if job.type == "closure":
                view = ClosureView.model_validate(await poster.close(payload, job.reference))
                if view.closing_entry is None:  # no closing document in ERPNext: the gateway keeps the record
                    await self.store.save_closure(job.tenant, view.closure_id, to_json(view.model_dump()), time.time())
                return JobUpdate("synced", invoice_id=view.closure_id)
            posted = await self.postings.post(tenant, payload, job.reference, job.device, job.fingerprint,
                                              f"{self.owner}/{job.job_id}", check_first=job.unknown, want_doc=False)
        except ReferenceConflict as exc:
            where = f"posted as {exc.invoice}" if exc.invoice else "being posted"
            return JobUpdate("failed", last_error=f"reference_conflict: client_txn_id {job.client_txn_id} of this device "
                             f"was {where} with a different payload (through /v1)")
        except PostingBusy:
            # A /v1 request is posting the same transaction now: look again shortly, not an attempt.
            return JobUpdate(job.status, next_attempt_at=time.time() + DEPENDENCY_RECHECK, last_error=job.last_error,
                             unknown=job.unknown, attempted=False)
        except OutcomeUnknown as exc:
            return JobUpdate("retrying", next_attempt_at=exc.retry_at, unknown=True, attempted=False,
                             last_error="an earlier attempt may still be committing in ERPNext: looked up, not posted "
                                        "again before the tenant's commit_grace has passed")
        except Rejected as exc:
            return JobUpdate("failed", last_error="ERPNext refused it: " + ("; ".join(exc.messages) or str(exc.exc_type)))
        except BreakerOpen as exc:
            # Nothing was sent: the job waits for the breaker, without spending an attempt.
            return JobUpdate(job.status, next_attempt_at=time.time() + exc.retry_after, unknown=job.unknown,
                             attempted=False, last_error=f"waiting: {exc}")
        except Unreachable as exc:
            if exc.timeout:
                tenant.shield.limit.overload()
            return self._transient(job, cfg, f"ERPNext unreachable: {exc}", unknown=job.unknown or exc.sent)
        except FrappeError as exc:
            if exc.status in OUTAGE_STATUSES:
                tenant.shield.limit.overload()
            # 5xx, 429, auth: transient. (417 validation errors arrive as Rejected.)
            return self._transient(job, cfg, f"ERPNext answered {exc.status}: {'; '.join(exc.messages)[:300]}",
                                   unknown=job.unknown or exc.status >= 500)
        if not posted.created:
            log.info("sync_job_found_existing", invoice=posted.invoice)
            return JobUpdate("synced", invoice_id=posted.invoice)
        tenant.shield.limit.sample(time.monotonic() - started, in_flight, live)
        if posted.doc is not None and (warning := unpaid_warning(posted.doc, tenant.config)):
            log.error("sale_booked_unpaid", invoice=posted.invoice, detail=warning)
            if self.metrics is not None:
                self.metrics.booked_unpaid.labels(job.tenant).inc()
        return JobUpdate("synced", invoice_id=posted.invoice)

    async def _earlier_still_queued(self, job: Job) -> bool:
        batch = await self.store.get_batch(job.tenant, job.batch_uuid)
        if batch is None:
            return False
        for other in batch.jobs:
            if other.job_id == job.job_id:
                return False
            if other.status in QUEUED and other.device == job.device:
                return True
        return False

    @staticmethod
    def _transient(job: Job, cfg: SyncConfig, error: str, unknown: bool) -> JobUpdate:
        attempts = job.attempts + 1
        if attempts >= cfg.max_attempts:
            return JobUpdate("failed", last_error=f"{error} (gave up after {attempts} attempts)", unknown=unknown)
        delay = full_jitter(attempts, cfg.backoff_base, cfg.backoff_cap)
        return JobUpdate("retrying", next_attempt_at=time.time() + delay, last_error=error, unknown=unknown)

    async def _purge_old(self) -> None:
        """Forget jobs synced longer than `retention` ago, a bounded amount per round
        (every worker does it; the store's deletes are idempotent)."""
        while True:
            cfg: SyncConfig = self._runtime().config.gateway.sync
            await asyncio.sleep(min(600.0, cfg.retention / 2))
            runtime = self._runtime()
            before = time.time() - runtime.config.gateway.sync.retention
            for tenant in runtime.services.tenants:
                try:
                    purged = 0
                    for _ in range(20):
                        n = await self.store.purge_synced(tenant, before, PURGE_BATCH)
                        purged += n
                        if n < PURGE_BATCH:
                            break
                except Exception as exc:
                    self.log.warning("sync_purge_failed", tenant=tenant, error=f"{type(exc).__name__}: {exc}")
                    continue
                if purged:
                    self.log.info("sync_purged", tenant=tenant, jobs=purged)

    async def _renew_leases(self) -> None:
        while True:
            cfg: SyncConfig = self._runtime().config.gateway.sync
            await asyncio.sleep(cfg.lease / 3)
            held = [(job.tenant, job.job_id) for job, _ in self._tasks.values()]
            if not held:
                continue
            try:
                lost = await self.store.renew_leases(self.owner, held, time.time() + cfg.lease)
            except Exception as exc:
                self.log.warning("sync_renew_failed", error=f"{type(exc).__name__}: {exc}")
                continue
            # A job that settled while the renewal ran is not lost, only finished.
            lost = [job_id for job_id in lost if job_id in self._tasks]
            if lost:
                self.log.warning("sync_leases_lost", jobs=lost)
