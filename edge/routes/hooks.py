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
from edge.masterdata.scopes import cached_price_list
from edge.masterdata.webhooks import SIGNATURE_HEADER, WATCHED, Notice, signed
from edge.problems import Problem, problem_response, store_unavailable, validation_errors

MAX_BODY = 64 * 1024  # the setup's payload is ~150 bytes; a hand-made Webhook's fields fit too


async def post_erpnext_hook(request: Request) -> Response:
    """Verify a Webhook and refresh what its document belongs to; 202 once the refresh is started."""
    edge = request.app.state.edge
    ctx = request.scope["pos_edge.ctx"]
    runtime = edge.runtime
    runtime.tenant_plugin.apply_forwarding(ctx)  # refusals count against the real caller, not a proxy
    key = request.path_params["tenant"]
    tenant = runtime.services.tenants.get(key)
    secret = tenant.config.erpnext.webhook_secret if tenant is not None else None
    if tenant is None or secret is None:
        # one answer for "no such tenant" and "no webhooks here" (tenants with webhooks do
        # answer 401 instead: tenant keys are public host names anyway)
        return await _refused(edge, ctx, key, "not_configured",
                              Problem("not_found", "no ERPNext webhooks are configured for this tenant"))
    body = await read_body(request.receive, ctx.headers, MAX_BODY)
    given = request.headers.get(SIGNATURE_HEADER)
    if not signed(secret.get_secret_value(), body, given):
        missing = not given
        return await _refused(edge, ctx, key, "signature_missing" if missing else "signature_mismatch", Problem(
            "webhook_signature_invalid", f"{SIGNATURE_HEADER} is {'missing' if missing else 'not the body HMAC'}"
            f": the Webhook's secret must be tenants.{key}.erpnext.webhook_secret (pos-edge erpnext setup writes it)"))
    cfg = tenant.config
    if cfg.status != "active" or not cfg.pos_enabled:
        # nothing to refresh; a refusal would have Frappe's worker retry it for ~12 s
        ctx.log.info("webhook_ignored", tenant=key, reason="suspended" if cfg.status != "active" else "no POS")
        return Response(orjson.dumps({"accepted": True, "refresh": []}), 202, media_type="application/json")
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
    # not the document's name: a Customer's is usually a person's
    ctx.log.info("webhook_received", tenant=key, doctype=notice.doctype, docevent=notice.event,
                 refresh=[f"{c.name}:{s}" if s else c.name for c, s in targets])
    edge.metrics.webhook(key, "accepted")
    answer = {"accepted": True, "refresh": [{"collection": c.name, "scope": s or None} for c, s in targets]}
    return Response(orjson.dumps(answer), 202, media_type="application/json")


async def _refused(edge: Any, ctx: Any, tenant: str, reason: str, problem: Problem) -> Response:
    """Log and count a refused Webhook; its caller's failures count against its address."""
    ctx.log.warning("webhook_refused", tenant=tenant[:64], reason=reason, client=ctx.forwarded_for)
    edge.metrics.webhook(tenant if reason != "not_configured" else "", reason)
    return await edge.runtime.services.unauthenticated.answer(ctx, problem_response(problem, ctx.request_id))


async def _scopes(edge: Any, tenant: Any, name: str, notice: Notice) -> list[tuple[Collection, str]]:
    """The scopes of collection `name` that tills of this tenant use: prices per price list
    (as their branches resolve it, from what is cached: a profile never read means no
    till has that branch's prices yet), settings per POS Profile."""
    branches = tenant.config.branches
    if name == "settings":
        return [(SETTINGS, notice.name)] if any(b.pos_profile == notice.name for b in branches.values()) else []
    coll = COLLECTIONS[name]
    if name != "prices":
        return [(coll, "")]
    lists = {scope for branch in branches if (scope := await cached_price_list(edge, tenant, branch))}
    return [(coll, scope) for scope in sorted(lists)]
