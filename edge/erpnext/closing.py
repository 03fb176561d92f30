"""End-of-period closures: ERPNext's per-method totals for a till's period, and,
for tenants on POS Invoices, a submitted POS Closing Entry."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

from edge.erpnext.client import ErpnextClient
from edge.sales import Closure

_FETCH_CONCURRENCY = 8


async def period_invoices(client: ErpnextClient, cfg: Any, closure: Closure) -> list[dict[str, Any]]:
    """The submitted POS invoices of the branch's POS profile inside the period, in full."""
    branch = cfg.branches[closure.branch_id]
    filters: list[list[Any]] = [
        ["pos_profile", "=", branch.pos_profile],
        ["docstatus", "=", 1],
        ["posting_date", "between", [closure.period_start.date().isoformat(), closure.period_end.date().isoformat()]],
    ]
    if cfg.invoice_doctype == "Sales Invoice":
        filters.append(["is_pos", "=", 1])
    rows = await client.find(cfg.invoice_doctype, filters, ["name", "posting_date", "posting_time"], limit=0)
    inside = [r["name"] for r in rows if _within(r, closure)]
    gate = asyncio.Semaphore(_FETCH_CONCURRENCY)

    async def fetch(name: str) -> dict[str, Any] | None:
        async with gate:
            return await client.get_doc(cfg.invoice_doctype, name)

    docs = await asyncio.gather(*(fetch(n) for n in inside))
    return [d for d in docs if d is not None]


def _within(row: dict[str, Any], closure: Closure) -> bool:
    # Frappe may send a Time as "9:05:00" or "09:05:00.000000": normalise before parsing.
    clock = str(row.get("posting_time") or "0:00:00").split(".")[0].split(":")
    try:
        hh, mm, ss = (int(x) for x in (clock + ["0", "0"])[:3])
        when = datetime.fromisoformat(f"{row.get('posting_date')}T{hh:02d}:{mm:02d}:{ss:02d}")
    except ValueError:
        return True  # no usable time: the date filter already placed it in the period
    start, end = closure.period_start.replace(tzinfo=None), closure.period_end.replace(tzinfo=None)
    return start <= when <= end


def reconcile(closure: Closure, cfg: Any, invoices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: opening, ERPNext's takings (payments net of change), expected, counted, difference."""
    taken: dict[str, Decimal] = {}
    for inv in invoices:
        change = Decimal(str(inv.get("change_amount") or 0))
        for p in inv.get("payments") or []:
            mop = p.get("mode_of_payment")
            amount = Decimal(str(p.get("amount") or 0))
            if change and _is_cash(mop):
                amount, change = amount - change, Decimal(0)  # change is given back in cash
            taken[mop] = taken.get(mop, Decimal(0)) + amount
    out = []
    for b in closure.balances:
        mop = cfg.payment_methods[b.method]
        expected = b.opening_amount + taken.get(mop, Decimal(0))
        out.append({
            "method": b.method,
            "mode_of_payment": mop,
            "opening_amount": b.opening_amount,
            "erpnext_amount": taken.get(mop, Decimal(0)),
            "expected_amount": expected,
            "closing_amount": b.closing_amount,
            "difference": b.closing_amount - expected,
        })
    return out


def _is_cash(mode_of_payment: str | None) -> bool:
    return (mode_of_payment or "").lower() == "cash"


def closing_entry(closure: Closure, cfg: Any, invoices: list[dict[str, Any]], methods: list[dict[str, Any]]) -> dict[str, Any]:
    """A submitted POS Closing Entry for the period (POS Invoice tenants)."""
    doc: dict[str, Any] = {
        "pos_profile": cfg.branches[closure.branch_id].pos_profile,
        "company": cfg.company,
        "period_start_date": closure.period_start.replace(tzinfo=None).isoformat(sep=" "),
        "period_end_date": closure.period_end.replace(tzinfo=None).isoformat(sep=" "),
        "posting_date": closure.period_end.date().isoformat(),
        "docstatus": 1,
        "payment_reconciliation": [
            {"mode_of_payment": m["mode_of_payment"], "opening_amount": m["opening_amount"],
             "expected_amount": m["expected_amount"], "closing_amount": m["closing_amount"]}
            for m in methods
        ],
        "pos_transactions": [
            {"pos_invoice": inv["name"], "posting_date": inv.get("posting_date"), "grand_total": inv.get("grand_total")}
            for inv in invoices
        ],
    }
    if closure.opening_entry:
        doc["pos_opening_entry"] = closure.opening_entry
    return doc
