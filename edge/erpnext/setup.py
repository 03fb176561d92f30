"""The invoice reference field: checking for it and creating it (`pos-edge erpnext setup`).

A real ERPNext has no field for the till's transaction id until one is made;
filtering on a field that does not exist is an error in Frappe, so the gateway
never guesses: it checks, and `setup` creates a unique Custom Field via REST.
`po_no` (the standard "Customer's Purchase Order") needs nothing, but is not
unique (a real site took two invoices with one po_no): then only the gateway's
posting records guard exactly-once (edge.posting_guard), which waits out
`erpnext.commit_grace` after an outcome-unknown posting before posting again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Literal

from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable

STANDARD_FIELDS = frozenset({"po_no"})  # standard invoice fields usable as the reference: none is unique
# "ok": exists and unique; "not_unique": exists, no unique index; "unknown": ERPNext could not
# be asked (down, timed out, an error of its own); "auth_failed": ERPNext refused the tenant's
# API key (401) or its user may not read Custom Fields (403).
FieldState = Literal["ok", "not_unique", "missing", "unknown", "auth_failed"]
AUTH_STATUSES = frozenset({401, 403})
# States ERPNext did not settle: looked at again in the background (ReferenceFields.watch).
UNSETTLED: frozenset[str] = frozenset({"unknown", "auth_failed"})
RECHECK_FIRST = 1.0  # seconds before the first background look; doubled after each unsettled one
RECHECK_CAP = 60.0


async def reference_field_state(client: ErpnextClient, cfg: Any) -> FieldState:
    """Whether the tenant's reference field exists on its invoice doctype, and is unique."""
    if cfg.reference_field in STANDARD_FIELDS:
        return "not_unique"
    try:
        rows = await client.find(
            "Custom Field",
            [["dt", "=", cfg.invoice_doctype], ["fieldname", "=", cfg.reference_field]],
            ["name", "unique"],
            limit=1,
        )
    except FrappeError as exc:
        return "auth_failed" if exc.status in AUTH_STATUSES else "unknown"
    except Unreachable:
        return "unknown"
    if not rows:
        return "missing"
    return "ok" if int(rows[0].get("unique") or 0) else "not_unique"


async def create_reference_field(client: ErpnextClient, cfg: Any) -> str:
    """Create the unique Custom Field if missing; returns what was done."""
    state = await reference_field_state(client, cfg)
    if state == "ok":
        return f"{cfg.invoice_doctype}.{cfg.reference_field} already exists (unique)"
    if state == "not_unique":
        return (f"{cfg.invoice_doctype}.{cfg.reference_field} exists but is not unique: the gateway's store guards "
                "exactly-once, and a sale whose posting outcome is unknown is posted again only after "
                "erpnext.commit_grace; make it unique in Customize Form (or use a unique custom field) to post sooner")
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
    takes effect without a restart). A state ERPNext did not settle (unreachable, or the
    API key refused) is looked at again in the background by `watch`, with back-off, so
    /readyz tells the truth without a sale or a restart and without work per request."""

    def __init__(self, log: Any, recheck: float = 30.0) -> None:
        self.log = log
        self.recheck = recheck
        self.states: dict[str, FieldState] = {}  # tenant -> state (reported by /readyz)
        self._recheck_at: dict[str, float] = {}
        self._rechecks: dict[str, asyncio.Future[FieldState]] = {}

    async def check_all(self, tenants: dict[str, Any], only_changes: bool = False) -> None:
        """Check every POS tenant (TenantRuntime), all at once; log those without the field
        (`only_changes`: those whose state changed). Also reads each tenant's site settings
        (time zone, its branches' rounding) into the Poster's cache, so that validation,
        which never waits for ERPNext, can use them."""
        pos = {key: t for key, t in tenants.items() if t.config.pos_enabled}
        warm = [t.poster.site.warm([b.pos_profile for b in t.config.branches.values()]) for t in pos.values()]
        found: list[FieldState]
        found, _ = await asyncio.gather(
            asyncio.gather(*(reference_field_state(t.poster.client, t.config) for t in pos.values())),
            asyncio.gather(*warm))
        for (key, tenant), state in zip(pos.items(), found, strict=True):
            cfg = tenant.config
            before = self.states.get(key)
            self.states[key] = state
            if only_changes and state == before:
                continue
            field = f"{cfg.invoice_doctype}.{cfg.reference_field}"
            if state == "ok":
                if before is not None:  # a recovery is news; a field fine from the start is not
                    self.log.info("reference_field_ok", tenant=key, field=field, previously=before)
                continue
            detail = {"missing": f"run: pos-edge erpnext setup --tenant {key}",
                      "not_unique": "exactly-once rests on the gateway's store; outcome-unknown sales wait "
                                    f"erpnext.commit_grace ({cfg.erpnext.commit_grace:g} s) before a second post",
                      "unknown": "ERPNext unreachable; looked at again in the background",
                      "auth_failed": "ERPNext refused the tenant's api_key/api_secret (or its user may not read "
                                     "Custom Fields); looked at again in the background"}[state]
            self.log.warning("reference_field_" + state, tenant=key, field=field, detail=detail)

    async def watch(self, tenants: Callable[[], dict[str, Any]], first: float = RECHECK_FIRST,
                    cap: float = RECHECK_CAP) -> None:
        """Until cancelled: look again at tenants whose state is unsettled, `first` seconds
        after start-up, then twice as long after each look that leaves one unsettled (at
        most `cap`); back to `first` once all are settled. `tenants` gives the serving ones
        (a reload may add, change or remove some)."""
        delay = first
        while True:
            await asyncio.sleep(delay)
            unsettled = {k: t for k, t in tenants().items()
                         if t.config.pos_enabled and self.states.get(k) in UNSETTLED}
            if not unsettled:
                delay = first
                continue
            await self.check_all(unsettled, only_changes=True)
            still = any(self.states.get(k) in UNSETTLED for k in unsettled)
            delay = min(cap, delay * 2) if still else first

    def unique(self, tenant: str) -> bool:
        """True when the tenant's reference field is known to carry a unique index."""
        return self.states.get(tenant) == "ok"

    async def missing(self, tenant: Any) -> bool:
        """True when the tenant's reference field is known to be missing. A missing or
        unknown state is looked at again, at most every `recheck` seconds: callers wait
        for a look at a missing field (they would refuse otherwise), not at an unknown one
        (they post anyway, taking the field as not unique meanwhile)."""
        state = self.states.get(tenant.key)
        if state not in ("missing", "unknown"):
            return False
        now = time.monotonic()
        pending = self._rechecks.get(tenant.key)
        if pending is None and now >= self._recheck_at.get(tenant.key, 0):
            # One look per tenant at a time; callers meanwhile wait for its answer
            # rather than acting on the stale one.
            self._recheck_at[tenant.key] = now + self.recheck
            pending = asyncio.ensure_future(reference_field_state(tenant.poster.client, tenant.config))
            self._rechecks[tenant.key] = pending
            pending.add_done_callback(lambda done: self._settle_recheck(tenant.key, done))
        if pending is not None and state == "missing":
            await asyncio.shield(pending)
        return self.states[tenant.key] == "missing"

    def _settle_recheck(self, tenant: str, done: asyncio.Future[FieldState]) -> None:
        self._rechecks.pop(tenant, None)
        if not done.cancelled() and done.exception() is None:
            self.states[tenant] = done.result()
