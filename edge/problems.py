"""RFC 9457 problem+json responses and the stable error codes tills can rely on."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from starlette.responses import Response

# code -> (status, title). Codes are a public contract: never rename one.
CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "Bad request"),
    "invalid_path": (400, "Invalid path"),
    "missing_host": (400, "Missing Host header"),
    "unauthorized": (401, "Missing or invalid device token"),
    "token_expired": (401, "Device token expired"),
    "enrollment_key_invalid": (401, "Invalid enrollment key"),
    "enrollment_code_invalid": (401, "Invalid enrollment code"),
    "webhook_signature_invalid": (401, "Missing or invalid webhook signature"),
    "admin_unauthorized": (401, "Missing or invalid admin token"),
    "admin_login_failed": (401, "Wrong login name, key or password"),
    "admin_forbidden": (403, "Not allowed for this admin role"),
    "device_blocked": (403, "Device blocked"),
    "tenant_suspended": (403, "Tenant suspended"),
    "tenant_mismatch": (403, "Tenant mismatch"),
    "proxy_not_allowed": (403, "Not allowed through the ERPNext proxy"),
    "branch_not_allowed": (403, "Not this device's branch"),
    "tenant_not_found": (404, "Tenant not found"),
    "not_found": (404, "Not found"),
    "batch_not_found": (404, "Sync batch not found"),
    "pos_not_configured": (404, "POS is not configured for this tenant"),
    "method_not_allowed": (405, "Method not allowed"),
    "request_timeout": (408, "Request timeout"),
    "payload_too_large": (413, "Payload too large"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "idempotency_in_progress": (409, "A request with this idempotency key is still in progress"),
    "device_already_registered": (409, "Device already registered"),
    "store_in_config": (409, "Stores are added in tenants.yaml"),
    "terminal_exists": (409, "A terminal with this id exists"),
    "terminal_registered": (409, "Deleting a registered terminal needs force"),
    "reference_conflict": (409, "This transaction id was posted with a different payload"),
    "erpnext_conflict": (409, "ERPNext reported a conflict"),
    "validation_failed": (422, "Validation failed"),
    "idempotency_key_reused": (422, "Idempotency key reused with a different payload"),
    "erpnext_rejected": (422, "ERPNext rejected the document"),
    "rate_limited": (429, "Too many requests"),
    "headers_too_large": (431, "Request header fields too large"),
    "internal_error": (500, "Internal error"),
    "upstream_unreachable": (502, "ERPNext unreachable"),
    "upstream_auth_failed": (502, "ERPNext rejected the gateway's credentials"),
    "upstream_error": (502, "ERPNext failed"),
    "store_unavailable": (503, "State store unavailable"),
    "too_many_connections": (503, "Too many connections"),
    "sale_outcome_unknown": (503, "An earlier attempt may still be committing in ERPNext"),
    "reference_field_missing": (503, "The tenant's ERPNext lacks the invoice reference field"),
    "erpnext_unavailable": (503, "The tenant's ERPNext is failing; nothing is sent to it for now"),
    "upstream_timeout": (504, "ERPNext timed out"),
}

CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise anywhere below a route to answer with a problem document."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def status(self) -> int:
        """The HTTP status that goes with this problem's code."""
        return CODES[self.code][0]


def store_unavailable(ctx: Any, exc: BaseException, detail: str, *, event: str = "store_unavailable",
                      retry_after: bool = True, extra: dict[str, Any] | None = None) -> Problem:
    """Log a state-store failure (type and a short detail, never a payload) and build
    the 503 that tells the till what did not happen."""
    ctx.log.error(event, error=type(exc).__name__, detail=str(exc)[:200])
    return Problem("store_unavailable", detail, headers={"Retry-After": "5"} if retry_after else None, extra=extra)


def erpnext_unavailable(wait: float, kind: str | None = None) -> Problem:
    """503 erpnext_unavailable with Retry-After: the tenant's circuit breaker is open
    (edge.shield.breaker). `kind` names the POS document that was therefore not posted."""
    seconds = max(1, math.ceil(wait))
    detail = f"the shop's ERPNext failed call after call; nothing is sent to it for {seconds} s"
    if kind is None:
        return Problem("erpnext_unavailable", detail, headers={"Retry-After": str(seconds)})
    return Problem("erpnext_unavailable", f"{detail}. The {kind} was not posted: keep it offline and send it again "
                   "later", headers={"Retry-After": str(seconds)}, extra={"sale_state": "not_posted"})


def problem_type(code: str) -> str:
    """The problem's `type`: a URI reference to its row on the gateway's own /docs/errors page
    (relative, as RFC 9457 allows, so it resolves on whichever host answered)."""
    return f"/docs/errors#{code}"


def problem_body(problem: Problem, request_id: str) -> bytes:
    """Serialise a problem document (`type`, `title`, `status`, `detail`, `code`, `request_id`)."""
    status, title = CODES[problem.code]
    doc: dict[str, Any] = {
        "type": problem_type(problem.code),
        "title": title,
        "status": status,
        "detail": problem.detail,
        "code": problem.code,
        "request_id": request_id,
    }
    if problem.errors is not None:
        doc["errors"] = problem.errors
    doc.update(problem.extra)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def problem_response(problem: Problem, request_id: str, extra_headers: Iterable[tuple[bytes, bytes]] = ()) -> Response:
    """A Starlette response carrying `problem` (and `extra_headers`, e.g. a context's
    `response_headers`, where the problem does not set the same header itself)."""
    headers = {**problem.headers, "X-Request-ID": request_id}
    present = {k.lower() for k in headers}
    for k, v in extra_headers:
        name = k.decode("latin-1")
        if name.lower() not in present:
            headers[name] = v.decode("latin-1")
    return Response(problem_body(problem, request_id), status_code=problem.status, media_type=CONTENT_TYPE, headers=headers)


def context_headers(ctx: Any) -> dict[str, str]:
    """The headers plugins asked to add to the till's answer (RateLimit-Policy, RateLimit)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in ctx.response_headers}


def validation_errors(exc: Any) -> list[dict[str, Any]]:
    """pydantic ValidationError -> the `errors` array (`loc`, `msg`), without input values."""
    return [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"]}
        for e in exc.errors(include_input=False, include_url=False)
    ]
