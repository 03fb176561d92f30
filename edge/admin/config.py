"""Who may administer a tenant (`tenants.<key>.admins`), who operates the gateway
(`gateway.operators`), and the admin settings (`gateway.admin`).

A principal proves itself with a key or a password. Neither is ever written in the file in
clear: a key is a reference to the environment (`key: ${SHOP1_ADMIN_ALICE_KEY}`) or its
sha256 (`key_sha256`); a password is only stored as a scrypt hash (`password_scrypt`, made
by `pos-edge admin hash-password`).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from edge.rates import Rate

NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
SCRYPT = re.compile(r"^scrypt\$\d+\$\d+\$\d+\$[0-9a-f]{32}\$[0-9a-f]{64}$")
Role = Literal["company_admin", "store_manager", "viewer"]


class Credentials(BaseModel):
    """How a principal proves itself: exactly one of a key, a key's sha256, or a password hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="login name (lower-case letters, digits, `.`, `_`, `@`, `-`)")
    key: SecretStr | None = Field(default=None, description=(
        "an API key, from the environment (`${VAR}`), at least 24 characters"))
    key_sha256: str | None = Field(default=None, description="the hex sha256 of an API key (the key stays elsewhere)")
    password_scrypt: str | None = Field(default=None, description=(
        "a password's scrypt hash, from `pos-edge admin hash-password`"))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME.match(v):
            raise ValueError("lower-case letters, digits, '.', '_', '@' and '-', at most 64")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 24:
            raise ValueError("an admin key must be at least 24 characters long")
        return v

    @field_validator("key_sha256")
    @classmethod
    def _digest(cls, v: str | None) -> str | None:
        if v is not None and not SHA256.match(v):
            raise ValueError("64 lower-case hex digits (sha256sum of the key)")
        return v

    @field_validator("password_scrypt")
    @classmethod
    def _scrypt(cls, v: str | None) -> str | None:
        if v is not None and not SCRYPT.match(v):
            raise ValueError("not a hash from `pos-edge admin hash-password`")
        return v

    @model_validator(mode="after")
    def _one(self) -> Credentials:
        given = [f for f in ("key", "key_sha256", "password_scrypt") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of key, key_sha256 or password_scrypt")
        return self


class AdminPrincipal(Credentials):
    """A tenant's administrator."""

    role: Role = Field(description="`company_admin` (every branch), `store_manager` (its `branches`) or "
                                   "`viewer` (read-only: its `branches`, every branch when none is listed)")
    branches: list[str] = Field(default_factory=list, description="the branches a store_manager or viewer sees")

    @model_validator(mode="after")
    def _scope(self) -> AdminPrincipal:
        if self.role == "store_manager" and not self.branches:
            raise ValueError("a store_manager needs its branches")
        if self.role == "company_admin" and self.branches:
            raise ValueError("a company_admin sees every branch: leave branches out")
        return self


class Operator(Credentials):
    """Operates the gateway: every action on every tenant."""


class AdminSettings(BaseModel):
    """`gateway.admin`: admin tokens and logins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token_ttl: int = Field(default=900, ge=60, le=12 * 3600, description="seconds an admin token lasts")
    login_rate_limit: Rate = Field(default="10/minute", description=(
        "login attempts per client address and per login name; 429 past it (a right secret too)"))

    write_config: bool = Field(default=False, description=(
        "POST /admin/stores writes the new branch into tenants.yaml (validated, atomically) and reloads; "
        "off: 409 with the snippet to add (the file stays the admin's)"))
