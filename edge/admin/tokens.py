"""Admin tokens: short-lived JWTs of their own, never confused with device tokens.

They are signed with a key derived from the gateway's jwt secret for this purpose only
(HMAC(secret, "pos-edge admin token")), and carry `iss` pos-edge and `aud` pos-edge-admin.
A device token therefore fails here twice over (another key, no audience), and an admin
token fails as a device token (another key; and PyJWT refuses any `aud` it was not told
to expect).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from edge.config import JwtConfig

ISSUER = "pos-edge"
AUDIENCE = "pos-edge-admin"
ALL_TENANTS = "*"  # an operator's token
AdminRole = Literal["operator", "company_admin", "store_manager", "viewer"]


class InvalidAdminToken(Exception):
    """Not a valid admin token (bad, expired, or another kind of token)."""


@dataclass(frozen=True)
class AdminClaims:
    """Who an admin token speaks for."""

    name: str
    role: AdminRole
    tenant: str  # ALL_TENANTS for an operator
    branches: tuple[str, ...]  # empty: every branch
    expires: float
    jti: str


def _derived(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"pos-edge admin token", hashlib.sha256).digest()


class AdminTokens:
    """Issues and verifies admin tokens (HS256 with the derived key)."""

    def __init__(self, cfg: JwtConfig, ttl: int) -> None:
        self._key = _derived(cfg.secret.get_secret_value())
        self._ttl = ttl
        self._leeway = cfg.leeway

    def issue(self, name: str, role: AdminRole, tenant: str, branches: list[str]) -> tuple[str, AdminClaims]:
        """A signed token for this principal, and its claims."""
        now = int(time.time())
        claims = AdminClaims(name, role, tenant, tuple(branches), now + self._ttl, uuid.uuid4().hex)
        token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": name, "role": role, "tenant": tenant,
                            "branches": list(branches), "iat": now, "exp": now + self._ttl, "jti": claims.jti},
                           self._key, algorithm="HS256")
        return token, claims

    def verify(self, token: str) -> AdminClaims:
        """The token's claims, or InvalidAdminToken."""
        try:
            raw: dict[str, Any] = jwt.decode(token, self._key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER,
                                             leeway=self._leeway,
                                             options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]})
        except jwt.PyJWTError as exc:
            raise InvalidAdminToken(str(exc)) from None
        role, tenant, branches = raw.get("role"), raw.get("tenant"), raw.get("branches")
        if (role not in ("operator", "company_admin", "store_manager", "viewer") or not isinstance(tenant, str)
                or not isinstance(branches, list) or not all(isinstance(b, str) for b in branches)):
            raise InvalidAdminToken("malformed claims")
        return AdminClaims(str(raw["sub"]), role, tenant, tuple(branches), float(raw["exp"]), str(raw["jti"]))
