"""The invoice reference field: checking for it and creating it (`pos-edge erpnext setup`).

A real ERPNext has no field for the till's transaction id until one is made;
filtering on a field that does not exist is an error in Frappe, so the gateway
never guesses: it checks, and `setup` creates a unique Custom Field via REST.
`po_no` (the standard "Customer's Purchase Order") needs nothing.
"""

from __future__ import annotations

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
