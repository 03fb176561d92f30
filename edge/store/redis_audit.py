"""The admin audit log in Redis: a stream per tenant (`<prefix>:{<tenant>}:audit`), capped
near AUDIT_KEPT entries; ids are the stream's."""

from __future__ import annotations

from typing import Any

from edge.store.audit import AUDIT_KEPT, AuditRecord


class RedisAudit:
    """Audit log methods of RedisStore (it provides `_raw` and `prefix`)."""

    _raw: Any
    prefix: str

    def _audit_key(self, tenant: str) -> str:
        return f"{self.prefix}:{{{tenant}}}:audit"

    async def audit_append(self, tenant: str, data: bytes, now: float) -> str:
        """Append a record (see AuditLog)."""
        entry = await self._raw.xadd(self._audit_key(tenant), {"at": repr(now), "data": bytes(data)},
                                     maxlen=AUDIT_KEPT, approximate=True)
        return entry.decode() if isinstance(entry, bytes) else str(entry)

    async def audit_list(self, tenant: str, before: str, limit: int) -> list[AuditRecord]:
        """Records newest first (see AuditLog)."""
        top = f"({before}" if before else "+"
        try:
            rows = await self._raw.xrevrange(self._audit_key(tenant), top, "-", count=max(1, limit))
        except Exception as exc:  # an id not of this stream's form
            if "Invalid stream ID" in str(exc):
                return []
            raise
        return [AuditRecord(rid.decode() if isinstance(rid, bytes) else str(rid), float(fields[b"at"]),
                            bytes(fields[b"data"])) for rid, fields in rows][:max(0, limit)]
