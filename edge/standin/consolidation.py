"""Consolidating POS Invoices into Sales Invoices when a POS Closing Entry is submitted.

erpnext/accounts/doctype/pos_invoice_merge_log, as recorded (close-c2..c4,
close-e6-si): per customer one POS Invoice Merge Log (hash name, submitted,
the closing entry's posting date and time) and one consolidated Sales Invoice
for its sales: is_consolidated 1, set_posting_time 1, update_stock 1, the
LAST merged invoice's posting date and time, one item row per POS Invoice
row (its net rate, price_list_rate 0.0, pos_invoice and pos_invoice_item
set), payment rows merged per (mode of payment, account), ignore_pricing_rule
1, the POS Profile's disable_rounded_total. Every merged POS Invoice gets
consolidated_invoice and status "Consolidated".

Returns among the invoices (from source, not recorded) become a credit note
against the consolidated invoice of their original (or this batch's); a
return whose original is neither consolidated nor in the batch is refused:
"Row #n: The original Invoice X of return invoice Y is not consolidated. ...".
Invoices are merged synchronously: ERPNext queues ten or more as a background
job, which the stand-in does not imitate.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from edge.standin.clock import now_text
from edge.standin.documents import child_row, cint, dec
from edge.standin.errors import FrappeError

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

MERGE_LOG = "POS Invoice Merge Log"


def consolidate(site: StandInSite, closing: dict[str, Any], invoices: list[dict[str, Any]], user: str) -> None:
    """Merge the closing entry's invoices (already validated) into Sales Invoices, per customer."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for inv in invoices:
        by_customer.setdefault(inv["customer"], []).append(inv)
    for customer, group in by_customer.items():
        _check_returns(site, group)
        sales = [d for d in group if not cint(d.get("is_return"))]
        returns = [d for d in group if cint(d.get("is_return"))]
        invoice = _merge(site, sales, closing, user) if sales else None
        credit_notes = _merge_returns(site, returns, invoice, closing, user)
        for inv in group:
            target = credit_notes.get(inv["name"]) if cint(inv.get("is_return")) else invoice
            inv.update({"consolidated_invoice": target, "status": "Consolidated", "modified": now_text(site)})
        _log(site, closing, customer, group, invoice, next(iter(credit_notes.values()), None), user)


def _check_returns(site: StandInSite, group: list[dict[str, Any]]) -> None:
    names = {d["name"] for d in group}
    for idx, inv in enumerate(group, 1):
        against = inv.get("return_against")
        if not cint(inv.get("is_return")) or not against or against in names:
            continue
        original = site.docs.get("POS Invoice", {}).get(against) or {}
        if original.get("status") != "Consolidated":
            raise FrappeError("ValidationError", (
                f"Row #{idx}: The original Invoice <strong>{against}</strong> of return invoice "
                f"<strong>{inv['name']}</strong> is not consolidated. The original invoice should be consolidated "
                f"before or along with the return invoice.<br><br>You can add the original invoice "
                f"<strong>{against}</strong> manually to proceed."))


def _merge(site: StandInSite, invoices: list[dict[str, Any]], closing: dict[str, Any], user: str,
           return_against: str | None = None) -> str:
    """One consolidated Sales Invoice (or credit note) for `invoices`; returns its name."""
    from edge.standin.invoices import insert_invoice  # invoices imports closing's modules: import late

    last, first = invoices[-1], invoices[0]
    profile = site.docs.get("POS Profile", {}).get(first.get("pos_profile") or "") or {}
    payments: list[dict[str, Any]] = []
    for inv in invoices:
        for p in inv.get("payments") or []:
            key = (p["mode_of_payment"], p["account"])
            same = next((q for q in payments if (q["mode_of_payment"], q["account"]) == key), None)
            if same:
                same["amount"] = float(dec(same["amount"]) + dec(p["amount"]))
            else:
                payments.append({"mode_of_payment": p["mode_of_payment"], "account": p["account"], "amount": p["amount"]})
    items = [{"item_code": row["item_code"], "item_name": row.get("item_name"), "qty": row["qty"],
              "rate": row.get("net_rate", row.get("rate")), "warehouse": row.get("warehouse"),
              "cost_center": row.get("cost_center"), "pos_invoice": inv["name"], "pos_invoice_item": row["name"],
              **({"sales_invoice_item": _sales_invoice_row(site, inv, row)} if return_against else {})}
             for inv in invoices for row in inv.get("items") or []]
    is_return = return_against is not None
    body = {
        "customer": first["customer"], "company": first["company"], "is_pos": 1, "pos_profile": first.get("pos_profile"),
        "is_consolidated": 1, "set_posting_time": 1, "update_stock": 1, "docstatus": 1, "ignore_pricing_rule": 1,
        "posting_date": closing["posting_date"] if is_return else last["posting_date"],
        "posting_time": closing["posting_time"] if is_return else last["posting_time"],
        "cost_center": first.get("cost_center") or profile.get("cost_center"),
        "account_for_change_amount": last.get("account_for_change_amount"),
        "disable_rounded_total": cint(profile.get("disable_rounded_total")),
        "rounded_total": float(sum((dec(d.get("rounded_total")) for d in invoices), Decimal(0))),
        "rounding_adjustment": float(sum((dec(d.get("rounding_adjustment")) for d in invoices), Decimal(0))),
        "items": items, "payments": payments,
        **({"is_return": 1, "return_against": return_against} if is_return else {}),
    }
    stored, _ = insert_invoice(site, "Sales Invoice", body, user)
    return str(stored["name"])


def _sales_invoice_row(site: StandInSite, inv: dict[str, Any], row: dict[str, Any]) -> str | None:
    """get_sales_invoice_item: the consolidated row that merged the returned POS row's original row."""
    original = site.docs.get("POS Invoice", {}).get(inv.get("return_against") or "") or {}
    consolidated = site.docs.get("Sales Invoice", {}).get(original.get("consolidated_invoice") or "") or {}
    return next((r["name"] for r in consolidated.get("items") or []
                 if row.get("pos_invoice_item") and r.get("pos_invoice_item") == row["pos_invoice_item"]), None)


def _merge_returns(site: StandInSite, returns: list[dict[str, Any]], invoice: str | None, closing: dict[str, Any],
                   user: str) -> dict[str, str]:
    """distinguish_return_pos_invoices + process_merging_into_credit_notes: POS return -> credit note name."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for ret in returns:
        original = site.docs.get("POS Invoice", {}).get(ret.get("return_against") or "") or {}
        groups.setdefault(original.get("consolidated_invoice") or invoice, []).append(ret)
    out: dict[str, str] = {}
    for against, group in groups.items():
        note = _merge(site, group, closing, user, return_against=against)
        out.update({r["name"]: note for r in group})
    return out


def _log(site: StandInSite, closing: dict[str, Any], customer: str, group: list[dict[str, Any]], invoice: str | None,
         credit_note: str | None, user: str) -> None:
    stamp = now_text(site)
    name = secrets.token_hex(5)
    log: dict[str, Any] = {
        "name": name, "owner": user, "creation": stamp, "modified": stamp, "modified_by": user, "docstatus": 1,
        "idx": 0, "doctype": MERGE_LOG, "posting_date": closing["posting_date"], "posting_time": closing["posting_time"],
        "merge_invoices_based_on": "Customer", "pos_closing_entry": closing["name"], "customer": customer,
        "consolidated_invoice": invoice, "consolidated_credit_note": credit_note,
    }
    log["pos_invoices"] = [child_row(log, "pos_invoices", "POS Invoice Reference", i, {
        "pos_invoice": inv["name"], "posting_date": inv.get("posting_date"), "customer": inv.get("customer"),
        "grand_total": inv.get("grand_total"), "is_return": cint(inv.get("is_return")),
        "return_against": inv.get("return_against")}) for i, inv in enumerate(group, 1)]
    site.docs.setdefault(MERGE_LOG, {})[name] = log
