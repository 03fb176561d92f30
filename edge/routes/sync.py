"""`POST /sync/batch` and `GET /sync/status/{batch_uuid}`: an offline till's queue.

A 202 is sent only after the batch and all its jobs are written to the store in
one atomic write (a committed SQLite transaction with synchronous=FULL, or one
Redis script); workers (edge.sync.worker) post them to ERPNext afterwards.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from edge.erpnext.client import to_json
from edge.problems import Problem, context_headers, store_unavailable
from edge.sales import Return, SyncAccepted, SyncJobView, SyncStatus
from edge.store.base import Store
from edge.sync.jobs import FINAL, Batch, Job, NewJob, batch_status, summary

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


async def post_batch(request: Request) -> Response:
    """Validate an upload (all of it, before anything is stored), queue it durably, 202."""
    edge = request.app.state.edge
    ctx = request.scope["pos_edge.ctx"]
    ctx.receive = request.receive
    denied = await edge.runtime.enter(ctx, "sync")
    if denied is not None:
        return denied
    tenant, device = ctx.tenant.key, ctx.device_id
    jobs = [
        NewJob(
            job_id=uuid.uuid4().hex,
            client_txn_id=item.idempotency_key,
            type=item.kind,
            payload=item.payload.model_dump_json().encode(),
            fingerprint=item.fingerprint,
            reference=item.reference,
            return_against=item.payload.return_against if isinstance(item.payload, Return) else "",
        )
        for item in ctx.pos.items
    ]
    batch_uuid = str(uuid.uuid4())
    try:
        result = await edge.store.enqueue_batch(tenant, device, batch_uuid, jobs, time.time())
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the queue could not store the batch; nothing was stored, upload it again",
                                event="sync_enqueue_failed") from None
    if result.conflicts:
        raise Problem("validation_failed", "transactions already uploaded with a different payload; nothing of this "
                      "batch was stored", errors=[
                          {"loc": ["transactions", str(i), "client_txn_id"],
                           "msg": "this client_txn_id was uploaded before with a different payload"}
                          for i in result.conflicts])
    edge.wake_workers()
    ctx.log.info("sync_batch_queued", batch=batch_uuid, jobs=len(jobs), enqueued=result.enqueued)
    body = SyncAccepted(batch_uuid=batch_uuid, job_count=len(result.job_ids), enqueued=result.enqueued, redis_ok=True)
    return Response(to_json(body.model_dump()), 202, media_type="application/json",
                    headers={**context_headers(ctx), "Location": f"/sync/status/{batch_uuid}"})


async def get_status(request: Request) -> Response:
    """A batch's progress, for the device that uploaded it only."""
    edge = request.app.state.edge
    ctx = request.scope["pos_edge.ctx"]
    denied = await edge.runtime.enter(ctx, "sync_status")
    if denied is not None:
        return denied
    batch_uuid = request.path_params["batch_uuid"].lower()
    try:
        batch = await edge.store.get_batch(ctx.tenant.key, batch_uuid) if UUID.match(batch_uuid) else None
        if batch is None or batch.device != ctx.device_id:
            # Another tenant's or device's batch is indistinguishable from none at all.
            raise Problem("batch_not_found", f"no batch {request.path_params['batch_uuid']} for this device")
        view = await status_view(edge.store, batch, time.time())
    except Problem:
        raise
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the batch's status cannot be read right now; retry shortly") from None
    return Response(view.model_dump_json().encode(), 200, media_type="application/json", headers=context_headers(ctx))


async def status_view(store: Store, batch: Batch, now: float) -> SyncStatus:
    """The public view of a batch (also printed by `pos-edge sync status`)."""
    by_id: dict[str, Job | None] = {j.job_id: j for j in batch.jobs}
    views = []
    for j in batch.jobs:
        waiting = None
        if j.depends_on and j.status not in FINAL:
            if j.depends_on not in by_id:  # a sale of an earlier upload: read once per status
                by_id[j.depends_on] = await store.get_job(batch.tenant, j.depends_on)
            sale = by_id[j.depends_on]
            if sale is not None and sale.status != "synced":
                waiting = sale.client_txn_id
        views.append(SyncJobView(
            job_id=j.job_id, client_txn_id=j.client_txn_id, type=j.type, status=j.status, attempts=j.attempts,
            invoice_id=j.invoice_id, last_error=j.last_error,
            next_attempt_at=None if j.status in FINAL else datetime.fromtimestamp(j.next_attempt_at, UTC),
            waiting_for=waiting,
        ))
    return SyncStatus(batch_uuid=batch.batch_uuid, status=batch_status(batch.jobs, now), summary=summary(batch.jobs),
                      jobs=views)
