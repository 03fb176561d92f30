"""`POST /v1/sale`, `/v1/return`, `/v1/closure`: a till's payload becomes a
submitted ERPNext document (or a recorded closure), at most once.

Idempotency (per tenant and device): the `Idempotency-Key` header, else the
body's `client_txn_id`. Same key and payload after completion -> the stored
answer again (`Idempotent-Replayed: true`); another payload -> 422
`idempotency_key_reused`; the first request still running -> 409
`idempotency_in_progress`. Final answers (201, ERPNext's 422, 409
`reference_conflict`) are kept for `gateway.idempotency_ttl` (7 days); 502/503/504
are not, so the till can retry. The key's claim has a short lease
(`gateway.claim_lease`) that the request renews while it runs.

Under any key, a sale or return is posted through the PostingGuard: one posting per
transaction (`<device>/<client_txn_id>`), shared with the sync workers.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

from edge.chain import new_request_id
from edge.erpnext.client import BreakerOpen, FrappeError, Unreachable, to_json
from edge.erpnext.closing import site_time
from edge.erpnext.documents import till_view, unpaid_warning
from edge.erpnext.posting import Rejected
from edge.leases import renewing
from edge.posting_guard import OutcomeUnknown, PostingBusy, ReferenceConflict
from edge.problems import Problem, context_headers, erpnext_unavailable, problem_body, store_unavailable
from edge.sales import ClosureView, OpeningView

JSON = "application/json"
PROBLEM = "application/problem+json"


async def post_document(request: Request) -> Response:
    """Shared handler of /v1/sale, /v1/return and /v1/closure."""
    edge = request.app.state.edge
    runtime = edge.runtime
    ctx = request.scope["pos_edge.ctx"]
    ctx.receive = request.receive
    denied = await runtime.enter(ctx, "pos")
    if denied is not None:
        return denied
    tenant = ctx.tenant
    live = runtime.shields.live
    live.begin(tenant.key)  # the sync lane makes room for live calls (edge.shield.live)
    try:
        return await _post_document(ctx, edge, runtime)
    finally:
        live.end(tenant.key)


async def _post_document(ctx: Any, edge: Any, runtime: Any) -> Response:
    pos, tenant, store = ctx.pos, ctx.tenant, edge.store
    gw = runtime.config.gateway
    if pos.kind in ("sale", "return") and await edge.reference_field_missing(tenant):
        # Never guess: without the field no post could be found again after a lost answer.
        raise Problem("reference_field_missing",
                      f"{tenant.config.invoice_doctype}.{tenant.config.reference_field} does not exist in ERPNext; "
                      f"an administrator must run: pos-edge erpnext setup --tenant {tenant.key}")
    key = pos.idempotency_key
    # Claims are owned by this attempt: an id of the gateway's own, never the till's
    # X-Request-ID (a retry that sends the same one is another attempt).
    owner = new_request_id()
    if not key:
        status, body, _, headers = await _post(ctx, pos, tenant, False, edge, owner)
        return _response(ctx, status, body, headers)
    try:
        owned, previous = await store.claim_idempotency(tenant.key, ctx.device_id, key, pos.fingerprint, time.time(),
                                                        gw.claim_lease, gw.idempotency_ttl, owner)
    except Exception as exc:  # nothing is posted without the claim: safe to retry
        raise store_unavailable(ctx, exc, f"the {pos.kind} cannot be checked against earlier attempts right now; "
                                "nothing was posted, retry shortly", extra={"sale_state": "not_posted"}) from None
    if not owned:
        assert previous is not None
        if previous.fingerprint != pos.fingerprint:
            raise Problem("idempotency_key_reused", f"key {key!r} was used for a different {pos.kind}")
        if previous.state == "in_progress":
            raise Problem("idempotency_in_progress", f"the first request with key {key!r} is still running",
                          headers={"Retry-After": "2"})
        media = PROBLEM if (previous.status or 0) >= 400 else JSON
        return Response(previous.body, previous.status or 200, media_type=media,
                        headers={**context_headers(ctx), "Idempotent-Replayed": "true"})
    mine = (tenant.key, ctx.device_id, key, owner)
    renew = functools.partial(store.renew_idempotency, *mine)
    try:
        async with renewing(renew, gw.claim_lease, ctx.log, idempotency_key=key):
            status, body, outcome, headers = await _post(ctx, pos, tenant, previous is not None, edge, owner)
    except BaseException:
        # whatever happened, the next request with this key must look before posting
        await _settle(ctx, store.abandon_idempotency(*mine))
        raise
    if outcome == "final":
        await _settle(ctx, store.complete_idempotency(*mine[:3], status, body, owner))
    elif outcome == "unknown":
        await _settle(ctx, store.abandon_idempotency(*mine))
    else:
        await _settle(ctx, store.release_idempotency(*mine))
    return _response(ctx, status, body, headers)


# How a request's key is settled: "final" answers are kept for replays (the document,
# ERPNext's refusal, a reference posted with another payload); after "unknown" the next
# request looks in ERPNext first; after "retry" it simply runs again.
Outcome = Literal["final", "unknown", "retry"]


def _response(ctx: Any, status: int, body: bytes, headers: dict[str, str]) -> Response:
    return Response(body, status, media_type=JSON if status < 400 else PROBLEM,
                    headers={**context_headers(ctx), **headers})


async def _settle(ctx: Any, update: Awaitable[Any]) -> None:
    """Record an idempotency outcome; a store failure must not turn ERPNext's answer into a 500.
    The claim then stays in progress until its lease runs out, and the next request with the
    key looks in ERPNext before posting (check_first), so nothing is posted twice."""
    try:
        await update
    except Exception as exc:
        ctx.log.error("idempotency_record_failed", error=type(exc).__name__, detail=str(exc)[:200])


async def _open(ctx: Any, pos: Any, tenant: Any) -> tuple[int, bytes, Outcome, dict[str, str]]:
    """/v1/opening: the branch's open POS Opening Entry, opened now if none is."""
    cfg = tenant.config
    if cfg.invoice_doctype != "POS Invoice":
        problem = Problem("validation_failed", "this tenant posts Sales Invoices, which ERPNext books without shifts",
                          errors=[{"loc": ["body"], "msg": "shifts are for tenants on POS Invoices"}])
        return problem.status, problem_body(problem, ctx.request_id), "final", {}
    opening = pos.payload
    poster = tenant.poster
    balances = {cfg.payment_methods[b.method]: b.opening_amount for b in opening.balances}
    start = None
    if opening.period_start is not None:
        start = site_time(opening.period_start, await poster.site.time_zone())
    entry, created = await poster.open_shift(cfg.branches[opening.branch_id].pos_profile, balances, start)
    ctx.log.info("shift_opened" if created else "shift_found", opening_entry=entry.get("name"))
    view = OpeningView(
        opening_entry=str(entry["name"]), created=created, branch_id=opening.branch_id,
        pos_profile=entry.get("pos_profile"), period_start=entry.get("period_start_date"), status=entry.get("status"),
        balances=[{"mode_of_payment": r.get("mode_of_payment"), "opening_amount": r.get("opening_amount")}
                  for r in entry.get("balance_details") or []])
    return 201, to_json(view.model_dump()), "final", {}


async def _post(ctx: Any, pos: Any, tenant: Any, check_first: bool, edge: Any,
                owner: str) -> tuple[int, bytes, Outcome, dict[str, str]]:
    """(status, body, outcome, extra headers)."""
    poster, store = tenant.poster, edge.store
    wait = tenant.shield.breaker.blocked()
    if wait is not None:  # at once, not after a timeout: the till can queue the sale offline
        problem = erpnext_unavailable(wait, pos.kind)
        return problem.status, problem_body(problem, ctx.request_id), "retry", problem.headers
    try:
        if pos.kind == "opening":
            return await _open(ctx, pos, tenant)
        if pos.kind == "closure":
            view = ClosureView.model_validate(await poster.close(pos.payload, pos.reference))
            body = to_json(view.model_dump())
            if view.closing_entry is None:  # no closing document in ERPNext: the gateway keeps the record
                try:
                    await store.save_closure(tenant.key, view.closure_id, body, time.time())
                except Exception as exc:
                    problem = store_unavailable(ctx, exc, "the closure could not be recorded; retry shortly",
                                                retry_after=False)
                    return problem.status, problem_body(problem, ctx.request_id), "retry", {}
            ctx.log.info("closure_recorded", closure=view.closure_id, invoices=view.invoice_count)
            return 201, body, "final", {}
        posted = await edge.postings.post(tenant, pos.payload, pos.reference, pos.device, pos.txn_fingerprint,
                                          owner, check_first=check_first)
    except ReferenceConflict as exc:
        problem = Problem("reference_conflict", f"client_txn_id {pos.payload.client_txn_id} of this device was "
                          + (f"posted as {exc.invoice}" if exc.invoice else "sent") + " with a different payload; "
                          "a different sale needs its own client_txn_id",
                          extra={"invoice_id": exc.invoice, "sale_state": "not_posted"})
        return problem.status, problem_body(problem, ctx.request_id), "final", {}
    except PostingBusy:
        problem = Problem("idempotency_in_progress", f"this {pos.kind} is being posted by another request right now",
                          headers={"Retry-After": "2"}, extra={"sale_state": "in_progress"})
        return problem.status, problem_body(problem, ctx.request_id), "retry", problem.headers
    except OutcomeUnknown as exc:
        wait = max(1, math.ceil(exc.retry_at - time.time()))
        problem = Problem("sale_outcome_unknown", f"an earlier attempt at this {pos.kind} may still be committing in "
                          f"ERPNext; it is looked up, never posted again, until {wait} s from now: retry then",
                          headers={"Retry-After": str(wait)}, extra={"sale_state": "unknown"})
        return problem.status, problem_body(problem, ctx.request_id), "unknown", problem.headers
    except Rejected as exc:
        ctx.log.info("erpnext_rejected", exc_type=exc.exc_type, reference=pos.reference)
        problem = Problem("erpnext_rejected", "; ".join(exc.messages) or "ERPNext refused the document",
                          extra={"erpnext": {"exc_type": exc.exc_type, "messages": exc.messages}, "sale_state": "not_posted"})
        return problem.status, problem_body(problem, ctx.request_id), "final", {}
    except BreakerOpen as exc:  # opened while this request waited for its turn
        problem = erpnext_unavailable(exc.retry_after, pos.kind)
        return problem.status, problem_body(problem, ctx.request_id), "retry", problem.headers
    except Unreachable as exc:
        state = "unknown" if exc.sent else "not_posted"
        ctx.upstream_error = "timeout" if exc.timeout else "unreachable"
        ctx.log.warning("erpnext_unreachable", detail=str(exc), sale_state=state, reference=pos.reference)
        code = "upstream_timeout" if exc.timeout else "upstream_unreachable"
        problem = Problem(code, f"ERPNext: {exc}; the {pos.kind} is {state.replace('_', ' ')}, retry with the same key",
                          extra={"sale_state": state})
        return problem.status, problem_body(problem, ctx.request_id), "unknown" if exc.sent else "retry", {}
    except FrappeError as exc:
        ctx.log.error("erpnext_error", status=exc.status, exc_type=exc.exc_type)
        ctx.upstream_error = "auth" if exc.status in (401, 403) else f"http_{exc.status // 100}xx"
        if exc.status in (401, 403):
            code = "upstream_auth_failed"
        elif exc.status == 409:
            code = "erpnext_conflict"
        else:
            code = "upstream_error"
        problem = Problem(code, "; ".join(exc.messages)[:500] if code == "erpnext_conflict" else f"ERPNext answered {exc.status}",
                          extra={"sale_state": "not_posted" if exc.status < 500 else "unknown"})
        return problem.status, problem_body(problem, ctx.request_id), "unknown" if exc.status >= 500 else "retry", {}
    doc = posted.doc or {"name": posted.invoice, "is_return": pos.kind == "return"}  # ERPNext no longer has it
    ctx.log.info("invoice_posted", invoice=posted.invoice, created=posted.created, reference=pos.reference)
    warning = unpaid_warning(doc, tenant.config) if posted.created else None
    if warning:
        ctx.log.error("sale_booked_unpaid", invoice=posted.invoice, outstanding=str(doc.get("outstanding_amount")),
                      reference=pos.reference)
        edge.metrics.booked_unpaid.labels(tenant.key).inc()
    edge.runtime.services.devices.note(tenant.key, ctx.device_id, sale=True)  # its last sale, for the admin
    return 201, to_json(till_view(doc, [warning] if warning else []).model_dump()), "final", {}
