"""POS Closing Entry, as recorded on a real ERPNext 15.99 site (pos_closing.json), and get_pos_invoices.

Named "POS-CLO-.YYYY.-.#####" from its posting date. On insert:

- pos_opening_entry must name an Open entry: else 417 "Selected POS Opening
  Entry should be open." title "Invalid Opening Entry" (close-a: null;
  close-d: already closed; a name that does not exist gets it too, checked on
  the real site: it comes before the link checks). user, pos_profile and
  period_start_date are fetched from it, overwriting what the client sent
  (close-b1, close-e6).
- Links (company, pos_profile, each row's POS Invoice): LinkValidationError.
  A site made with strict_closing=False (the old test sites: the gateway
  does not open shifts yet) accepts a closing entry WITHOUT pos_opening_entry
  as the stand-in always did: then period_start_date and pos_profile are
  mandatory and kept as sent, user defaults to the caller.
- posting_date/posting_time default to now; period_end_date to today's date
  (answered "2026-11-28", stored and read back "2026-11-28 00:00:00", which
  is before the period start: close-b1, close-f).
- validate_duplicate_pos_invoices (source, not recorded) and
  validate_pos_invoices: a row's invoice already consolidated, of another POS
  Profile, not submitted or created by another user than the entry's user:
  417 ValidationError with all "Row #n: ..." lines as ONE list message, title
  "Invalid POS Invoices" (close-e5: ['Row #2: POS Invoice is already consolidated']).
- The server never picks invoices itself: only the pos_transactions rows sent
  ([{pos_invoice}], the other row fields fetched) are consolidated; none is fine
  (close-b1). There is no check that they fall in the period (close-e9).
- grand_total, net_total, total_quantity and payment_reconciliation rows are
  stored exactly as sent, unchecked (0.0 / [] when not sent: close-b2, close-e6).
- Submitting (docstatus 1) consolidates the rows' invoices (consolidation.py)
  and closes the opening entry (status "Closed", pos_closing_entry set).

get_pos_invoices (the desk form's list, close-b2-getinv, close-e4): the
submitted, unconsolidated POS Invoices of a POS Profile created by `user`
whose posting date and time fall in [start, end], oldest first, each as its
full document (nulls kept, values as read from the database).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edge.standin.clock import now_text, nowtime_text, today
from edge.standin.consolidation import consolidate
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
from edge.standin.opening import close
from edge.standin.reading import parse_datetime, read_doc

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

DOCTYPE = "POS Closing Entry"
TOTALS = ("grand_total", "net_total", "total_quantity")
RECONCILIATION = ("opening_amount", "expected_amount", "closing_amount", "difference")


def insert_closing_entry(site: StandInSite, data: dict[str, Any], user: str) -> dict[str, Any]:
    """POST /api/resource/POS Closing Entry; returns the stored entry."""
    doc = keep_known(site, DOCTYPE, data)
    docstatus = cint(doc.get("docstatus"))
    if docstatus not in (0, 1):
        raise FrappeError("DocstatusTransitionError", f"Cannot change docstatus from 0 to {docstatus}")
    posting_date = to_date(doc.get("posting_date"), today(site))
    series = series_for(DOCTYPE, doc.get("naming_series"))
    transactions = doc.get("pos_transactions") or []

    opening = site.docs.get("POS Opening Entry", {}).get(doc.get("pos_opening_entry") or "")
    if doc.get("pos_opening_entry") or site.strict_closing:
        if opening is None or opening.get("status") != "Open":
            raise FrappeError("ValidationError", "Selected POS Opening Entry should be open.", title="Invalid Opening Entry")
        doc.update({k: opening.get(k) for k in ("user", "pos_profile", "period_start_date")})  # fetch_from
    else:
        doc["user"] = doc.get("user") or user
    invalid = [f"{label}: {doc[f]}" for f, target, label in (
        ("company", "Company", "Company"), ("pos_profile", "POS Profile", "POS Profile"))
        if doc.get(f) and not link_exists(site, target, doc[f])]
    invalid += [f"Row #{i}: POS Invoice: {row.get('pos_invoice')}" for i, row in enumerate(transactions, 1)
                if not link_exists(site, "POS Invoice", row.get("pos_invoice"))]
    raise_invalid_links(invalid)
    missing = [(f, missing_message(DOCTYPE, label)) for f, label in (
        ("period_start_date", "Period Start Date"), ("company", "Company"), ("pos_profile", "POS Profile"))
        if not doc.get(f)]
    raise_missing(DOCTYPE, next_name(site, series, posting_date, consume=False), missing)

    invoices = [site.docs["POS Invoice"][row["pos_invoice"]] for row in transactions]
    _check_duplicates(invoices)
    _check_invoices(invoices, doc, user)

    stamp = now_text(site)
    name = next_name(site, series, posting_date)
    out: dict[str, Any] = {
        "name": name, "owner": user, "creation": stamp, "modified": stamp, "modified_by": user,
        "docstatus": docstatus, "idx": 0, "doctype": DOCTYPE, "naming_series": series,
        "period_start_date": doc["period_start_date"],
        "period_end_date": doc.get("period_end_date") or today(site).isoformat(),
        "posting_date": posting_date.isoformat(), "posting_time": doc.get("posting_time") or nowtime_text(site),
        "pos_opening_entry": doc.get("pos_opening_entry"), "status": "Submitted" if docstatus == 1 else "Draft",
        "company": doc["company"], "pos_profile": doc["pos_profile"], "user": doc["user"],
        "remarks": doc.get("remarks"), **{k: float(dec(doc.get(k))) for k in TOTALS},
    }
    out["pos_transactions"] = [
        child_row(out, "pos_transactions", "POS Invoice Reference", i, {
            "pos_invoice": inv["name"], "posting_date": inv.get("posting_date"), "customer": inv.get("customer"),
            "grand_total": inv.get("grand_total"), "is_return": cint(inv.get("is_return")),
            "return_against": inv.get("return_against")})
        for i, inv in enumerate(invoices, 1)]
    out["payment_reconciliation"] = [
        child_row(out, "payment_reconciliation", "POS Closing Entry Detail", i, {
            "mode_of_payment": row.get("mode_of_payment"), **{k: float(dec(row.get(k))) for k in RECONCILIATION}})
        for i, row in enumerate(doc.get("payment_reconciliation") or [], 1)]
    out["taxes"] = []
    site.docs.setdefault(DOCTYPE, {})[name] = out
    if docstatus == 1:
        consolidate(site, out, invoices, user)
        if opening is not None:
            close(site, opening, name)
    return out


def _check_duplicates(invoices: list[dict[str, Any]]) -> None:
    """validate_duplicate_pos_invoices (pos_closing_entry.py; not recorded)."""
    rows: dict[str, list[int]] = {}
    for idx, inv in enumerate(invoices, 1):
        rows.setdefault(inv["name"], []).append(idx)
    problems = [f"<strong>{name}</strong> is added multiple times on rows: <strong>{idx}</strong>"
                for name, idx in rows.items() if len(idx) > 1]
    if problems:
        raise FrappeError("ValidationError", messages=[problems], title="Duplicate POS Invoices found",
                          exception=f"frappe.exceptions.ValidationError: {problems}")


def _check_invoices(invoices: list[dict[str, Any]], doc: dict[str, Any], owner: str) -> None:
    """validate_pos_invoices: one list of "Row #n: ..." lines (see the module docstring)."""
    problems = []
    for i, inv in enumerate(invoices, 1):
        if inv.get("consolidated_invoice"):
            problems.append(f"Row #{i}: POS Invoice is already consolidated")
            continue
        if inv.get("pos_profile") != doc["pos_profile"]:
            problems.append(f"Row #{i}: POS Profile doesn't match <strong>{doc['pos_profile']}</strong>")
        if cint(inv.get("docstatus")) != 1:
            problems.append(f"Row #{i}: POS Invoice is not submitted")
        if inv.get("owner") != doc["user"]:
            # ERPNext names the closing entry's owner in this message, not its user
            problems.append(f"Row #{i}: POS Invoice isn't created by user <strong>{owner}</strong>")
    if problems:
        raise FrappeError("ValidationError", messages=[problems], title="Invalid POS Invoices",
                          exception=f"frappe.exceptions.ValidationError: {problems}")


def get_pos_invoices(site: StandInSite, args: dict[str, Any]) -> list[dict[str, Any]]:
    """erpnext.accounts.doctype.pos_closing_entry.pos_closing_entry.get_pos_invoices(start, end, pos_profile, user)."""
    start, end = parse_datetime(args.get("start")), parse_datetime(args.get("end"))
    if start is None or end is None:
        raise FrappeError("ValidationError", "start and end must be dates")
    found = []
    for inv in site.docs.get("POS Invoice", {}).values():
        if (inv.get("owner") != args.get("user") or cint(inv.get("docstatus")) != 1
                or inv.get("pos_profile") != args.get("pos_profile") or inv.get("consolidated_invoice")):
            continue
        when = parse_datetime(f"{inv.get('posting_date')} {inv.get('posting_time')}")
        if when is not None and start <= when <= end:
            found.append((when, inv))
    return [read_doc(inv, drop_nulls=False) for _, inv in sorted(found, key=lambda pair: pair[0])]
