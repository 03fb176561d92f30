"""`/erpnext/<path>`: the authenticated proxy to a tenant's ERPNext REST API.

`/erpnext/<DocType>[/<name>]` -> `/api/resource/...`, `/erpnext/method/<dotted>`
-> `/api/method/<dotted>`. This is the hot path, so it speaks raw ASGI: no
Starlette Request/Response objects; small bodies go back in one message, large
ones are streamed.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import unquote, unquote_plus

import aiohttp
from yarl import URL

from edge.bodies import CLIENT_CLOSED, ClientGone, read_body
from edge.chain import Context
from edge.erpnext.client import OUTAGE_STATUSES
from edge.erpnext.form_dict import UnreadableBody, body_names, names_cmd, query_names
from edge.logs import access_log
from edge.problems import CONTENT_TYPE, Problem, erpnext_unavailable, problem_body
from edge.upstream import connection_named, request_headers, response_headers

PREFIX = "/erpnext/"
PREFIX_BYTES = PREFIX.encode()
_PRINTABLE = re.compile(rb"^[\x21-\x7e]+$")
_BUFFER_LIMIT = 256 * 1024  # responses up to this size are sent in one message
_CHUNK = 64 * 1024
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_READS = frozenset({"GET", "HEAD"})


class _Started(Exception):
    """A failure after the response started: no problem document can follow."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Target:
    """Where a proxied request goes and the (METHOD, target) pair its policy checks."""

    __slots__ = ("doctype", "has_name", "is_method", "rule_target", "upstream_path")

    def __init__(self, upstream_path: str, rule_target: str, is_method: bool, doctype: str = "", has_name: bool = False) -> None:
        self.upstream_path = upstream_path
        self.rule_target = rule_target
        self.is_method = is_method
        self.doctype = doctype
        self.has_name = has_name


_TARGETS: dict[bytes, Target] = {}
_TARGETS_MAX = 4096


def target_for(raw_path: bytes) -> Target:
    """parse_target, memoised: tills call the same few paths over and over."""
    target = _TARGETS.get(raw_path)
    if target is None:
        target = parse_target(raw_path)  # raises before caching: bad paths are never stored
        if len(_TARGETS) >= _TARGETS_MAX:
            _TARGETS.clear()
        _TARGETS[raw_path] = target
    return target


def parse_target(raw_path: bytes) -> Target:
    """Map the till's raw path to ERPNext's; raise Problem on traversal or junk."""
    if not raw_path.startswith(PREFIX_BYTES) or not _PRINTABLE.match(raw_path):
        # The route matched the decoded path (e.g. /%65rpnext/): map only what was sent literally.
        raise Problem("invalid_path", "the path must start with /erpnext/ and be plain ASCII")
    rest = raw_path[len(PREFIX) :].decode("latin-1")
    # Decode repeatedly so that %252e%252e hides nothing: ERPNext, or a proxy in
    # front of it, may decode again. Encodings layered deeper than that are refused.
    decoded = rest
    for _ in range(3):
        nxt = unquote(decoded)
        if nxt == decoded:
            break
        decoded = nxt
    else:
        if unquote(decoded) != decoded:
            raise Problem("invalid_path", "the path is encoded too many times")
    segments = re.split(r"[/\\]", decoded)
    # `..;x` is a dot-segment to servlet-style parsers: refuse it too.
    if any(s.split(";", 1)[0] in ("..", ".") for s in segments) or "\x00" in decoded:
        raise Problem("invalid_path", "the path contains '..' or '.' segments (encoded or not)")
    if not segments or not segments[0]:
        raise Problem("invalid_path", "name a DocType (/erpnext/<DocType>) or a method (/erpnext/method/<dotted.path>)")
    if segments[0] == "method":
        dotted = decoded[len("method/") :]
        if not _DOTTED.match(dotted):
            raise Problem("invalid_path", "a method is a dotted Python path such as frappe.auth.get_logged_user")
        return Target("/api/method/" + dotted, "method:" + dotted, True)
    doctype = unquote(rest.split("/", 1)[0])
    has_name = len([seg for seg in segments if seg]) > 1
    return Target("/api/resource/" + rest, doctype, False, doctype, has_name)


def rule_target(method: str, target: Target, query: bytes) -> str:
    """The rule a request needs. Frappe runs a whitelisted *document method* for
    `GET /api/resource/<DocType>/<name>?run_method=x` and for `POST` on a named
    document (frappe/api/v1.py), so those need `<METHOD> <DocType>:run_method`,
    never the plain read or create rule."""
    if not target.is_method and (
        (target.has_name and method == "POST") or (query and _has_run_method(query))
    ):
        return f"{target.doctype}:run_method"
    return target.rule_target


def _has_run_method(query: bytes) -> bool:
    # Names are compared decoded, as Werkzeug builds form_dict (run%5Fmethod is run_method).
    return any(unquote_plus(p.split("=", 1)[0]) == "run_method" for p in query.decode("latin-1").split("&"))


def allowed(method: str, target: Target, rules: frozenset[tuple[str, str]], query: bytes = b"") -> bool:
    """GET/HEAD on resources is open; anything else must be listed in `proxy.allow`."""
    needed = rule_target(method, target, query)
    if method in _READS and needed == target.rule_target and not target.is_method:
        return True
    if (method, needed) in rules or ("*", needed) in rules:
        return True
    return method == "HEAD" and ("GET", needed) in rules


async def handle(app: Any, scope: dict[str, Any], receive: Any, send: Any, ctx: Context) -> None:
    """Serve one /erpnext/ request end to end, including its access-log line."""
    runtime = app.runtime
    status = 500
    try:
        status = await _proxy(runtime, scope, receive, send, ctx)
    except Problem as problem:  # raised only before the response starts
        status = problem.status
        await send_problem(send, problem, ctx)
    except ClientGone:
        status = CLIENT_CLOSED
    except _Started as started:
        status = started.status
        ctx.log.warning("response_cut_short", status=status, detail=str(started.__cause__)[:200])
    except Exception:
        ctx.log.exception("unhandled_error")
        await send_problem(send, Problem("internal_error", "an unexpected error occurred"), ctx)
    finally:
        access_log(app.log, ctx, scope["method"], scope["path"], status)
        app.metrics.observe(ctx, status)


async def _proxy(runtime: Any, scope: dict[str, Any], receive: Any, send: Any, ctx: Context) -> int:
    response = await runtime.enter(ctx, "erpnext")
    if response is not None:
        await response(scope, receive, send)
        return response.status_code
    tenant = ctx.tenant
    assert tenant is not None, "the tenant plugin runs first"
    method = scope["method"]
    target = target_for(scope.get("raw_path") or scope["path"].encode())
    qs = scope.get("query_string") or b""
    if not allowed(method, target, tenant.proxy_rules, qs):
        raise Problem(
            "proxy_not_allowed",
            f"{method} {rule_target(method, target, qs)} is not in this tenant's proxy.allow list",
        )
    # The headers as they were before the body: a server that filed a chunked body's trailers
    # among them (uvicorn's own protocol does) must not add fields that were never checked.
    raw_headers = list(scope["headers"])
    body = await read_body(receive, ctx.headers, runtime.config.gateway.max_body_bytes)
    if method in _READS:
        body = b""  # Frappe reads form_dict from a body on any method: a read stays a read
    if qs or body:
        _refuse_cmd(ctx, qs, body)

    erp = tenant.config.erpnext
    headers = request_headers(raw_headers, connection_named(ctx.values(b"connection")))
    headers.extend(ctx.upstream_headers)
    site = erp.site_name
    if site:
        headers.append(("host", site))
        headers.append(("x-frappe-site-name", site))
    headers.append(("x-forwarded-for", ctx.forwarded_for))
    headers.append(("x-forwarded-proto", ctx.forwarded_proto))
    headers.append(("x-forwarded-host", ctx.host))
    headers.append(("x-request-id", ctx.request_id))
    url = URL(erp.origin + target.upstream_path + ("?" + qs.decode("latin-1") if qs else ""), encoded=True)

    assert tenant.shield is not None, "build_runtime gives every tenant one"
    breaker = tenant.shield.breaker
    wait = breaker.admit()
    if wait is not None:  # the tenant's ERPNext failed call after call: answer now, not after a timeout
        raise erpnext_unavailable(wait)
    write = method not in _READS
    if write:  # a write is a live call: the sync lane makes room (edge.shield.live)
        runtime.shields.live.begin(tenant.key)
    # enter/leave: a reload may retire this origin's pool, which then closes after its last call
    upstreams = runtime.upstreams
    session = upstreams.enter(erp.origin)
    t0 = time.perf_counter()
    try:
        try:
            upstream = await session.request(
                method,
                url,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=runtime.timeouts[tenant.key],
            )
        except TimeoutError:
            breaker.failure()
            ctx.upstream_ms = round((time.perf_counter() - t0) * 1000, 2)
            ctx.upstream_error = "timeout"
            raise Problem("upstream_timeout", f"ERPNext did not answer within {erp.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            breaker.failure()
            ctx.upstream_ms = round((time.perf_counter() - t0) * 1000, 2)
            ctx.log.warning("upstream_unreachable", error=type(exc).__name__)
            ctx.upstream_error = "unreachable"
            raise Problem("upstream_unreachable", "ERPNext could not be reached") from None
        ctx.upstream_ms = round((time.perf_counter() - t0) * 1000, 2)
        if upstream.status in OUTAGE_STATUSES:
            breaker.failure()
        else:
            breaker.success()
        try:
            if upstream.status in (401, 403):
                exc_type = await _exc_type(upstream)
                ctx.log.error("upstream_auth_failed", upstream_status=upstream.status, exc_type=exc_type)
                ctx.upstream_error = "auth"
                raise Problem(
                    "upstream_auth_failed",
                    "ERPNext refused this shop's API credentials; the gateway's configuration must be fixed",
                )
            return await _relay(upstream, send, ctx, method)
        finally:
            upstream.release()
    finally:
        breaker.release()  # a probe cancelled before its answer lets another go (no-op otherwise)
        upstreams.leave(erp.origin)
        if write:
            runtime.shields.live.end(tenant.key)


def _refuse_cmd(ctx: Context, query: bytes, body: bytes) -> None:
    """Frappe runs a `cmd` parameter as a whitelisted method before it routes /api/...
    (edge.erpnext.form_dict): wherever Frappe could read one, the request is refused."""
    repeated = ctx.repeated
    if b"content-type" in repeated:
        # Servers differ on which of two Content-Types counts: the body would be read
        # one way here and another way by ERPNext.
        raise Problem("invalid_request", "the request has more than one Content-Type header")
    if body and ctx.headers.get(b"content-encoding", b"identity").strip().lower() != b"identity":
        raise Problem("unsupported_media_type", "send the body without Content-Encoding")
    try:
        carries = names_cmd(query_names(query)) or names_cmd(body_names(ctx.headers.get(b"content-type"), body))
    except UnreadableBody as exc:
        raise Problem("invalid_request", str(exc)) from None
    if carries:
        ctx.log.warning("proxy_cmd_refused")
        raise Problem("proxy_not_allowed", "a `cmd` parameter is never forwarded: Frappe would run it as a method "
                      "before routing the request")


async def _relay(upstream: aiohttp.ClientResponse, send: Any, ctx: Context, method: str) -> int:
    headers = response_headers(upstream.raw_headers)
    headers.append((b"x-request-id", ctx.request_id.encode()))
    headers.extend(ctx.response_headers)
    length = upstream.content_length
    try:
        if method == "HEAD" or upstream.status in (204, 304):
            if length is not None and method == "HEAD":
                headers.append((b"content-length", str(length).encode()))
            await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return upstream.status
        if length is not None and length <= _BUFFER_LIMIT:
            data = await upstream.read()
            headers.append((b"content-length", str(len(data)).encode()))
            await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
            await send({"type": "http.response.body", "body": data})
            return upstream.status
    except (TimeoutError, aiohttp.ClientError):
        ctx.upstream_error = "cut_short"
        raise Problem("upstream_unreachable", "ERPNext dropped the connection mid-response") from None
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": upstream.status, "headers": headers})
    # Past this point the status is sent: a failure can only cut the body short,
    # which the till sees as a broken response rather than a wrong one.
    try:
        async for chunk in upstream.content.iter_chunked(_CHUNK):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except Exception as exc:
        ctx.upstream_error = "cut_short"
        raise _Started(upstream.status) from exc
    return upstream.status


async def _exc_type(upstream: aiohttp.ClientResponse) -> str | None:
    try:
        body = await upstream.json(content_type=None)
        return body.get("exc_type") if isinstance(body, dict) else None
    except Exception:
        return None


async def send_problem(send: Any, problem: Problem, ctx: Context) -> None:
    """Answer with problem+json over raw ASGI."""
    body = problem_body(problem, ctx.request_id)
    headers = [
        (b"content-type", CONTENT_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", ctx.request_id.encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem.headers.items()]
    headers += ctx.response_headers
    await send({"type": "http.response.start", "status": problem.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
