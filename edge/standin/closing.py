"""POS Closing Entry insert, a small subset of erpnext/accounts/doctype/pos_closing_entry/pos_closing_entry.py.

Named "POS-CLO-.YYYY.-.#####" from its posting date. Checks, first failure wins:
mandatory period dates, company and pos_profile (MandatoryError); links to
company, pos_profile, pos_opening_entry and each transaction's POS Invoice
(LinkValidationError); validate_pos_invoices: each invoice submitted, of this
POS Profile and not yet consolidated (ValidationError, one "Row #n: ..." line
per problem, title "Invalid POS Invoices"). grand_total, net_total and
total_quantity are the sums over the referenced invoices (what the closing form
fetches with get_pos_invoices). Submitting it does not consolidate invoices here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from edge.standin.documents import (
    child_row,
    cint,
    dec,
    link_exists,
    missing_message,
    money,
    num,
    raise_invalid_links,
    raise_missing,
    to_date,
)
from edge.standin.clock import now_text
from edge.standin.errors import FrappeError
from edge.standin.meta import keep_known
from edge.standin.naming import next_name, series_for

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

DOCTYPE = "POS Closing Entry"


def insert_closing_entry(site: StandInSite, data: dict[str, Any], user: str) -> dict[str, Any]:
    """POST /api/resource/POS Closing Entry."""
    doc = keep_known(site, DOCTYPE, data)
    docstatus = cint(doc.get("docstatus"))
    if docstatus not in (0, 1):
        raise FrappeError("DocstatusTransitionError", f"Cannot change docstatus from 0 to {docstatus}")
    stamp = now_text(site)
    posting_date = to_date(doc.get("posting_date"))
    series = series_for(DOCTYPE, doc.get("naming_series"))
    missing = [(f, missing_message(DOCTYPE, label)) for f, label in (
        ("period_start_date", "Period Start Date"), ("period_end_date", "Period End Date"),
        ("company", "Company"), ("pos_profile", "POS Profile")) if not doc.get(f)]
    raise_missing(DOCTYPE, next_name(site, series, posting_date, consume=False), missing)

    invalid = [f"{label}: {doc[f]}" for f, target, label in (
        ("company", "Company", "Company"), ("pos_profile", "POS Profile", "POS Profile"),
        ("pos_opening_entry", "POS Opening Entry", "POS Opening Entry"))
        if doc.get(f) and not link_exists(site, target, doc[f])]
    transactions = doc.get("pos_transactions") or []
    invalid += [f"Row #{i}: POS Invoice: {row.get('pos_invoice')}" for i, row in enumerate(transactions, 1)
                if not link_exists(site, "POS Invoice", row.get("pos_invoice"))]
    raise_invalid_links(invalid)

    invoices = [site.docs["POS Invoice"][row["pos_invoice"]] for row in transactions]
    problems = []
    for i, inv in enumerate(invoices, 1):
        if inv.get("consolidated_invoice"):
            problems.append(f"Row #{i}: POS Invoice is already consolidated")
            continue
        if inv.get("pos_profile") != doc["pos_profile"]:
            problems.append(f"Row #{i}: POS Profile doesn't match <strong>{doc['pos_profile']}</strong>")
        if cint(inv.get("docstatus")) != 1:
            problems.append(f"Row #{i}: POS Invoice is not submitted")
    if problems:
        raise FrappeError("ValidationError", messages=[problems], title="Invalid POS Invoices",
                          exception=f"frappe.exceptions.ValidationError: {problems}")

    name = next_name(site, series, posting_date)
    out: dict[str, Any] = {
        "name": name, "owner": user, "creation": stamp, "modified": stamp, "modified_by": user,
        "docstatus": docstatus, "idx": 0, "doctype": DOCTYPE, "naming_series": series,
        "period_start_date": doc["period_start_date"], "period_end_date": doc["period_end_date"],
        "posting_date": posting_date.isoformat(), "posting_time": doc.get("posting_time") or stamp[11:],
        "pos_opening_entry": doc.get("pos_opening_entry"), "company": doc["company"],
        "pos_profile": doc["pos_profile"], "user": doc.get("user") or user,
        "status": "Submitted" if docstatus == 1 else "Draft", "remarks": doc.get("remarks"),
        "grand_total": num(money(sum((dec(i.get("grand_total")) for i in invoices), Decimal(0)))),
        "net_total": num(money(sum((dec(i.get("net_total")) for i in invoices), Decimal(0)))),
        "total_quantity": float(sum((dec(i.get("total_qty")) for i in invoices), Decimal(0))),
    }
    out["pos_transactions"] = [
        child_row(out, "pos_transactions", "POS Invoice Reference", i, {
            "pos_invoice": inv["name"], "posting_date": inv.get("posting_date"), "customer": inv.get("customer"),
            "grand_total": inv.get("grand_total"), "is_return": cint(inv.get("is_return")),
            "return_against": inv.get("return_against")})
        for i, inv in enumerate(invoices, 1)]
    out["payment_reconciliation"] = [
        child_row(out, "payment_reconciliation", "POS Closing Entry Detail", i, {
            "mode_of_payment": row.get("mode_of_payment"),
            "opening_amount": num(money(row.get("opening_amount"))),
            "expected_amount": num(money(row.get("expected_amount"))),
            "closing_amount": num(money(row.get("closing_amount"))),
            "difference": num(money(row.get("closing_amount")) - money(row.get("expected_amount")))})
        for i, row in enumerate(doc.get("payment_reconciliation") or [], 1)]
    site.docs.setdefault(DOCTYPE, {})[name] = out
    return out
