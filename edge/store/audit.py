"""The admin audit log: the store's half. Every admin action (who, what, when, from where) is
appended to its tenant's log, newest read first; the gateway's operators' actions on a
tenant go to that tenant's log too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

AUDIT_KEPT = 100_000  # per tenant: years of a shop's admin actions


@dataclass(frozen=True)
class AuditRecord:
    """One admin action."""

    id: str  # opaque to callers; increasing within the tenant
    at: float
    data: bytes  # JSON: actor, role, action, target, details, address, request_id


class AuditLog(Protocol):
    """A tenant's audit log in the gateway's store; safe from many processes at once."""

    async def audit_append(self, tenant: str, data: bytes, now: float) -> str:
        """Append a record; returns its id. The newest AUDIT_KEPT records are kept."""
        ...

    async def audit_list(self, tenant: str, before: str, limit: int) -> list[AuditRecord]:
        """Records newest first, older than id `before` ("" = from the newest), at most `limit`."""
        ...
