"""Recording admin actions: one record in the tenant's audit log in the store (read at
GET /admin/audit), and one structured log line, for every change an admin makes."""

from __future__ import annotations

import time
from typing import Any

import orjson

from edge.admin.terminals import iso
from edge.store.base import Store


async def record(store: Store, log: Any, tenant: str, *, actor: str, role: str, action: str, target: str,
                 address: str, request_id: str = "", details: dict[str, Any] | None = None) -> None:
    """Record that `actor` did `action` to `target` in `tenant`, from `address`."""
    now = time.time()
    entry = {"at": iso(now), "actor": actor, "role": role,
             "action": action, "target": target, "address": address, "request_id": request_id or None,
             "details": details or {}}
    await store.audit_append(tenant, orjson.dumps(entry), now)
    log.info("admin_action", tenant=tenant, **{k: v for k, v in entry.items() if k != "at"})
