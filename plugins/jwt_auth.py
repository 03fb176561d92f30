"""Device authentication: a Bearer JWT issued by /gateway/device/register.

Fails closed: no token, a bad signature, an unexpected algorithm, an expired
token, a token of another tenant, a token from before the device's latest
registration, or an unknown device -> 401; a blocked device -> 403.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel
from starlette.responses import Response

from edge.chain import Context, Services
from edge.problems import Problem, problem_response
from edge.tokens import InvalidToken

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pos-edge"'}


class JwtAuthPlugin:
    """Verifies the device token and sets `ctx.claims` / `ctx.device_id`."""

    name: ClassVar[str] = "jwt_auth"
    priority: ClassVar[int] = 10_000

    class Config(BaseModel):
        """Keys and lifetimes are gateway-wide (`gateway.jwt`); nothing per tenant."""

    def __init__(self, config: object, services: Services) -> None:
        self._tokens = services.tokens
        self._devices = services.devices

    async def on_request(self, ctx: Context) -> Response | None:
        auth = ctx.headers.get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return _unauthorized(ctx, "unauthorized", "a device token is required (Authorization: Bearer <token>)")
        try:
            claims = self._tokens.verify(token.strip())
        except InvalidToken as exc:
            if exc.expired:
                return _unauthorized(ctx, "token_expired", "the device token has expired; register again")
            return _unauthorized(ctx, "unauthorized", "the device token is not valid")
        tenant = ctx.tenant
        assert tenant is not None, "the tenant plugin runs first"
        if claims["tenant"] != tenant.key:
            return _unauthorized(ctx, "unauthorized", "the device token belongs to another tenant")
        try:
            device = await self._devices.get(tenant.key, claims["sub"], claims["gen"])
        except Exception as exc:  # fail closed: no device status, no access
            ctx.log.error("store_unavailable", error=type(exc).__name__)
            return problem_response(Problem("store_unavailable", "device status cannot be checked right now"), ctx.request_id)
        if device is None:
            return _unauthorized(ctx, "unauthorized", "the device is not registered")
        if device.status == "blocked":
            return problem_response(Problem("device_blocked", "this device has been blocked by an administrator"), ctx.request_id)
        if device.generation != claims["gen"]:
            return _unauthorized(ctx, "unauthorized", "the device token was replaced by a newer registration")
        ctx.claims = claims
        ctx.device_id = claims["sub"]
        self._devices.note(tenant.key, ctx.device_id)  # last seen (written at most every 30 s)
        return None


def _unauthorized(ctx: Context, code: str, detail: str) -> Response:
    return problem_response(Problem(code, detail, headers=_CHALLENGE), ctx.request_id)
