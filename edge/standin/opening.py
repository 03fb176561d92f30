"""POS Opening Entry: a till's shift, opened before it may sell on POS Invoices.

As recorded (pos_invoice.json, pos_closing.json): POST {pos_profile, company,
user, period_start_date, posting_date, docstatus 1, balance_details:
[{mode_of_payment, opening_amount}]} answers 200 with status "Open" and the
period_start_date as sent (pinv-c); a second Open entry for the same profile
and user is accepted, ERPNext does not refuse duplicates (pinv-d). A POS
Closing Entry closes it: status "Closed", pos_closing_entry set (close-b1-ope).
Named "POS-OPE-.YYYY.-.#####" from its posting date.

Not recorded (assumptions): the mandatory fields (period_start_date, company,
user, pos_profile) and links are checked like other documents; a draft
(docstatus 0) has status "Draft"; child rows carry the parent's stamps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.standin.clock import now_text, today
from edge.standin.documents import (
    child_row,
    cint,
    dec,
    link_exists,
    missing_message,
    raise_invalid_links,
    raise_missing,
    to_date,
)
from edge.standin.errors import FrappeError
from edge.standin.meta import keep_known
from edge.standin.naming import next_name, series_for

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

DOCTYPE = "POS Opening Entry"


def insert_opening_entry(site: StandInSite, data: dict[str, Any], user: str) -> dict[str, Any]:
    """POST /api/resource/POS Opening Entry: validate, name and store; returns the stored document."""
    doc = keep_known(site, DOCTYPE, data)
    docstatus = cint(doc.get("docstatus"))
    if docstatus not in (0, 1):
        raise FrappeError("DocstatusTransitionError", f"Cannot change docstatus from 0 to {docstatus}")
    posting_date = to_date(doc.get("posting_date"), today(site))
    series = series_for(DOCTYPE, doc.get("naming_series"))
    missing = [(f, missing_message(DOCTYPE, label)) for f, label in (
        ("period_start_date", "Period Start Date"), ("company", "Company"), ("user", "Cashier"),
        ("pos_profile", "POS Profile")) if not doc.get(f)]
    raise_missing(DOCTYPE, next_name(site, series, posting_date, consume=False), missing)
    raise_invalid_links([f"{label}: {doc[f]}" for f, target, label in (
        ("company", "Company", "Company"), ("pos_profile", "POS Profile", "POS Profile"))
        if not link_exists(site, target, doc[f])])

    stamp = now_text(site)
    name = next_name(site, series, posting_date)
    out: dict[str, Any] = {
        "name": name, "owner": user, "creation": stamp, "modified": stamp, "modified_by": user,
        "docstatus": docstatus, "idx": 0, "doctype": DOCTYPE, "naming_series": series,
        "period_start_date": doc["period_start_date"], "period_end_date": doc.get("period_end_date"),
        "status": "Open" if docstatus == 1 else "Draft", "posting_date": posting_date.isoformat(),
        "company": doc["company"], "pos_profile": doc["pos_profile"], "pos_closing_entry": None,
        "user": doc["user"],
    }
    out["balance_details"] = [
        child_row(out, "balance_details", "POS Opening Entry Detail", i, {
            "mode_of_payment": row.get("mode_of_payment"), "opening_amount": float(dec(row.get("opening_amount")))})
        for i, row in enumerate(doc.get("balance_details") or [], 1)]
    site.docs.setdefault(DOCTYPE, {})[name] = out
    return out


def open_entries(site: StandInSite, pos_profile: str | None) -> list[dict[str, Any]]:
    """The submitted, Open entries of a POS Profile (pos_invoice.py validate_pos_opening_entry
    filters on these three only, not on the user)."""
    return [d for d in site.docs.get(DOCTYPE, {}).values()
            if d.get("pos_profile") == pos_profile and d.get("status") == "Open" and cint(d.get("docstatus")) == 1]


def close(site: StandInSite, opening: dict[str, Any], closing_entry: str) -> None:
    """POSClosingEntry.update_opening_entry: link the closing entry, status "Closed"."""
    opening.update({"pos_closing_entry": closing_entry, "status": "Closed", "modified": now_text(site)})
