"""Admin principals from the configuration, and checking what they log in with.

Keys are compared by their sha256 in constant time; passwords by scrypt (hashlib's, n=2^14,
r=8, p=1: about 50 ms, so a guess costs the guesser as much). A login name nobody has costs
the same work as a wrong secret, so names cannot be found by timing.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Any

from edge.admin.config import AdminPrincipal, Credentials, Operator
from edge.admin.tokens import ALL_TENANTS, AdminRole

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DUMMY = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'0' * 32}${'0' * 64}"


def hash_password(password: str) -> str:
    """A `password_scrypt` value for tenants.yaml."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def _password_matches(password: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    return hmac.compare_digest(got.hex(), digest)


def _key_matches(key: str, creds: Credentials) -> bool:
    given = hashlib.sha256(key.encode()).hexdigest()
    if creds.key is not None:
        return hmac.compare_digest(given, hashlib.sha256(creds.key.get_secret_value().encode()).hexdigest())
    return creds.key_sha256 is not None and hmac.compare_digest(given, creds.key_sha256)


@dataclass(frozen=True)
class Principal:
    """Someone logged in: what they may see (`tenant` ALL_TENANTS for an operator, `branches`
    empty for every branch)."""

    name: str
    role: AdminRole
    tenant: str
    branches: tuple[str, ...]


class Directory:
    """The principals of one configuration (built at load time)."""

    def __init__(self, tenants: dict[str, Any], operators: list[Operator]) -> None:
        self._admins: dict[tuple[str, str], AdminPrincipal] = {
            (key, a.name): a for key, t in tenants.items() for a in t.admins}
        self._operators = {o.name: o for o in operators}

    def current(self, tenant: str, name: str) -> Principal | None:
        """The principal a token names, as the configuration has it now (None once removed):
        a token carries who logged in, never what they may still do."""
        if tenant == ALL_TENANTS:
            return Principal(name, "operator", ALL_TENANTS, ()) if name in self._operators else None
        admin = self._admins.get((tenant, name))
        return Principal(name, admin.role, tenant, tuple(admin.branches)) if admin is not None else None

    def authenticate(self, tenant: str, name: str, key: str | None, password: str | None) -> Principal | None:
        """The principal `name` of this tenant (or an operator) if the key or password is theirs."""
        admin = self._admins.get((tenant, name))
        creds: Credentials | None = admin if admin is not None else self._operators.get(name)
        ok = _matches(creds, key, password)  # run even for a name nobody has (timing)
        if creds is None or not ok:
            return None
        if admin is not None:
            return Principal(name, admin.role, tenant, tuple(admin.branches))
        return Principal(name, "operator", ALL_TENANTS, ())


def _matches(creds: Credentials | None, key: str | None, password: str | None) -> bool:
    """Whether the secret given is this principal's; the same work when there is no principal."""
    if password is not None:
        stored = creds.password_scrypt if creds is not None and creds.password_scrypt else _DUMMY
        ok = _password_matches(password, stored)
        return ok and creds is not None and creds.password_scrypt is not None
    if key is not None and creds is not None:
        return _key_matches(key, creds)
    if key is not None:
        hashlib.sha256(key.encode()).hexdigest()  # the work a real comparison costs
    return False
