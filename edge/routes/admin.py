"""The admin API (`/admin/...`): stores and terminals of the tenant named by the Host, for
admin principals by role and scope (edge.admin), with every change in the audit log.

Admin tokens come from `POST /admin/login` and go in `Authorization: Bearer`; a device token
is never accepted here, nor an admin token on a till's routes (edge.admin.tokens). Refusals
before a principal is known count against the caller's address like every other.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from edge.admin import access, audit, config_writer, terminals
from edge.admin.access import Action
from edge.admin.principals import Principal
from edge.admin.tokens import InvalidAdminToken
from edge.bodies import read_json
from edge.config_errors import ConfigError
from edge.problems import Problem, problem_response, store_unavailable, validation_errors
from plugins.normalise import Branch  # the POS mapping's branch model: a new store is validated as tenants.yaml is

JSON = "application/json"


class LoginRequest(BaseModel):
    """`POST /admin/login`: a login name and its key or password."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    key: str | None = Field(default=None, min_length=1, max_length=512)
    password: str | None = Field(default=None, min_length=1, max_length=512)


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type=JSON)


async def _tenant(request: Request) -> tuple[Any, Any, Any] | Response:
    """(edge, ctx, tenant runtime) of the Host, or the refusal."""
    edge = request.app.state.edge
    ctx = request.scope["pos_edge.ctx"]
    ctx.group = "admin"
    runtime = edge.runtime
    refused = await runtime.tenant_plugin.on_request(ctx)
    if refused is not None:
        return await runtime.services.unauthenticated.answer(ctx, refused)
    return edge, ctx, ctx.tenant


async def _principal(request: Request, action: Action) -> tuple[Any, Any, Any, Principal] | Response:
    """(edge, ctx, tenant, principal) when the bearer admin token may do `action` here."""
    entered = await _tenant(request)
    if isinstance(entered, Response):
        return entered
    edge, ctx, tenant = entered
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token:
            raise InvalidAdminToken("no bearer token")
        claims = edge.runtime.admin.tokens.verify(token.strip())
    except InvalidAdminToken:
        return await edge.runtime.services.unauthenticated.answer(ctx, problem_response(Problem(
            "admin_unauthorized", "log in at POST /admin/login and send its token as Authorization: Bearer",
            headers={"WWW-Authenticate": 'Bearer realm="pos-edge admin"'}), ctx.request_id))
    # what they may do now, not what the token said at login: a removed or demoted admin's
    # token stops working (or shrinks) with the reload that removed or demoted them
    principal = edge.runtime.admin.directory.current(claims.tenant, claims.name)
    if principal is None or principal.role != claims.role:
        return await edge.runtime.services.unauthenticated.answer(ctx, problem_response(Problem(
            "admin_unauthorized", "this admin's access changed: log in again",
            headers={"WWW-Authenticate": 'Bearer realm="pos-edge admin"'}), ctx.request_id))
    if not access.sees_tenant(principal, tenant.key):
        return await edge.runtime.services.unauthenticated.answer(ctx, problem_response(Problem(
            "admin_unauthorized", "this admin token is for another tenant",
            headers={"WWW-Authenticate": 'Bearer realm="pos-edge admin"'}), ctx.request_id))
    if not access.may(principal, action):
        raise Problem("admin_forbidden", f"the {principal.role} role may not do this ({action})")
    return edge, ctx, tenant, principal


Handler = Callable[[Request, Any, Any, Any, Principal], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _admin(action: Action) -> Callable[[Handler], Endpoint]:
    """A route for `action`: its handler runs with (edge, ctx, tenant, principal) once the
    Host's tenant and the bearer admin token let it (_principal); else the refusal is answered."""
    def wrap(handler: Handler) -> Endpoint:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            entered = await _principal(request, action)
            if isinstance(entered, Response):
                return entered
            return await handler(request, *entered)
        return route
    return wrap


def _by_method(get: Endpoint, post: Endpoint) -> Endpoint:
    """One route for GET and POST of a path, so a 405 names both methods."""
    async def route(request: Request) -> Response:
        return await (post(request) if request.method == "POST" else get(request))
    return route


async def login(request: Request) -> Response:
    """`POST /admin/login`: an admin token for a principal of this tenant (or an operator)."""
    entered = await _tenant(request)
    if isinstance(entered, Response):
        return entered
    edge, ctx, tenant = entered
    admin = edge.runtime.admin
    try:
        body = LoginRequest.model_validate(await read_json(request.receive, ctx.headers, 16 * 1024))
    except ValidationError as exc:
        raise Problem("validation_failed", "invalid login", errors=validation_errors(exc)) from None
    if (body.key is None) == (body.password is None):
        raise Problem("validation_failed", "give a key or a password", errors=[
            {"loc": ["body", "key"], "msg": "exactly one of key and password"}])
    name_key = f"{tenant.key}/{body.name[:64]}"
    # every attempt is counted before it is tried (parallel guesses cannot all slip under the
    # limit), and past the limit nothing is checked: a right guess must look like a wrong one
    limited = await admin.logins.refused(ctx) or await admin.logins.refused(ctx, key=name_key)
    if limited is not None:
        ctx.log.warning("admin_login_limited", tenant=tenant.key, login=body.name, client=ctx.forwarded_for)
        return problem_response(limited, ctx.request_id)
    # scrypt takes ~50 ms of CPU: off the event loop, so tills are not held up by logins
    principal = await asyncio.to_thread(admin.directory.authenticate, tenant.key, body.name, body.key, body.password)
    if principal is None:
        ctx.log.warning("admin_login_failed", tenant=tenant.key, login=body.name, client=ctx.forwarded_for)
        raise Problem("admin_login_failed", "wrong login name, key or password")
    token, claims = admin.tokens.issue(principal.name, principal.role, principal.tenant, list(principal.branches))
    await _audit(edge, ctx, tenant.key, principal, "login", principal.name)
    return _json({"token": token, "token_type": "Bearer", "expires_at": terminals.iso(claims.expires), "name": principal.name,
                  "role": principal.role, "tenant": principal.tenant,
                  "branches": list(principal.branches)})


@_admin("stores.read")
async def get_stores(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`GET /admin/stores`: the tenant's branches (from tenants.yaml) the principal sees."""
    try:
        devices = await edge.store.list_devices(tenant.key)
        queue = await edge.store.device_queue_stats(tenant.key, time.time())
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the store cannot be read right now") from None
    stores = []
    for branch_id, branch in (getattr(tenant.config, "branches", None) or {}).items():
        if not access.sees_branch(principal, branch_id):
            continue
        mine = [d for d in devices if d.branch_id == branch_id]
        stores.append({"branch_id": branch_id, "pos_profile": branch.pos_profile, "warehouse": branch.warehouse,
                       "cost_center": branch.cost_center, "price_list": branch.price_list,
                       **terminals.store_figures(mine, queue)})
    return _json({"tenant": tenant.key, "stores": stores})


@_admin("stores.write")
async def post_store(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`POST /admin/stores`: tenants.yaml is the source of truth; 409 with the snippet to add."""
    raw = await read_json(request.receive, ctx.headers, 64 * 1024)
    branch = _branch_entry(raw)
    (branch_id, fields), = branch.items()
    if branch_id in (getattr(tenant.config, "branches", None) or {}):
        raise Problem("validation_failed", f"store {branch_id!r} exists", errors=[
            {"loc": ["body", "branch_id"], "msg": "a new branch id"}])
    snippet = yaml.safe_dump({"tenants": {tenant.key: {"branches": branch}}}, sort_keys=False)
    if not edge.config.gateway.admin.write_config:
        raise Problem("store_in_config", "stores are branches in tenants.yaml, the gateway's source of truth: add "
                      "this and the gateway reloads it (or let admins write it: gateway.admin.write_config)",
                      extra={"snippet": snippet})
    try:
        await asyncio.to_thread(config_writer.add_branch, edge.config.source, tenant.key, branch_id, fields)
    except config_writer.ConfigUnwritable as exc:
        raise Problem("store_in_config", f"tenants.yaml cannot take the store automatically ({exc}): add this "
                      "by hand", extra={"snippet": snippet}) from None
    except ConfigError as exc:
        # only what concerns the new branch: the rest of the file is not this admin's to read
        mine = f"tenants.{tenant.key}.branches.{branch_id}."
        raise Problem("validation_failed", "tenants.yaml would not load with this store", errors=[
            {"loc": ["body", str(path).removeprefix(mine)], "msg": message}
            for path, message in exc.errors if str(path).startswith(mine)][:10] or [
            {"loc": ["body"], "msg": "the configuration would not load (see the gateway's log)"}]) from None
    except OSError as exc:
        raise Problem("store_in_config", f"tenants.yaml cannot be written ({exc.strerror}): add this by hand",
                      extra={"snippet": snippet}) from None
    await _audit(edge, ctx, tenant.key, principal, "add_store", branch_id, {"branch": fields})
    reloaded = await edge.reload("admin: store added")
    return _json({"branch_id": branch_id, **fields, "reloaded": reloaded}, 201)


def _branch_entry(raw: Any) -> dict[str, Any]:
    """A branch as tenants.yaml holds it, validated with the tenant model's own branch model."""
    if not isinstance(raw, dict) or not isinstance(raw.get("branch_id"), str) or not raw["branch_id"]:
        raise Problem("validation_failed", "a store needs its branch_id", errors=[
            {"loc": ["body", "branch_id"], "msg": "required"}])
    fields = {k: v for k, v in raw.items() if k != "branch_id"}
    try:
        branch = Branch.model_validate(fields)
    except ValidationError as exc:
        raise Problem("validation_failed", "invalid store", errors=validation_errors(exc)) from None
    return {raw["branch_id"]: branch.model_dump(exclude_defaults=True)}


@_admin("terminals.read")
async def get_terminals(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`GET /admin/terminals[?branch_id=]`: the terminals the principal sees."""
    branch = request.query_params.get("branch_id")
    if branch is not None and not access.sees_branch(principal, branch):
        raise Problem("not_found", f"no store {branch!r}")
    now = time.time()
    try:
        devices = await edge.store.list_devices(tenant.key)
        queue = await edge.store.device_queue_stats(tenant.key, now)
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the store cannot be read right now") from None
    shown = [terminals.view(d, now, queue) for d in devices
             if _visible(principal, d.branch_id) and (branch is None or d.branch_id == branch)]
    return _json({"tenant": tenant.key, "terminals": shown})


def _visible(principal: Principal, branch: str) -> bool:
    """A terminal is in scope by its branch (one of no branch: only to those who see every branch)."""
    return access.sees_branch(principal, branch) if branch else not principal.branches


async def _terminal(edge: Any, ctx: Any, tenant: Any, principal: Principal, device_id: str) -> Any:
    """The device, when it exists and is within the principal's scope; else 404."""
    try:
        device = await edge.store.get_device(tenant.key, device_id)
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the store cannot be read right now") from None
    if device is None or not _visible(principal, device.branch_id):
        raise Problem("not_found", f"no terminal {device_id!r}")
    return device


@_admin("terminals.write")
async def post_block(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`POST /admin/terminals/{device_id}/block` (and `/unblock`)."""
    blocked = request.url.path.endswith("/block")
    device_id = request.path_params["device_id"]
    await _terminal(edge, ctx, tenant, principal, device_id)
    try:
        device, _ = await terminals.set_blocked(edge.store, tenant.key, device_id, blocked, time.time())
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the terminal could not be changed; nothing was done") from None
    edge.runtime.services.devices.forget(tenant.key, device_id)  # this process: at once; others within the ttl
    if device is None:  # deleted meanwhile
        raise Problem("not_found", f"no terminal {device_id!r}")
    await _audit(edge, ctx, tenant.key, principal, "block" if blocked else "unblock", device_id)
    return _json(terminals.view(device, time.time()))


class NewTerminal(BaseModel):
    """`POST /admin/terminals`: a terminal made ahead of its till."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    device_name: str = Field(default="", max_length=128)
    branch_id: str = Field(min_length=1, max_length=128)
    hours: float = Field(default=24, gt=0, le=24 * 30, description="how long its enrollment code is valid")


class CodeRequest(BaseModel):
    """`POST /admin/terminals/{id}/reset` and `/move`."""

    model_config = ConfigDict(extra="forbid")

    branch_id: str | None = Field(default=None, min_length=1, max_length=128)
    hours: float = Field(default=24, gt=0, le=24 * 30)


class RetryRequest(BaseModel):
    """`POST /admin/terminals/{id}/jobs/retry`: these failed jobs, or all of the terminal's."""

    model_config = ConfigDict(extra="forbid")

    job_ids: list[str] | None = Field(default=None, max_length=1000)


async def _body(ctx: Any, request: Request, model: type[Any]) -> Any:
    sent = ctx.headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in ctx.headers
    raw = await read_json(request.receive, ctx.headers, 64 * 1024) if sent else {}  # no body: the defaults
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise Problem("validation_failed", "invalid request", errors=validation_errors(exc)) from None


def _target_branch(tenant: Any, principal: Principal, branch: str) -> None:
    """A branch an action puts a terminal in: in scope (else 404), and in tenants.yaml (else 422)."""
    if not access.sees_branch(principal, branch):
        raise Problem("not_found", f"no store {branch!r}")
    if branch not in (getattr(tenant.config, "branches", None) or {}):
        raise Problem("validation_failed", f"no store {branch!r} in tenants.yaml", errors=[
            {"loc": ["body", "branch_id"], "msg": "a branch of this tenant"}])


def _with_code(device: Any, code: str, now: float) -> dict[str, Any]:
    return {"terminal": terminals.view(device, now), "enrollment_code": code,
            "code_expires_at": terminals.iso(device.code_until)}


@_admin("terminals.write")
async def post_terminal(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`POST /admin/terminals`: pre-provision a terminal; 201 with its one-time enrollment code."""
    body = await _body(ctx, request, NewTerminal)
    _target_branch(tenant, principal, body.branch_id)
    now = time.time()
    try:
        device, code = await terminals.provision(edge.store, tenant.key, body.device_id, body.device_name,
                                                 body.branch_id, body.hours, now)
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the terminal could not be made; nothing was done") from None
    if device is None:
        raise Problem("terminal_exists", f"terminal {body.device_id!r} exists: reset or move it instead")
    await _audit(edge, ctx, tenant.key, principal, "provision", body.device_id, {"branch_id": body.branch_id})
    return _json(_with_code(device, code, now), 201)


@_admin("terminals.write")
async def post_reset(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`POST /admin/terminals/{id}/reset` (and `/move`, with a branch): its tokens are retired at
    once; 200 with the one-time enrollment code its till registers again with."""
    moving = request.url.path.endswith("/move")
    device_id = request.path_params["device_id"]
    body = await _body(ctx, request, CodeRequest)
    await _terminal(edge, ctx, tenant, principal, device_id)
    if moving and body.branch_id is None:
        raise Problem("validation_failed", "a move needs its branch_id", errors=[
            {"loc": ["body", "branch_id"], "msg": "required"}])
    if not moving and body.branch_id is not None:
        raise Problem("validation_failed", "a reset keeps the branch: move the terminal instead", errors=[
            {"loc": ["body", "branch_id"], "msg": "not here"}])
    if moving:
        _target_branch(tenant, principal, str(body.branch_id))
    now = time.time()
    try:
        device, code = await terminals.reset(edge.store, tenant.key, device_id, body.hours, now, body.branch_id)
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the terminal could not be changed; nothing was done") from None
    if device is None:
        raise Problem("not_found", f"no terminal {device_id!r}")
    edge.runtime.services.devices.forget(tenant.key, device_id)
    await _audit(edge, ctx, tenant.key, principal, "move" if moving else "reset", device_id,
                 {"branch_id": body.branch_id} if moving else None)
    return _json(_with_code(device, code, now))


@_admin("terminals.write")
async def delete_terminal(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`DELETE /admin/terminals/{id}[?force=true]`: forget a terminal (a registered one needs force)."""
    device_id = request.path_params["device_id"]
    force = request.query_params.get("force", "false")
    if force not in ("true", "false"):
        raise Problem("validation_failed", "force is true or false", errors=[{"loc": ["query", "force"], "msg": "bool"}])
    device = await _terminal(edge, ctx, tenant, principal, device_id)
    try:
        deleted = await terminals.delete(edge.store, tenant.key, device, force == "true")
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the terminal could not be deleted; nothing was done") from None
    if not deleted:
        raise Problem("terminal_registered", "a registered till: deleting it lets its id enrol again without proof; "
                      "block it instead, or delete with force=true")
    edge.runtime.services.devices.forget(tenant.key, device_id)
    await _audit(edge, ctx, tenant.key, principal, "delete", device_id)
    return Response(status_code=204)


@_admin("terminals.read")
async def get_jobs(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`GET /admin/terminals/{id}/jobs`: the terminal's failed sync jobs."""
    device_id = request.path_params["device_id"]
    await _terminal(edge, ctx, tenant, principal, device_id)
    try:
        jobs = await terminals.failed_jobs(edge.store, tenant.key, device_id)
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the queue cannot be read right now") from None
    return _json({"device_id": device_id, "failed": [
        {"job_id": j.job_id, "batch_uuid": j.batch_uuid, "client_txn_id": j.client_txn_id, "type": j.type,
         "attempts": j.attempts, "last_error": j.last_error, "updated_at": terminals.iso(j.updated_at)} for j in jobs]})


@_admin("terminals.write")
async def post_retry(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`POST /admin/terminals/{id}/jobs/retry`: re-queue the terminal's failed jobs (fresh attempts)."""
    device_id = request.path_params["device_id"]
    body = await _body(ctx, request, RetryRequest)
    await _terminal(edge, ctx, tenant, principal, device_id)
    try:
        mine = {j.job_id for j in await terminals.failed_jobs(edge.store, tenant.key, device_id)}
        wanted = mine if body.job_ids is None else mine & set(body.job_ids)  # never another terminal's job
        count = await terminals.retry_jobs(edge.store, tenant.key, sorted(wanted), time.time())
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the jobs could not be re-queued; nothing was done") from None
    edge.wake_workers()
    await _audit(edge, ctx, tenant.key, principal, "retry", device_id, {"requeued": count})
    return _json({"device_id": device_id, "requeued": count})


@_admin("audit.read")
async def get_audit(request: Request, edge: Any, ctx: Any, tenant: Any, principal: Principal) -> Response:
    """`GET /admin/audit[?before=&limit=]`: the tenant's admin actions, newest first."""
    q = request.query_params
    limit_text = q.get("limit", "100")
    if not re.fullmatch(r"[0-9]{1,4}", limit_text) or not 1 <= int(limit_text) <= 1000:
        raise Problem("validation_failed", "invalid limit", errors=[{"loc": ["query", "limit"], "msg": "1 to 1000"}])
    before = q.get("before", "")
    if not re.fullmatch(r"[0-9-]{0,40}", before):
        raise Problem("validation_failed", "invalid cursor", errors=[{"loc": ["query", "before"], "msg": "an id"}])
    try:
        records = await edge.store.audit_list(tenant.key, before, int(limit_text))
    except Exception as exc:
        raise store_unavailable(ctx, exc, "the audit log cannot be read right now") from None
    entries = [{"id": r.id, **orjson.loads(r.data)} for r in records]
    return _json({"tenant": tenant.key, "entries": entries, "next_before": entries[-1]["id"] if entries else None})


async def _audit(edge: Any, ctx: Any, tenant: str, principal: Principal, action: str, target: str,
                 details: dict[str, Any] | None = None) -> None:
    try:
        await audit.record(edge.store, ctx.log, tenant, actor=principal.name, role=principal.role, action=action,
                           target=target, address=ctx.forwarded_for, request_id=ctx.request_id, details=details)
    except Exception as exc:  # the action is done; its record is logged at least
        ctx.log.error("audit_record_failed", tenant=tenant, action=action, target=target, error=type(exc).__name__)


stores = _by_method(get_stores, post_store)  # `/admin/stores`: GET lists, POST adds
terminals_route = _by_method(get_terminals, post_terminal)  # `/admin/terminals`: GET lists, POST pre-provisions
