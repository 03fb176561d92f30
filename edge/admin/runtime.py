"""What the admin routes need of one configuration, built when it is loaded: its principals,
the admin token service, and the failed-login counters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from limits.aio.storage import Storage

from edge.admin.principals import Directory
from edge.admin.tokens import AdminTokens
from edge.unauthenticated import UnauthenticatedLimit


@dataclass(frozen=True)
class AdminRuntime:
    """The admin side of a serving configuration."""

    directory: Directory
    tokens: AdminTokens
    logins: UnauthenticatedLimit  # failed logins, per address and per login name


def build_admin(config: Any, storage: Storage, log: Any) -> AdminRuntime:
    """The admin runtime of a LoadedConfig."""
    gw = config.gateway
    return AdminRuntime(Directory(config.tenants, gw.operators), AdminTokens(gw.jwt, gw.admin.token_ttl),
                        UnauthenticatedLimit(storage, gw.admin.login_rate_limit, log, name="admin-login"))
