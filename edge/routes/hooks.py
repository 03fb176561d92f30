"""`POST /hooks/erpnext/<tenant>`: ERPNext's Webhooks say what changed, so tills hear of it
now rather than at the next poll (edge.masterdata.webhooks).

The tenant is named by the path, not the Host (ERPNext posts to `gateway.public_url`), and
the caller is ERPNext, not a till: it proves itself with the signature alone. Nothing a
Webhook says is trusted beyond "look again": the gateway reads the collection from
ERPNext itself, so a replayed or forged-but-signed body can cost one delta read, never
plant data.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from edge.bodies import read_body
from edge.masterdata.collections import COLLECTIONS, SETTINGS, Collection
from edge.masterdata.webhooks import SIGNATURE_HEADER, WATCHED, Notice, signed
from edge.problems import Problem, problem_response, store_unavailable, validation_errors

MAX_BODY = 64 * 1024  # the setup's payload is ~150 bytes; a hand-made Webhook's fields fit too


async def post_erpnext_hook(request: Request) -> Response:
    """Verify a Webhook and refresh what its document belongs to; 202 once the refresh is started."""
    edge = request.app.state.edge
    ctx = request.scope["pos_edge.ctx"]
    runtime = edge.runtime
    key = request.path_params["tenant"]
    tenant = runtime.services.tenants.get(key)
    secret = tenant.config.erpnext.webhook_secret if tenant is not None else None
    if tenant is None or secret is None:
        # one answer for "no such tenant" and "no webhooks": tenants are not enumerable here
        return await _refused(edge, ctx, key, "not_configured",
                              Problem("not_found", "no ERPNext webhooks are configured for this tenant"))
    body = await read_body(request.receive, ctx.headers, MAX_BODY)
    given = request.headers.get(SIGNATURE_HEADER)
    if not signed(secret.get_secret_value(), body, given):
        reason = "missing" if not given else "mismatch"
        return await _refused(edge, ctx, key, f"signature_{reason}", Problem(
            "webhook_signature_invalid", f"{SIGNATURE_HEADER} is {'missing' if not given else 'not the body HMAC'}"
            f": the Webhook's secret must be tenants.{key}.erpnext.webhook_secret (pos-edge erpnext setup writes it)"))
    cfg = tenant.config
    if cfg.status != "active":
        raise Problem("tenant_suspended", "this tenant is suspended")
    if not cfg.pos_enabled:
        raise Problem("pos_not_configured", "this tenant has no POS mapping (company, branches, payment_methods)")
    try:
        notice = Notice.model_validate(orjson.loads(body))
    except orjson.JSONDecodeError:
        raise Problem("validation_failed", "the body is not JSON", errors=[{"loc": ["body"], "msg": "invalid JSON"}]) \
            from None
    except ValidationError as exc:
        raise Problem("validation_failed", "not a pos-edge Webhook body", errors=validation_errors(exc)) from None
    if notice.doctype not in WATCHED:
        raise Problem("validation_failed", f"pos-edge follows no {notice.doctype}", errors=[
            {"loc": ["body", "doctype"], "msg": f"one of {', '.join(WATCHED)}"}])
    try:
        targets = [(coll, scope) for name in WATCHED[notice.doctype]
                   for coll, scope in await _scopes(edge, tenant, name, notice)]
    except Exception as exc:  # the store is away: Frappe tries the Webhook again
        raise store_unavailable(ctx, exc, "the gateway's store cannot be read right now") from None
    for coll, scope in targets:
        edge.masterdata.nudge(key, cfg, tenant.poster.client, coll, scope)
    ctx.log.info("webhook_received", tenant=key, doctype=notice.doctype, docname=notice.name, docevent=notice.event,
                 refresh=[f"{c.name}:{s}" if s else c.name for c, s in targets])
    edge.metrics.webhook(key, "accepted")
    answer = {"accepted": True, "refresh": [{"collection": c.name, "scope": s or None} for c, s in targets]}
    return Response(orjson.dumps(answer), 202, media_type="application/json")


async def _refused(edge: Any, ctx: Any, tenant: str, reason: str, problem: Problem) -> Response:
    """Log and count a refused Webhook; its caller's failures count against its address."""
    ctx.log.warning("webhook_refused", tenant=tenant, reason=reason, client=ctx.forwarded_for)
    edge.metrics.webhook(tenant if reason != "not_configured" else "", reason)
    return await edge.runtime.services.unauthenticated.answer(ctx, problem_response(problem, ctx.request_id))


async def _scopes(edge: Any, tenant: Any, name: str, notice: Notice) -> list[tuple[Collection, str]]:
    """The scopes of collection `name` that tills of this tenant use: prices per price list
    (a branch's own, else its POS Profile's, as cached), settings per POS Profile."""
    branches = tenant.config.branches.values()
    if name == "settings":
        return [(SETTINGS, notice.name)] if any(b.pos_profile == notice.name for b in branches) else []
    coll = COLLECTIONS[name]
    if name != "prices":
        return [(coll, "")]
    lists: dict[str, None] = {}
    for branch in branches:
        if branch.price_list:
            lists[str(branch.price_list)] = None
            continue
        rows = await edge.store.md_page(tenant.key, SETTINGS.name, branch.pos_profile, 0, 1, False)
        price_list = orjson.loads(rows[0].data).get("selling_price_list") if rows else None
        if price_list:  # a profile never read: no till has this branch's prices yet
            lists[str(price_list)] = None
    return [(coll, scope) for scope in lists]
