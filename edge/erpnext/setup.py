"""The invoice reference field: checking for it and creating it (`pos-edge erpnext setup`).

A real ERPNext has no field for the till's transaction id until one is made;
filtering on a field that does not exist is an error in Frappe, so the gateway
never guesses: it checks, and `setup` creates a unique Custom Field via REST.
`po_no` (the standard "Customer's Purchase Order") needs nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable

STANDARD_FIELDS = frozenset({"po_no"})
FieldState = Literal["ok", "missing", "unknown"]


async def reference_field_state(client: ErpnextClient, cfg: Any) -> FieldState:
    """Whether the tenant's reference field exists on its invoice doctype."""
    if cfg.reference_field in STANDARD_FIELDS:
        return "ok"
    try:
        rows = await client.find(
            "Custom Field",
            [["dt", "=", cfg.invoice_doctype], ["fieldname", "=", cfg.reference_field]],
            ["name"],
            limit=1,
        )
    except (FrappeError, Unreachable):
        return "unknown"
    return "ok" if rows else "missing"


async def create_reference_field(client: ErpnextClient, cfg: Any) -> str:
    """Create the unique Custom Field if missing; returns what was done."""
    state = await reference_field_state(client, cfg)
    if state == "ok":
        return f"{cfg.invoice_doctype}.{cfg.reference_field} already exists"
    await client.insert(
        "Custom Field",
        {
            "dt": cfg.invoice_doctype,
            "fieldname": cfg.reference_field,
            "label": "POS transaction id (pos-edge)",
            "fieldtype": "Data",
            "insert_after": "remarks",
            "unique": 1,  # a second invoice with the same transaction id is refused by ERPNext itself
            "read_only": 1,
            "no_copy": 1,  # returns and amendments must not inherit it
            "in_standard_filter": 1,
        },
    )
    return f"created {cfg.invoice_doctype}.{cfg.reference_field} (unique Custom Field)"


class ReferenceFields:
    """Each POS tenant's reference-field state, checked at start-up and, while known to
    be missing, re-checked at most every `recheck` seconds (so `pos-edge erpnext setup`
    takes effect without a restart)."""

    def __init__(self, log: Any, recheck: float = 30.0) -> None:
        self.log = log
        self.recheck = recheck
        self.states: dict[str, FieldState] = {}  # tenant -> state (reported by /readyz)
        self._recheck_at: dict[str, float] = {}
        self._rechecks: dict[str, asyncio.Future[FieldState]] = {}

    async def check_all(self, tenants: dict[str, Any]) -> None:
        """Check every POS tenant (TenantRuntime), all at once; log those without the field."""
        pos = {key: t for key, t in tenants.items() if t.config.pos_enabled}
        states = await asyncio.gather(*(reference_field_state(t.poster.client, t.config) for t in pos.values()))
        for (key, tenant), state in zip(pos.items(), states, strict=True):
            cfg = tenant.config
            self.states[key] = state
            if state != "ok":
                self.log.warning(
                    "reference_field_" + state, tenant=key, field=f"{cfg.invoice_doctype}.{cfg.reference_field}",
                    detail=f"run: pos-edge erpnext setup --tenant {key}" if state == "missing" else "ERPNext unreachable",
                )

    async def missing(self, tenant: Any) -> bool:
        """True when the tenant's reference field is known to be missing."""
        if self.states.get(tenant.key) != "missing":
            return False
        now = time.monotonic()
        pending = self._rechecks.get(tenant.key)
        if pending is None and now >= self._recheck_at.get(tenant.key, 0):
            # One look per tenant at a time; callers meanwhile wait for its answer
            # rather than acting on the stale one.
            self._recheck_at[tenant.key] = now + self.recheck
            pending = asyncio.ensure_future(reference_field_state(tenant.poster.client, tenant.config))
            self._rechecks[tenant.key] = pending
            pending.add_done_callback(lambda _: self._rechecks.pop(tenant.key, None))
        if pending is not None:
            self.states[tenant.key] = await asyncio.shield(pending)
        return self.states[tenant.key] == "missing"
