"""`GET /openapi.json`: the public API, with schemas generated from the same
pydantic models that validate requests and shape responses.

Every status an operation can answer is listed with the exact problem `code`s
it may carry (from edge.problems.CODES), so a till can rely on them; errors are
`application/problem+json`, everything else `application/json` (and
`text/plain` for /metrics). tests/test_schemathesis.py fuzzes the running
gateway against this document.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge import __version__
from edge.masterdata.webhooks import SIGNATURE_HEADER, Notice
from edge.problems import CODES
from edge.routes.admin import CodeRequest, LoginRequest, NewTerminal, RetryRequest
from edge.routes.devices import RegisterRequest, RegisterResponse
from edge.sales import (
    Closure,
    ClosureView,
    InvoiceView,
    Opening,
    OpeningView,
    Return,
    Sale,
    SyncAccepted,
    SyncBatchRequest,
    SyncStatus,
)

PROBLEM = "application/problem+json"
JSON = "application/json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable `code`",
    "required": ["type", "title", "status", "detail", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "description": "`/docs/errors#<code>`: the code's row on this gateway's error page"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted(CODES)},
        "request_id": {"type": "string", "description": "also sent as the X-Request-ID header"},
        "errors": {
            "type": "array",
            "description": "validation_failed: where the request is wrong",
            "items": {
                "type": "object",
                "required": ["loc", "msg"],
                "properties": {"loc": {"type": "array", "items": {"type": "string"}}, "msg": {"type": "string"}},
            },
        },
        "sale_state": {"type": "string", "enum": ["not_posted", "unknown"],
                       "description": "POS calls: whether ERPNext may hold the document after all"},
        "erpnext": {"type": "object", "description": "ERPNext's exc_type and decoded _server_messages"},
    },
}

HEALTH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string", "const": "ok"}},
}

READY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ready", "not ready"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "check name -> \"ok\" or why it failed (config, store)"},
        "reference_fields": {"type": "object", "additionalProperties": {"type": "string", "enum": ["ok", "missing", "unknown"]},
                             "description": "POS tenant -> its invoice reference field (reported, not gating)"},
        "last_reload": {"type": "object", "description": "the outcome of the last configuration reload, if any"},
    },
}

ERPNEXT_ANSWER: dict[str, Any] = {
    "type": "object",
    "description": "Frappe's own JSON (`data`, `message`, or `exc_type` and `_server_messages`), passed through",
}
# What ERPNext sends is passed through as it is: usually JSON, but its content type is its own.
_PASSTHROUGH: dict[str, Any] = {JSON: {"schema": {"$ref": "#/components/schemas/ErpnextAnswer"}}, "*/*": {"schema": {}}}

# Response headers (RFC 9110 / draft-ietf-httpapi-ratelimit-headers).
_HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "the request's id (the caller's X-Request-ID when it is sane); in every log line",
                     "schema": {"type": "string", "minLength": 1}},
    "RateLimit-Policy": {"description": "the tenant's quota and window in seconds",
                         "schema": {"type": "string", "pattern": r'^"default";q=\d+;w=\d+$'}},
    "RateLimit": {"description": "requests remaining and seconds until the window frees one",
                  "schema": {"type": "string", "pattern": r'^"default";r=\d+;t=\d+$'}},
    "Retry-After": {"description": "seconds to wait before retrying", "schema": {"type": "integer", "minimum": 0}},
    "WWW-Authenticate": {"description": "the bearer challenge", "schema": {"type": "string", "pattern": "^Bearer "}},
    "Location": {"description": "where to follow the batch",
                 "schema": {"type": "string", "pattern": "^/sync/status/[0-9a-f-]{36}$"}},
    "Idempotent-Replayed": {"description": "the stored answer to an earlier request with the same idempotency key",
                            "schema": {"type": "string", "enum": ["true"]}},
    "ETag": {"description": "strong validator of this answer: send it as If-None-Match for a 304",
             "schema": {"type": "string", "pattern": '^"[0-9a-f]+"$'}},
    "Pos-Edge-Stale": {"description": "the data is the store's last good copy: ERPNext could not be read lately",
                       "schema": {"type": "string", "enum": ["true"]}},
}


# Required where they are always sent; the others are optional.
_ALWAYS = {"X-Request-ID", "WWW-Authenticate", "Location", "ETag"}


def _header(name: str, required: bool = False) -> dict[str, Any]:
    if required == (name in _ALWAYS):
        return {"$ref": f"#/components/headers/{name}"}
    return {**_HEADERS[name], "required": required}  # e.g. Retry-After, always there on a 429


def _headers(required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict[str, Any]:
    out = {"X-Request-ID": _header("X-Request-ID", True)}
    out.update({name: _header(name, True) for name in required})
    out.update({name: _header(name) for name in optional})
    return out


def _ok(status: int, description: str, schema: dict[str, Any], media: str = JSON, *,
        required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return {str(status): {"description": description, "headers": _headers(required, optional),
                          "content": {media: {"schema": schema}}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


_RATE_HEADERS = ("RateLimit-Policy", "RateLimit")
# Error statuses with more headers: (always there, sometimes there).
_ERROR_HEADERS: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    409: ((), ("Retry-After", "Idempotent-Replayed")),  # in progress: when to look again; a replayed reference_conflict
    429: (("Retry-After", *_RATE_HEADERS), ()),
    503: ((), ("Retry-After",)),  # store_unavailable, sale_outcome_unknown
}

# Codes by the step that produces them.
TENANT = ("missing_host", "tenant_not_found", "tenant_suspended", "internal_error")  # every tenant route
JWT = ("unauthorized", "token_expired", "device_blocked", "store_unavailable")
RATE = ("rate_limited",)
BODY = ("invalid_request", "payload_too_large", "unsupported_media_type", "validation_failed")
UPSTREAM = ("upstream_unreachable", "upstream_timeout", "upstream_auth_failed")
MASTERDATA = ("pos_not_configured", "validation_failed", "branch_not_allowed", "upstream_unreachable")


def _errors(*codes: str, passthrough: bool = False, challenge: bool = False) -> dict[str, Any]:
    """One response per status, its schema pinned to exactly these codes. `passthrough`:
    ERPNext's own answer with the same status may come back instead (proxy only);
    `challenge`: a 401 comes from the device-token check, with WWW-Authenticate."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(CODES[code][0], []).append(code)
    out: dict[str, Any] = {}
    for status, group in sorted(by_status.items()):
        schema = {"allOf": [_ref("Problem")],
                  "properties": {"status": {"const": status}, "code": {"enum": sorted(group)}}}
        content: dict[str, Any] = {PROBLEM: {"schema": schema}}
        description = ", ".join(f"`{c}`" for c in sorted(group))
        required, optional = _ERROR_HEADERS.get(status, ((), ()))
        if passthrough:
            content.update(_PASSTHROUGH)
            description += "; or ERPNext's own answer with this status"
            required, optional = (), (*required, *optional)  # ERPNext's own 429 need not say Retry-After
        if status == 401 and challenge:
            required = ("WWW-Authenticate",)
        # The limiter runs after the tenant and token checks: answers after it carry its headers.
        optional = tuple(dict.fromkeys(h for h in (*optional, *_RATE_HEADERS) if h not in required))
        out[str(status)] = {"description": description, "headers": _headers(required, optional), "content": content}
    return out


def _body(ref: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(ref)}}}


_SECURED: list[dict[str, list[str]]] = [{"deviceToken": []}]


def _pos(model: str, view: str, summary: str, *, closure: bool = False) -> dict[str, Any]:
    codes = [*TENANT, *JWT, *RATE, "pos_not_configured", *BODY, "idempotency_key_reused", "idempotency_in_progress",
             "erpnext_rejected", "erpnext_conflict", "upstream_error", "branch_not_allowed", *UPSTREAM]
    if not closure:
        codes += ["reference_field_missing", "reference_conflict", "sale_outcome_unknown"]
    return {
        "post": {
            "summary": summary,
            "operationId": f"post_{model.lower()}",
            "security": _SECURED,
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "required": False,
                 # empty counts as absent (a till's HTTP library may send the header with no value)
                 "schema": {"type": "string", "pattern": r"^([A-Za-z0-9][A-Za-z0-9._:-]{0,139})?$"},
                 "description": "scoped per tenant and device; when absent or empty, the body's client_txn_id"},
            ],
            "requestBody": _body(model),
            "responses": {
                **_ok(201, "created, or replayed (Idempotent-Replayed: true)", _ref(view),
                      optional=(*_RATE_HEADERS, "Idempotent-Replayed")),
                **_errors(*codes, challenge=True),
            },
        }
    }


def _proxy(method: str) -> dict[str, Any]:
    return {
        "summary": "forwarded to the tenant's ERPNext: /erpnext/<DocType>[/<name>] -> /api/resource/..., "
                   "/erpnext/method/<dotted.path> -> /api/method/...",
        "description": "GET and HEAD on resources are open to any device; other methods and method calls only where "
                       "the tenant's `proxy.allow` lists them. ERPNext's answer is passed through (status, body, "
                       "content type) except a 401/403 to the gateway's own credentials, which is 502.",
        "operationId": f"erpnext_{method}",
        "security": _SECURED,
        "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1},
                        "description": "a DocType (and document name), or method/<dotted.path>",
                        "examples": {"resource": {"summary": "a DocType", "value": "Item"},
                                     "method": {"summary": "a whitelisted method",
                                                "value": "method/frappe.auth.get_logged_user"}}}],
        "responses": {status: {"$ref": f"#/components/responses/Erpnext{status.title()}"} for status in _proxy_responses()},
    }


@cache
def _proxy_responses() -> dict[str, Any]:
    """Shared by every method of /erpnext/{path} (components/responses/Erpnext<status>)."""
    return {
        "default": {"description": "ERPNext's own answer, passed through", "headers": _headers(optional=_RATE_HEADERS),
                    "content": _PASSTHROUGH},
        **_errors(*TENANT, *JWT, *RATE, "invalid_path", "invalid_request", "proxy_not_allowed", "payload_too_large",
                  "unsupported_media_type", *UPSTREAM, passthrough=True, challenge=True),
    }


_BRANCH_PARAM: dict[str, Any] = {
    "name": "branch_id", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 140},
    "description": "the branch, for a device registered without one (else it must be the device's)"}

_PAGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["collection", "cursor", "next", "deleted", "stale", "items"],
    "properties": {
        "collection": {"type": "string"},
        "scope": {"type": ["string", "null"], "description": "the price list, for prices"},
        "cursor": {"type": "string", "description": "pass as `since` for what changed after this page"},
        "next": {"type": ["string", "null"], "description": "the next page, while there is one"},
        "deleted": {"type": "array", "items": {"type": "string"}, "description": "names that left the collection"},
        "stale": {"type": "boolean", "description": "ERPNext could not be read lately: the store's last good data"},
        "refreshed_at": {"type": ["string", "null"], "format": "date-time"},
        "items": {"type": "array", "items": {"type": "object"}},
    },
}


def _collection(name: str) -> dict[str, Any]:
    return {
        "summary": f"the {name} of the till's branch, paged; with `since`, what changed after that cursor",
        "operationId": f"get_{name}", "security": _SECURED,
        "parameters": [
            {"name": "since", "in": "query", "required": False, "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
             "description": "a cursor from an earlier answer; absent: a first load (live rows only)"},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 5000}, "description": "rows per page"},
            _BRANCH_PARAM,
        ],
        "responses": {
            **_ok(200, f"a page of {name}", _PAGE_SCHEMA, required=("ETag",), optional=(*_RATE_HEADERS, "Pos-Edge-Stale")),
            "304": {"description": "If-None-Match matched: nothing changed",
                    "headers": _headers(("ETag",), ("Pos-Edge-Stale",))},
            **_errors(*TENANT, *JWT, *RATE, *MASTERDATA, challenge=True),
        },
    }


_ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
_TERMINAL = {"type": "object", "required": ["device_id", "status", "generation"], "properties": {
    "device_id": {"type": "string"}, "device_name": {"type": "string"}, "branch_id": {"type": ["string", "null"]},
    "status": {"enum": ["active", "blocked", "reset"]}, "generation": {"type": "integer"},
    "registered": {"type": "boolean"}, "registered_at": {"type": ["string", "null"]},
    "updated_at": {"type": ["string", "null"]}, "last_seen": {"type": ["string", "null"]},
    "last_sale": {"type": ["string", "null"]},
    "jobs": {"type": "object", "properties": {"queued": {"type": "integer"}, "failed": {"type": "integer"}}}}}


_WITH_CODE = {"type": "object", "required": ["terminal", "enrollment_code"], "properties": {
    "terminal": _TERMINAL, "enrollment_code": {"type": "string"}, "code_expires_at": {"type": ["string", "null"]}}}


def _admin_op(summary: str, op_id: str, ok: dict[str, Any], *codes: str, login: bool = False,
              params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An /admin operation: the tenant of the Host, then the admin token (or, `login`, a key
    or password); refusals before a principal is known are counted per address (429 without
    RateLimit headers)."""
    auth = ("validation_failed", "admin_login_failed") if login else ("admin_unauthorized", "admin_forbidden")
    errors = _errors(*TENANT, *auth, *codes, challenge=not login)
    too_many = _errors("rate_limited")["429"]
    too_many["headers"] = _headers(("Retry-After",))
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "security": [] if login else _ADMIN,
                          "parameters": params or [], "responses": {**ok, **errors, "429": too_many}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return op


def _admin_paths() -> dict[str, Any]:
    device = {"name": "device_id", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "a terminal's device id; outside the principal's stores: 404"}
    body_codes = ("invalid_request", "payload_too_large", "unsupported_media_type", "validation_failed")
    terminal = _ok(200, "the terminal as it is now", _TERMINAL)
    return {
        "/admin/": {"get": {
            "summary": "the admin web console (a client of this API; its scripts and styles come from this gateway "
                       "only: a strict Content-Security-Policy)", "operationId": "admin_console", "security": [],
            "responses": _ok(200, "an HTML page", {"type": "string"}, media="text/html")}},
        "/admin/static/{name}": {"get": {
            "summary": "the console's script and style sheet", "operationId": "admin_console_file", "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"enum": ["console.js", "console.css"]}}],
            "responses": {"200": {"description": "the file", "headers": _headers(), "content": {
                "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}},
                          **_errors("not_found")}}},
        "/admin/login": {"post": _admin_op(
            "an admin token (short-lived; its own audience: never a device token) for a principal of this tenant "
            "(tenants.<key>.admins) or an operator (gateway.operators)", "admin_login",
            _ok(200, "logged in", {"type": "object", "required": ["token", "token_type", "expires_at", "role"],
                                   "properties": {"token": {"type": "string"}, "token_type": {"const": "Bearer"},
                                                  "expires_at": {"type": "string"}, "name": {"type": "string"},
                                                  "role": {"type": "string"}, "tenant": {"type": "string"},
                                                  "branches": {"type": "array", "items": {"type": "string"}}}}),
            *body_codes, login=True, body=LoginRequest.model_json_schema())},
        "/admin/stores": {
            "get": _admin_op("the tenant's stores (branches in tenants.yaml) the principal sees, with their terminal "
                             "counts", "admin_get_stores",
                             _ok(200, "stores", {"type": "object", "required": ["tenant", "stores"]}),
                             "store_unavailable"),
            "post": _admin_op("add a store: tenants.yaml is the source of truth, so the answer is 409 "
                              "`store_in_config` with the snippet to add to it (`snippet`), unless the operator "
                              "enabled gateway.admin.write_config: then the branch is written into the file and "
                              "reloaded (201)", "admin_post_store",
                              _ok(201, "written into tenants.yaml and reloaded",
                                  {"type": "object", "required": ["branch_id", "reloaded"]}),
                              *body_codes, "store_in_config",
                              body={"type": "object", "required": ["branch_id", "pos_profile", "warehouse"]}),
        },
        "/admin/terminals": {
            "get": _admin_op(
                "the terminals (devices) the principal sees", "admin_get_terminals",
                _ok(200, "terminals", {"type": "object", "required": ["tenant", "terminals"],
                                       "properties": {"terminals": {"type": "array", "items": _TERMINAL}}}),
                "not_found", "store_unavailable", params=[{**_BRANCH_PARAM, "description": "only this store's"}]),
            "post": _admin_op(
                "pre-provision a terminal in a store: 201 with the one-time enrollment code that alone enrols it "
                "(in that store)", "admin_post_terminal", _ok(201, "made", _WITH_CODE), *body_codes, "not_found",
                "terminal_exists", "store_unavailable", body=NewTerminal.model_json_schema()),
        },
        "/admin/terminals/{device_id}": {"delete": _admin_op(
            "forget a terminal (a registered till needs force=true: its id could then enrol without proof)",
            "admin_delete_terminal", {"204": {"description": "deleted", "headers": _headers()}}, "not_found",
            "terminal_registered", "validation_failed", "store_unavailable",
            params=[device, {"name": "force", "in": "query", "required": False, "schema": {"enum": ["true", "false"]}}])},
        "/admin/terminals/{device_id}/reset": {"post": _admin_op(
            "retire a terminal's tokens now: 200 with the one-time enrollment code its till registers again with",
            "admin_reset_terminal", _ok(200, "reset", _WITH_CODE), *body_codes, "not_found", "store_unavailable",
            params=[device], body=CodeRequest.model_json_schema())},
        "/admin/terminals/{device_id}/move": {"post": _admin_op(
            "move a terminal to another store: its tokens (which name the old one) are retired, and it registers "
            "into the new one with the code answered", "admin_move_terminal", _ok(200, "moved", _WITH_CODE),
            *body_codes, "not_found", "store_unavailable", params=[device], body=CodeRequest.model_json_schema())},
        "/admin/terminals/{device_id}/jobs": {"get": _admin_op(
            "the terminal's failed sync jobs", "admin_get_terminal_jobs",
            _ok(200, "failed jobs", {"type": "object", "required": ["device_id", "failed"]}), "not_found",
            "store_unavailable", params=[device])},
        "/admin/terminals/{device_id}/jobs/retry": {"post": _admin_op(
            "re-queue the terminal's failed jobs (all, or `job_ids` among them) with fresh attempts",
            "admin_retry_terminal_jobs", _ok(200, "re-queued", {"type": "object", "required": ["requeued"]}),
            *body_codes, "not_found", "store_unavailable", params=[device], body=RetryRequest.model_json_schema())},
        "/admin/terminals/{device_id}/block": {"post": _admin_op(
            "block a terminal: its tokens are refused (403 device_blocked) and its event stream ends",
            "admin_block_terminal", terminal, "not_found", "store_unavailable", params=[device])},
        "/admin/terminals/{device_id}/unblock": {"post": _admin_op(
            "unblock a terminal", "admin_unblock_terminal", terminal, "not_found", "store_unavailable",
            params=[device])},
        "/admin/audit": {"get": _admin_op(
            "the tenant's admin actions, newest first (company admins and operators)", "admin_get_audit",
            _ok(200, "audit records", {"type": "object", "required": ["tenant", "entries", "next_before"]}),
            "validation_failed", "store_unavailable", params=[
                {"name": "before", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 40},
                 "description": "`next_before` of the previous page"},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}])},
    }


def _webhook() -> dict[str, Any]:
    too_many = _errors("rate_limited")["429"]
    too_many["headers"] = _headers(("Retry-After",))  # the per-address limit: no RateLimit headers
    return {
        "summary": "ERPNext's Webhook: a followed document changed (pos-edge reads the change from ERPNext itself "
                   "and tells the tills); `pos-edge erpnext setup` creates the Webhooks",
        "description": "The tenant is the path's, not the Host's. An unknown tenant and one without "
                       "`erpnext.webhook_secret` are the same 404; a missing or wrong signature is 401 "
                       "`webhook_signature_invalid` and changes nothing; refusals count against the caller's "
                       "address (`gateway.unauthenticated_rate_limit`).",
        "operationId": "post_erpnext_webhook",
        "security": [{"erpnextWebhook": []}],
        "parameters": [{"name": "tenant", "in": "path", "required": True, "schema": {"type": "string"},
                        "description": "a tenant key in tenants.yaml"}],
        "requestBody": {"required": True, "content": {JSON: {"schema": Notice.model_json_schema()}}},
        "responses": {
            **_ok(202, "verified: the document's collections are being refreshed", {
                "type": "object", "required": ["accepted", "refresh"],
                "properties": {"accepted": {"const": True}, "refresh": {"type": "array", "items": {
                    "type": "object", "required": ["collection", "scope"],
                    "properties": {"collection": {"type": "string"}, "scope": {"type": ["string", "null"]}}}}}}),
            **_errors("invalid_request", "webhook_signature_invalid", "tenant_suspended", "not_found",
                      "pos_not_configured", "payload_too_large", "validation_failed", "internal_error",
                      "store_unavailable"),
            "429": too_many,
        },
    }


@cache
def spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once)."""
    models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (m, "validation") for m in (RegisterRequest, Sale, Return, Closure, Opening, SyncBatchRequest)]
    models += [(m, "serialization") for m in (RegisterResponse, InvoiceView, ClosureView, OpeningView, SyncAccepted,
                                              SyncStatus)]
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    schemas = {**defs.get("$defs", {}), "Problem": PROBLEM_SCHEMA, "ErpnextAnswer": ERPNEXT_ANSWER,
               "Health": HEALTH_SCHEMA, "Readiness": READY_SCHEMA}
    document = _document(schemas)
    document["paths"].update(_saleflex_aliases(document["paths"]))
    return document


# SaleFlex GATE's paths -> the pos-edge path whose handler answers them (edge.app.SALEFLEX)
SALEFLEX_ALIASES = {"/pos/register": "/gateway/device/register", "/pos/init": "/v1/init",
                    "/pos/products": "/v1/products", "/pos/campaigns": "/v1/campaigns",
                    "/pos/transactions": "/sync/batch", "/pos/closures": "/v1/closure"}


def _saleflex_aliases(paths: dict[str, Any]) -> dict[str, Any]:
    """Each SaleFlex path, with and without its trailing slash, documented as its original."""
    out: dict[str, Any] = {}
    for alias, original in SALEFLEX_ALIASES.items():
        for path in (alias + "/", alias):
            item = copy.deepcopy(paths[original])
            for method, op in item.items():
                op["operationId"] = f"{op['operationId']}_saleflex{'_slash' if path.endswith('/') else ''}"
                op["summary"] = f"SaleFlex GATE alias of {method.upper()} {original}: {op['summary']}"
                for answer in op["responses"].values():  # links name operations of the original path
                    answer.pop("links", None)
            out[path] = item
    return out


def _document(schemas: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pos-edge",
            "version": __version__,
            "description": (
                "Multi-tenant POS gateway in front of ERPNext.\n\n"
                "**The tenant is chosen by the Host header**: `<tenant>.<base domain>` (one of `gateway.base_domains`) "
                "or one of the tenant's extra `hosts`; an unknown host is 404 `tenant_not_found`, none at all 400 "
                "`missing_host`. /healthz, /readyz, /metrics and /openapi.json answer on any host.\n\n"
                "Devices authenticate with the bearer JWT that `POST /gateway/device/register` returns.\n\n"
                "Every answer carries `X-Request-ID`; every error is `application/problem+json` with a stable `code`.\n\n"
                "On any route the server itself may answer, before the request reaches the application: 431 "
                "`headers_too_large` (request line and headers over `gateway.server.max_header_bytes` or "
                "`max_headers`), 408 `request_timeout` (headers slower than `header_timeout`), 503 "
                "`too_many_connections` (over `max_connections`); each closes the connection."
            ),
        },
        "servers": [{
            "url": "https://{tenant}.{base_domain}",
            "description": "one tenant's host (the gateway serves every tenant on one listener)",
            "variables": {
                "tenant": {"default": "shop1", "description": "a tenant key in tenants.yaml"},
                "base_domain": {"default": "pos.example.com", "description": "one of gateway.base_domains"},
            },
        }],
        "components": {
            "schemas": schemas,
            "headers": {name: {**h, "required": name in _ALWAYS} for name, h in _HEADERS.items()},
            "responses": {f"Erpnext{status.title()}": r for status, r in _proxy_responses().items()},
            "securitySchemes": {
                "deviceToken": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "a device token from /gateway/device/register, valid for the tenant of the Host only",
                },
                "adminToken": {
                    "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                    "description": "an admin token from POST /admin/login (a device token is never accepted here)",
                },
                "erpnextWebhook": {
                    "type": "apiKey", "in": "header", "name": SIGNATURE_HEADER,
                    "description": "base64 of the HMAC-SHA256 of the raw body with the tenant's "
                                   "`erpnext.webhook_secret` (Frappe's Webhook with Enable Security)",
                },
            },
        },
        "paths": {
            "/gateway/device/register": {
                "post": {
                    "summary": "enrol a till and get its device token (re-registering retires its older tokens)",
                    "description": "A device id that is registered already is re-registered only with proof: "
                                   "its own token in `Authorization: Bearer` (expired or not), or the one-time "
                                   "`enrollment_code` of `pos-edge devices reset`; else 409 `device_already_registered`.",
                    "operationId": "register_device",
                    "security": [],
                    "requestBody": _body("RegisterRequest"),
                    "responses": {
                        **_ok(201, "registered", _ref("RegisterResponse"), optional=_RATE_HEADERS),
                        **_errors(*TENANT, *RATE, *BODY, "tenant_mismatch", "enrollment_key_invalid",
                                  "enrollment_code_invalid", "device_blocked", "device_already_registered",
                                  "store_unavailable"),
                    },
                }
            },
            "/v1/sale": _pos("Sale", "InvoiceView", "a sale becomes a submitted Sales/POS Invoice"),
            "/v1/return": _pos("Return", "InvoiceView", "a return becomes a submitted return invoice"),
            "/v1/closure": _pos("Closure", "ClosureView", "end of a till's period: per-method totals, POS Closing Entry",
                                closure=True),
            "/v1/opening": _pos("Opening", "OpeningView", "start of a branch's shift: its POS Opening Entry "
                                "(POS Invoice tenants; idempotent: an open shift is answered as it is)", closure=True),
            "/sync/batch": {
                "post": {
                    "summary": "queue an offline till's transactions (1-500); 202 once they are durably stored",
                    "operationId": "post_sync_batch",
                    "security": _SECURED,
                    "requestBody": _body("SyncBatchRequest"),
                    "responses": {
                        "202": {**_ok(202, "queued", _ref("SyncAccepted"), required=("Location",),
                                      optional=_RATE_HEADERS)["202"],
                                "links": {"GetSyncStatus": {
                                    "operationId": "get_sync_status",
                                    "parameters": {"batch_uuid": "$response.body#/batch_uuid"},
                                    "description": "follow the batch (the Location header says the same)"}}},
                        **_errors(*TENANT, *JWT, *RATE, "pos_not_configured", *BODY, "branch_not_allowed",
                                  challenge=True),
                    },
                }
            },
            "/sync/status/{batch_uuid}": {
                "get": {
                    "summary": "progress of a batch uploaded by this device",
                    "operationId": "get_sync_status",
                    "security": _SECURED,
                    "parameters": [{"name": "batch_uuid", "in": "path", "required": True,
                                    "schema": {"type": "string", "format": "uuid"},
                                    "description": "from the 202 of /sync/batch; another device's batch is 404"}],
                    "responses": {
                        **_ok(200, "the batch and its jobs", _ref("SyncStatus"), optional=_RATE_HEADERS),
                        **_errors(*TENANT, *JWT, *RATE, "batch_not_found", challenge=True),
                    },
                }
            },
            "/v1/init": {"get": {
                "summary": "what a till needs to sell offline: its branch, POS Profile and the first page of each "
                           "collection with its cursor (from the gateway's store)",
                "operationId": "get_init", "security": _SECURED,
                "parameters": [_BRANCH_PARAM],
                "responses": {
                    **_ok(200, "the branch's master data", {"type": "object"}, required=("ETag",),
                          optional=(*_RATE_HEADERS, "Pos-Edge-Stale")),
                    "304": {"description": "If-None-Match matched: nothing changed",
                    "headers": _headers(("ETag",), ("Pos-Edge-Stale",))},
                    **_errors(*TENANT, *JWT, *RATE, *MASTERDATA, challenge=True),
                },
            }},
            **{f"/v1/{name}": {"get": _collection(name)} for name in ("products", "prices", "customers", "campaigns")},
            "/v1/events": {"get": {
                "summary": "Server-Sent Events of the till's tenant and branch: products/prices/customers/campaigns/"
                           "settings.changed (with the new cursor), device.blocked, config.changed, resync",
                "operationId": "get_events", "security": _SECURED,
                "parameters": [_BRANCH_PARAM, {
                    "name": "Last-Event-ID", "in": "header", "required": False,
                    "schema": {"type": "string", "maxLength": 64, "pattern": "^[0-9A-Za-z-]*$"},
                    "description": "resume after this event (an EventSource sends it when it reconnects)"}],
                "responses": {
                    **_ok(200, "an event stream that stays open", {"type": "string"}, media="text/event-stream",
                          optional=_RATE_HEADERS),
                    **_errors(*TENANT, *JWT, *RATE, *MASTERDATA, challenge=True),
                },
            }},
            "/hooks/erpnext/{tenant}": {"post": _webhook()},
            **_admin_paths(),
            "/erpnext/{path}": {m: _proxy(m) for m in ("get", "head", "post", "put", "patch", "delete")},
            "/healthz": {"get": {
                "summary": "liveness: the process answers", "operationId": "healthz", "security": [],
                "responses": _ok(200, "alive", _ref("Health")),
            }},
            "/readyz": {"get": {
                "summary": "readiness: config loaded and store reachable", "operationId": "readyz", "security": [],
                "responses": {**_ok(200, "ready", _ref("Readiness")), **_ok(503, "a check failed", _ref("Readiness"))},
            }},
            "/metrics": {"get": {
                "summary": "Prometheus metrics of this process (text exposition format 0.0.4)",
                "description": "Served on the `gateway.metrics.listen` listener; on this one only with "
                               "`Authorization: Bearer <gateway.metrics.token>`, and 404 when no token is configured.",
                "operationId": "metrics", "security": [],
                "responses": {**_ok(200, "the metrics", {"type": "string"}, media="text/plain"),
                              **_errors("not_found", "unauthorized", challenge=True)},
            }},
            "/openapi.json": {"get": {
                "summary": "this document", "operationId": "openapi", "security": [],
                "responses": _ok(200, "the OpenAPI 3.1 description", {"type": "object"}),
            }},
            "/docs": {"get": {
                "summary": "this document in Swagger UI (served by the gateway, no CDN)", "operationId": "docs",
                "security": [], "responses": _ok(200, "an HTML page", {"type": "string"}, media="text/html"),
            }},
            "/docs/errors": {"get": {
                "summary": "every problem code: a problem's `type` is `/docs/errors#<code>`", "operationId": "errors",
                "security": [], "responses": _ok(200, "an HTML page", {"type": "string"}, media="text/html"),
            }},
        },
    }


async def openapi_json(request: Request) -> Response:
    """`GET /openapi.json`."""
    return JSONResponse(spec())
