"""`GET /v1/init`, `/v1/products`, `/v1/prices`, `/v1/customers`, `/v1/campaigns`: master
data for a till's branch, from the gateway's store (edge.masterdata.service).

A collection is read in pages by its change sequence: `?since=<cursor>` answers what
changed after the cursor (rows, and `deleted` for rows that left), `cursor` is where the
next delta starts, and `next` links the following page while there is one. Without
`since` only live rows are sent (a first load has nothing to delete). Every answer has a
strong ETag; `If-None-Match` with it is 304, answered from the store alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from edge.masterdata.collections import COLLECTIONS, SETTINGS, Collection
from edge.masterdata.events import Stream, following
from edge.masterdata.scopes import price_list_of
from edge.masterdata.service import Snapshot
from edge.problems import Problem, context_headers, store_unavailable

JSON = "application/json"


async def get_collection(request: Request) -> Response:
    """`GET /v1/<collection>?since=&limit=&branch_id=`."""
    entered = await _entered(request, {"since", "limit", "branch_id"})
    if isinstance(entered, Response):
        return entered
    edge, ctx, branch = entered
    coll = COLLECTIONS[request.url.path.rstrip("/").rsplit("/", 1)[-1]]
    tenant = ctx.tenant
    since, limit = _paging(request, tenant.config.masterdata.page_size)
    try:
        scope = await _scope(edge, tenant, coll, branch)
        snap = await edge.masterdata.snapshot(tenant.key, tenant.config, tenant.poster.client, coll, scope)
        return await _page(request, ctx, edge, tenant, coll, scope, snap, since, limit, branch)
    except Problem:
        raise
    except Exception as exc:
        raise store_unavailable(ctx, exc, "master data cannot be read right now; retry shortly") from None


async def get_init(request: Request) -> Response:
    """`GET /v1/init?branch_id=`: what a till needs to sell offline for its branch, with
    the first page of each collection and its cursor."""
    entered = await _entered(request, {"branch_id"})
    if isinstance(entered, Response):
        return entered
    edge, ctx, branch = entered
    tenant = ctx.tenant
    cfg = tenant.config
    limit = cfg.masterdata.page_size
    try:
        profile, settings_snap = await _settings(edge, tenant, branch)
        parts = [b'"settings":', orjson.dumps(profile)]
        stale = settings_snap.stale
        tags = [settings_snap.state.seq]
        for coll in COLLECTIONS.values():
            scope = await _scope(edge, tenant, coll, branch, profile)
            snap = await edge.masterdata.snapshot(tenant.key, cfg, tenant.poster.client, coll, scope)
            body, _ = await _collection_body(edge, tenant, coll, scope, snap, None, limit, branch)
            parts += [b',"', coll.name.encode(), b'":', body]
            stale = stale or snap.stale
            tags.append(snap.state.seq)
    except Problem:
        raise
    except Exception as exc:
        raise store_unavailable(ctx, exc, "master data cannot be read right now; retry shortly") from None
    head = {"tenant": {"key": tenant.key, "name": cfg.name, "company": cfg.company},
            "branch": {"branch_id": branch, **_branch_view(cfg.branches[branch])},
            "payment_methods": [{"method": m, "mode_of_payment": mop} for m, mop in cfg.payment_methods.items()],
            "stale": stale}
    etag = _etag(tenant.key, "init", branch, limit, *tags)
    if _matches(request, etag):
        return Response(status_code=304, headers={**context_headers(ctx), **_cache_headers(etag, stale)})
    return _answer(request, ctx, orjson.dumps(head)[:-1] + b"," + b"".join(parts) + b"}", etag, stale)


async def get_events(request: Request) -> Response:
    """`GET /v1/events?branch_id=`: Server-Sent Events of the till's tenant and branch
    (edge.masterdata.events); `Last-Event-ID` resumes after the event it names."""
    entered = await _entered(request, {"branch_id"})
    if isinstance(entered, Response):
        return entered
    edge, ctx, branch = entered
    tenant = ctx.tenant
    cfg = tenant.config
    resume = request.headers.get("last-event-id", "").strip()
    if len(resume) > 64 or not resume.replace("-", "").isalnum() and resume:
        raise Problem("validation_failed", "Last-Event-ID is not an event id",
                      errors=[{"loc": ["header", "Last-Event-ID"], "msg": "an id from this stream"}])
    try:
        profile = cfg.branches[branch].pos_profile
        price_list = await _scope(edge, tenant, COLLECTIONS["prices"], branch)
        after = resume or await edge.store.ev_last(tenant.key)
    except Problem:
        raise
    except Exception as exc:
        raise store_unavailable(ctx, exc, "events cannot be read right now; retry shortly") from None
    key = tenant.key
    stream = Stream(edge, key, ctx.device_id, int((ctx.claims or {}).get("gen") or 0),
                    {"prices.changed": price_list, "settings.changed": profile}, after, edge.stopping,
                    lambda: key in edge.runtime.services.tenants)
    followed = [(coll, price_list if coll.name == "prices" else "") for coll in COLLECTIONS.values()]
    followed.append((SETTINGS, profile))

    async def body() -> AsyncIterator[bytes]:
        async with following(edge.masterdata, key, followed):
            async for chunk in stream.frames():
                yield chunk

    headers = {**context_headers(ctx), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    ctx.log.info("events_opened", branch=branch, resume=bool(resume))
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def _page(request: Request, ctx: Any, edge: Any, tenant: Any, coll: Collection, scope: str, snap: Snapshot,
                since: int | None, limit: int, branch: str) -> Response:
    etag = _etag(tenant.key, coll.name, scope, snap.state.seq, since, limit, branch)
    if _matches(request, etag):
        return Response(status_code=304, headers={**context_headers(ctx), **_cache_headers(etag, snap.stale)})
    body, _ = await _collection_body(edge, tenant, coll, scope, snap, since, limit, branch)
    return _answer(request, ctx, body, etag, snap.stale)


async def _collection_body(edge: Any, tenant: Any, coll: Collection, scope: str, snap: Snapshot, since: int | None,
                           limit: int, branch: str) -> tuple[bytes, int]:
    """A page as JSON bytes (rows copied as stored, never parsed), and its cursor."""
    if not snap.state.refreshed_at and not snap.state.seq:
        raise Problem("upstream_unreachable", f"the {coll.name} of this tenant are not loaded yet: "
                      f"{snap.state.error or 'ERPNext is being read'}; retry shortly",
                      headers={"Retry-After": "5"})
    if since is not None and since > snap.state.seq:
        raise Problem("validation_failed", "the cursor is ahead of this collection: load it again without since",
                      errors=[{"loc": ["query", "since"], "msg": "unknown cursor"}])
    rows = await edge.store.md_page(tenant.key, coll.name, scope, since or 0, limit, since is not None)
    cursor = rows[-1].seq if rows else (since or 0)
    live = [r.data for r in rows if not r.deleted]
    deleted = [r.name for r in rows if r.deleted]
    more = len(rows) == limit
    query = {"since": cursor, "limit": limit, "branch_id": branch}
    meta = {"collection": coll.name, "scope": scope or None, "cursor": str(cursor),
            "next": f"/v1/{coll.name}?{urlencode(query)}" if more else None,
            "deleted": deleted, "stale": snap.stale, "refreshed_at": _iso(snap.state.refreshed_at)}
    body = orjson.dumps(meta)[:-1] + b',"items":[' + b",".join(live) + b"]}"
    return body, cursor


async def _settings(edge: Any, tenant: Any, branch: str) -> tuple[dict[str, Any], Snapshot]:
    """The branch's POS Profile as a till sees it (cached like every collection)."""
    profile = tenant.config.branches[branch].pos_profile
    snap = await edge.masterdata.snapshot(tenant.key, tenant.config, tenant.poster.client, SETTINGS, profile)
    rows = await edge.store.md_page(tenant.key, SETTINGS.name, profile, 0, 1, False)
    if not rows:
        if not snap.state.refreshed_at:
            raise Problem("upstream_unreachable", f"POS Profile {profile} is not loaded yet: "
                          f"{snap.state.error or 'ERPNext is being read'}; retry shortly", headers={"Retry-After": "5"})
        raise Problem("pos_not_configured", f"POS Profile {profile} of branch {branch} is missing or disabled in ERPNext")
    return dict(orjson.loads(rows[0].data)), snap


async def _scope(edge: Any, tenant: Any, coll: Collection, branch: str, profile: dict[str, Any] | None = None) -> str:
    """Prices are per price list (the branch's, else its POS Profile's, read unless `profile`
    is that already); the rest per tenant."""
    if coll.name != "prices":
        return ""
    cfg = tenant.config.branches[branch]
    if profile is None and not cfg.price_list:
        profile, _ = await _settings(edge, tenant, branch)
    price_list = price_list_of(cfg, profile)
    if not price_list:
        raise Problem("pos_not_configured", f"branch {branch} has no price list: set branches.{branch}.price_list "
                      "or the POS Profile's selling price list")
    return str(price_list)


def _branch(request: Request, ctx: Any, cfg: Any) -> str:
    if not cfg.pos_enabled:
        raise Problem("pos_not_configured", "this tenant has no POS mapping (company, branches, payment_methods)")
    token = (ctx.claims or {}).get("branch_id")
    token_branch = str(token) if token not in (None, "") else None
    asked = request.query_params.get("branch_id")
    if token_branch is not None and asked not in (None, "", token_branch):
        raise Problem("branch_not_allowed", f"this device is registered for branch {token_branch!r}, not {asked!r}",
                      errors=[{"loc": ["query", "branch_id"], "msg": "not this device's branch"}])
    branch = token_branch or asked
    if not branch:
        raise Problem("validation_failed", "no branch: this device was registered without one",
                      errors=[{"loc": ["query", "branch_id"], "msg": "required"}])
    if branch not in cfg.branches:
        raise Problem("validation_failed", f"unknown branch {branch!r}",
                      errors=[{"loc": ["query", "branch_id"], "msg": f"one of {sorted(cfg.branches)}"}])
    return branch


async def _entered(request: Request, params: set[str]) -> tuple[Any, Any, str] | Response:
    """(edge, context, branch) once the tenant, device token and rate limit let the request in
    and its query names only `params`; else the refusal."""
    edge = request.app.state.edge
    ctx = request.scope["pos_edge.ctx"]
    denied: Response | None = await edge.runtime.enter(ctx, "masterdata")
    if denied is not None:
        return denied
    _unknown_params(request, params)
    return edge, ctx, _branch(request, ctx, ctx.tenant.config)


def _unknown_params(request: Request, known: set[str]) -> None:
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise Problem("validation_failed", "unknown query parameter", errors=[
            {"loc": ["query", name], "msg": f"not a parameter here (known: {', '.join(sorted(known))})"}
            for name in unknown[:10]])


def _paging(request: Request, page_size: int) -> tuple[int | None, int]:
    q = request.query_params
    errors = []
    since: int | None = None
    limit = page_size
    if "since" in q:
        if q["since"].isascii() and q["since"].isdigit() and len(q["since"]) <= 18:
            since = int(q["since"])
        else:
            errors.append({"loc": ["query", "since"], "msg": "a cursor from an earlier answer"})
    if "limit" in q:
        if q["limit"].isascii() and q["limit"].isdigit() and 1 <= int(q["limit"][:6]) <= 5000:
            limit = int(q["limit"])
        else:
            errors.append({"loc": ["query", "limit"], "msg": "an integer from 1 to 5000"})
    if errors:
        raise Problem("validation_failed", "invalid paging", errors=errors)
    return since, limit


def _branch_view(branch: Any) -> dict[str, Any]:
    return {"pos_profile": branch.pos_profile, "warehouse": branch.warehouse, "cost_center": branch.cost_center,
            "price_list": branch.price_list}


def _etag(*parts: Any) -> str:
    return '"' + hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest() + '"'


def _matches(request: Request, etag: str) -> bool:
    header = request.headers.get("if-none-match", "")
    return any(tag.strip() in (etag, "*") for tag in header.split(",")) if header else False


def _cache_headers(etag: str, stale: bool) -> dict[str, str]:
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if stale:
        headers["Pos-Edge-Stale"] = "true"
    return headers


def _answer(request: Request, ctx: Any, body: bytes, etag: str, stale: bool) -> Response:
    return Response(body, 200, media_type=JSON, headers={**context_headers(ctx), **_cache_headers(etag, stale)})


def _iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None
