"""`POST /gateway/device/register`: enrol a till and hand it a device token."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge.bodies import read_json
from edge.problems import Problem, context_headers, validation_errors
from edge.sales import id_text
from edge.store import DeviceBlocked, DeviceProofRequired, EnrollmentCodeInvalid
from edge.tokens import InvalidToken

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class RegisterRequest(BaseModel):
    """Body of a registration (Till King contract)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "device_id": "till-01", "device_name": "Front till", "tenant_subdomain": "shop1", "branch_id": "main",
        "enrollment_key": "the tenant's registration.enrollment_key"}]})

    device_id: str = Field(min_length=1, max_length=128, pattern=ID_PATTERN)
    device_name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
    tenant_subdomain: str = Field(min_length=1, max_length=63)
    branch_id: Annotated[str, BeforeValidator(id_text), Field(min_length=1, max_length=128, pattern=ID_PATTERN)] | None = Field(
        default=None, description="the till's branch: text or an integer (compared as text); null: none yet, the till then "
                    "names the branch on each sale")
    enrollment_key: str | None = Field(default=None, max_length=512)
    enrollment_code: str | None = Field(default=None, max_length=64, description=(
        "the one-time code of `pos-edge devices reset` for this device (also accepted in enrollment_key)"))


class RegisterResponse(BaseModel):
    """201 body: the token and what it is for."""

    token: str
    token_type: str = "Bearer"
    expires_at: str
    tenant_name: str
    device_id: str
    branch_id: str | None


async def register(request: Request) -> Response:
    """Register (or re-register) a device; a re-registration retires its older tokens."""
    edge = request.app.state.edge
    runtime = edge.runtime
    ctx = request.scope["pos_edge.ctx"]
    denied = await runtime.enter(ctx, "register")
    if denied is not None:
        return denied
    try:
        return await _enrol(request, edge, runtime, ctx)
    except Problem as problem:
        if 400 <= problem.status < 500:  # a refused registration counts against the client's address
            limited = await runtime.services.unauthenticated.refused(ctx)
            if limited is not None:
                raise limited from None
        raise


async def _enrol(request: Request, edge: Any, runtime: Any, ctx: Any) -> Response:
    tenant = ctx.tenant
    raw = await read_json(request.receive, ctx.headers, runtime.config.gateway.max_body_bytes)
    try:
        body = RegisterRequest.model_validate(raw)
    except ValidationError as exc:
        raise Problem("validation_failed", "the registration is invalid", errors=validation_errors(exc)) from None
    if body.tenant_subdomain.lower() != tenant.key:
        raise Problem("tenant_mismatch", f"this host serves tenant {tenant.key}, not {body.tenant_subdomain}")
    code, code_field = body.enrollment_code, "enrollment_code"
    expected = tenant.config.registration.enrollment_key
    key_ok = expected is None or hmac.compare_digest((body.enrollment_key or "").encode(),
                                                     expected.get_secret_value().encode())
    if code is None and body.enrollment_key and not (expected is not None and key_ok) \
            and await _code_pending(edge.store, ctx, tenant.key, body.device_id):
        # a till whose set-up screen has only the key field: its device's code typed there
        code, code_field = body.enrollment_key, "enrollment_key"
    elif code is None and not key_ok:
        raise Problem("enrollment_key_invalid", "the enrollment key is missing or wrong")
    proven, proof_jti = _proof(runtime, ctx, tenant.key, body.device_id)
    try:
        device = await edge.store.register_device(
            tenant.key, body.device_id, body.device_name, body.branch_id or "", time.time(),
            proven_generation=proven, proof_jti=proof_jti, code_hash=code_digest(code) if code else None,
        )
    except DeviceBlocked:
        raise Problem("device_blocked", "this device has been blocked by an administrator") from None
    except DeviceProofRequired:
        ctx.log.warning("device_reregistration_refused", device_id=body.device_id)
        raise Problem("device_already_registered", f"device {body.device_id} is registered already: re-register "
                      "with its current token (Authorization: Bearer <token>, expired or not), or with the enrollment "
                      f"code an administrator gets from: pos-edge devices reset --tenant {tenant.key} {body.device_id}",
                      ) from None
    except EnrollmentCodeInvalid:
        ctx.log.warning("enrollment_code_refused", device_id=body.device_id)
        if code_field == "enrollment_key":
            raise Problem("enrollment_key_invalid", "the enrollment key is missing or wrong") from None
        raise Problem("enrollment_code_invalid", "the enrollment code is not this device's, was used, or expired") from None
    except Exception as exc:
        ctx.log.error("store_unavailable", error=type(exc).__name__)
        raise Problem("store_unavailable", "the device cannot be registered right now; retry shortly") from None
    runtime.services.devices.forget(tenant.key, body.device_id)
    ctx.device_id = device.device_id
    token, expires = runtime.services.tokens.issue(tenant.key, device.device_id, device.branch_id, device.generation)
    ctx.log.info("device_registered", generation=device.generation, branch_id=device.branch_id)
    out = RegisterResponse(
        token=token,
        expires_at=expires.isoformat().replace("+00:00", "Z"),
        tenant_name=tenant.config.name,
        device_id=device.device_id,
        branch_id=device.branch_id or None,
    )
    return JSONResponse(out.model_dump(), status_code=201, headers=context_headers(ctx))


def code_digest(code: str) -> str:
    """How an enrollment code is stored and compared: the sha256 of its letters and digits,
    upper-cased (typed with or without its dashes); the code itself is never kept."""
    return hashlib.sha256("".join(c for c in code if c.isalnum()).upper().encode()).hexdigest()


def _proof(runtime: Any, ctx: Any, tenant: str, device_id: str) -> tuple[int | None, str]:
    """(generation, jti) of the device's own token presented with the registration (expired
    or not), (None, "") without one: a device proves it is itself with a token we signed for it."""
    scheme, _, token = ctx.headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return None, ""
    try:
        claims = runtime.services.tokens.verify_identity(token.strip())
    except InvalidToken:
        return None, ""
    if claims["tenant"] != tenant or claims["sub"] != device_id:
        return None, ""
    return int(claims["gen"]), str(claims["jti"])


async def _code_pending(store: Any, ctx: Any, tenant: str, device_id: str) -> bool:
    """Whether an admin reset the device and its enrollment code is still valid."""
    try:
        device = await store.get_device(tenant, device_id)
    except Exception as exc:
        ctx.log.error("store_unavailable", error=type(exc).__name__)
        raise Problem("store_unavailable", "the device cannot be registered right now; retry shortly") from None
    return device is not None and device.code_pending(time.time())
