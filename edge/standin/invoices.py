"""Sales Invoice and POS Invoice: insert, save/submit/cancel by PUT, and status, as ERPNext 15 does them.

A small, faithful subset (no taxes, pricing rules or GL). The checks run in
this order and the first failure wins:

1. mandatory fields: customer, company, items (item_code, qty), payments' mode
   of payment, return_against for a return -> MandatoryError 417
   (frappe Document._validate_mandatory)
2. a POS Invoice must have is_pos (pos_invoice.py validate)
3. unknown customer: with is_pos and a POS Profile, ERPNext's set_pos_fields does
   `customer_price_list, customer_group = frappe.get_value("Customer", ...)`, which
   crashes on None -> TypeError 500; otherwise LinkValidationError 417
4. unknown item -> DoesNotExistError 404 "Item X not found" (get_item_details)
5. other links (company, pos_profile, selling_price_list, cost_center,
   set_warehouse, rows' warehouse/cost_center) -> LinkValidationError 417
   (Document._validate_links, all broken links in one message)
6. returns (returns.py): rows linked to the original's rows are checked,
   unlinked ones only get a message on the 200 answer
7. a POS Invoice needs a submitted, Open POS Opening Entry for its pos_profile:
   417 "No open POS Opening Entry found for POS Profile <strong>X</strong>."
   title "POS Opening Entry Missing", before any payment check (recorded
   pinv-a/pinv-b; opening.py)
8. payments: amounts positive (negative for a return) -> "Row #n (Payment Table): ..."
   (sales_invoice.py verify_payment_amount_is_positive/negative, pos_invoice.py)
9. payment accounts: a POS Invoice fills them in validate and a Sales Invoice in
   before_save (set_account_for_mode_of_payment -> get_bank_cash_account, which
   throws for a mode with no account for the company). Inserting a Sales Invoice
   with docstatus 1 runs before_submit instead of before_save, so a row left
   without account reaches the GL Entry: "Account is required" (gl_entry.py
   check_mandatory). A mode of payment is not otherwise validated.
10. a submitted POS Invoice's stock availability (stock.py, recorded stk-d)
11. a submitted POS Invoice's payment (validate_full_payment): no paid_amount in
    the body is 500 TypeError "'<' not supported between instances of 'NoneType'
    and 'float'" (recorded pinv-e3) on a site made with strict_paid_amount=True;
    on other sites (the gateway does not send it yet) the sum of the payment rows
    stands in for it. Paid below the total, with the POS Profile's
    allow_partial_payment off, is 417 PartialPaymentValidationError "Partial
    Payment in POS Invoice is not allowed." (pinv-e2); a return must be paid exactly.
12. a unique Custom Field value already used -> UniqueValidationError 417
    ("<Label> must be unique", BaseDocument.show_unique_validation_message)
13. a submitted Sales Invoice with update_stock selling more than the warehouse
    holds -> NegativeStockError 417 (stock.py, recorded stk-a/stk-c)

Without set_posting_time the posting date and time are the site's local now
(clock.py; recorded pt-c1); with it they are kept as sent ("9:5:7" stays so in
the insert answer, reading.py formats it on a read). Totals: totals.py.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from edge.standin.clock import local_now, now_text, nowtime_text, today
from edge.standin.documents import (
    cint,
    dec,
    link_exists,
    missing_message,
    money,
    raise_invalid_links,
    raise_missing,
    to_date,
)
from edge.standin.errors import FrappeError
from edge.standin.meta import CHILD_TABLES, custom_fields, keep_known
from edge.standin.naming import next_name, series_for
from edge.standin.opening import open_entries
from edge.standin.returns import check_return
from edge.standin.stock import check_negative_stock, check_pos_availability, post_stock
from edge.standin.totals import PAYMENT_DOCTYPE, compute_totals

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

INVOICE_DOCTYPES = frozenset({"Sales Invoice", "POS Invoice"})

# (fieldname, link doctype, label) as in sales_invoice.json / sales_invoice_item.json
PARENT_LINKS = (
    ("company", "Company", "Company"),
    ("pos_profile", "POS Profile", "POS Profile"),
    ("selling_price_list", "Price List", "Price List"),
    ("cost_center", "Cost Center", "Cost Center"),
    ("set_warehouse", "Warehouse", "Source Warehouse"),
)
ROW_LINKS = (("warehouse", "Warehouse", "Warehouse"), ("cost_center", "Cost Center", "Cost Center"))


# --- entry points -------------------------------------------------------------------------


def insert_invoice(site: StandInSite, doctype: str, data: dict[str, Any], user: str,
                   notes: list[str] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /api/resource/<doctype>: validate, name, total and store.

    Returns (stored document, create response). A Sales Invoice's response has the
    stale `status` "Draft": its set_status returns early while the document is new,
    so insert() answers with the default even when it submitted; the stored
    document (what a later GET reads) has the real status. A POS Invoice sets its
    status again on submit, so it answers "Paid" (recorded pinv-e1). Messages
    printed without raising (an unlinked return row) are appended to `notes`.
    """
    doc = keep_known(site, doctype, data)
    docstatus = cint(doc.get("docstatus"))
    if docstatus not in (0, 1):
        raise FrappeError("DocstatusTransitionError", f"Cannot change docstatus from 0 to {docstatus}")
    stored = _build(site, doctype, doc, user, docstatus, existing=None, notes=notes if notes is not None else [])
    _store(site, doctype, stored)
    response = {**stored, "status": "Draft"} if doctype == "Sales Invoice" else dict(stored)
    return stored, response


def update_invoice(site: StandInSite, doctype: str, current: dict[str, Any], data: dict[str, Any],
                   user: str, notes: list[str] | None = None) -> dict[str, Any]:
    """PUT /api/resource/<doctype>/<name>: save a draft, submit it (docstatus 1) or cancel (docstatus 2)."""
    changes = keep_known(site, doctype, data)
    old, new = cint(current.get("docstatus")), cint(changes.get("docstatus", current.get("docstatus")))
    if old == 2:
        raise FrappeError("ValidationError", "Cannot edit cancelled document")
    if old == 1:
        if new == 0:
            raise FrappeError("DocstatusTransitionError", "Cannot change docstatus from 1 to 0")
        for key, value in changes.items():
            if key not in ("docstatus", "name", "doctype", "modified") and value != current.get(key):
                raise FrappeError("UpdateAfterSubmitError", f"Not allowed to change {key} after submission")
        if new == 2:
            current.update({"docstatus": 2, "modified": now_text(site), "modified_by": user})
            for table in CHILD_TABLES[doctype]:
                for row in current.get(table) or []:
                    row["docstatus"] = 2
            if doctype == "Sales Invoice":
                post_stock(site, current, sign=+1)
            refresh_status(site, doctype, current)
        return current
    if new == 2:
        raise FrappeError("DocstatusTransitionError", "Cannot change docstatus from 0 to 2")
    merged = {k: v for k, v in current.items() if k not in ("status", "docstatus")}
    merged.update({k: v for k, v in changes.items() if k not in ("name", "doctype", "owner", "creation")})
    stored = _build(site, doctype, merged, user, new, existing=current, notes=notes if notes is not None else [])
    _store(site, doctype, stored)
    return stored


def _store(site: StandInSite, doctype: str, stored: dict[str, Any]) -> None:
    site.docs.setdefault(doctype, {})[stored["name"]] = stored
    if doctype == "Sales Invoice" and cint(stored["docstatus"]) == 1:
        post_stock(site, stored)
    refresh_status(site, doctype, stored)


def compute_status(site: StandInSite, doctype: str, doc: dict[str, Any]) -> str:
    """The status ERPNext's set_status gives a saved invoice (sales_invoice.py / pos_invoice.py).

    A submitted Sales Invoice credit note keeps "Draft" (recorded ret-b-get, ret-h2:
    its status is never set again after the insert); a POS Invoice return is "Return"
    (pos_invoice.py on_submit, not recorded)."""
    docstatus = cint(doc.get("docstatus"))
    if docstatus == 0:
        return "Draft"
    if docstatus == 2:
        return "Cancelled"
    is_return = cint(doc.get("is_return"))
    if doctype == "Sales Invoice" and is_return:
        return "Draft"
    outstanding = money(doc.get("outstanding_amount"))
    total = money(doc.get("rounded_total") or doc.get("grand_total"))
    overdue = outstanding > 0 and to_date(doc.get("due_date"), today(site)) < today(site)
    if doctype == "POS Invoice":
        if doc.get("consolidated_invoice"):
            return "Consolidated"
        if overdue:
            return "Overdue"
        if outstanding > 0:
            return "Unpaid"  # POS Invoice has no "Partly Paid"
    else:
        if overdue:
            return "Overdue"
        if 0 < outstanding < total:
            return "Partly Paid"
        if outstanding > 0:
            return "Unpaid"
    if not is_return and _has_submitted_return(site, doctype, doc["name"]):
        return "Credit Note Issued"
    return "Return" if is_return else "Paid"


def refresh_status(site: StandInSite, doctype: str, doc: dict[str, Any]) -> None:
    """Store the real status on `doc` and on the invoice it returns against (on_submit/on_cancel)."""
    doc["status"] = compute_status(site, doctype, doc)
    original = site.docs.get(doctype, {}).get(doc.get("return_against") or "")
    if cint(doc.get("is_return")) and cint(doc.get("docstatus")) and original is not None:
        # the payment ledger updates the original's outstanding and status (db_set: modified too)
        original.update({"status": compute_status(site, doctype, original), "modified": now_text(site)})


# --- the pipeline -------------------------------------------------------------------------


def _build(site: StandInSite, doctype: str, doc: dict[str, Any], user: str, docstatus: int,
           existing: dict[str, Any] | None, notes: list[str]) -> dict[str, Any]:
    is_pos = cint(doc.get("is_pos", 1 if doctype == "POS Invoice" else 0))
    is_return = cint(doc.get("is_return"))
    posting_date, posting_time = _posting(site, doc)
    series = series_for(doctype, doc.get("naming_series"))
    name = existing["name"] if existing else next_name(site, series, posting_date, consume=False)
    payments_in = [dict(p) for p in doc.get("payments") or []] if is_pos else []

    _check_mandatory(doctype, doc, name, is_return, payments_in)
    if doctype == "POS Invoice" and not is_pos:
        raise FrappeError("ValidationError", "POS Invoice should have <strong>Include Payment</strong> field checked.")
    profile = _pos_profile(site, doc) if is_pos else None  # set_pos_fields only runs for is_pos
    _check_customer(site, doc, profile)
    for row in doc["items"]:
        if not link_exists(site, "Item", row["item_code"]):
            raise FrappeError("DoesNotExistError", f"Item {row['item_code']} not found")
    _check_links(site, doc)
    if is_return:
        check_return(site, doctype, doc, notes)
    if doctype == "POS Invoice":
        _check_opening_entry(site, (profile or {}).get("name") or doc.get("pos_profile"))
    _check_payments(site, doctype, doc, is_pos, is_return, docstatus, payments_in)

    stamp = now_text(site)
    company = site.docs["Company"][doc["company"]]
    customer = site.docs["Customer"][doc["customer"]]
    currency = company.get("default_currency")
    price_list = (doc.get("selling_price_list") or (profile or {}).get("selling_price_list")
                  or next(iter(site.docs.get("Price List", {})), None))  # else Selling Settings' default
    out: dict[str, Any] = {
        "name": name,
        "owner": existing["owner"] if existing else user,
        "creation": existing["creation"] if existing else stamp,
        "modified": stamp,
        "modified_by": user,
        "docstatus": docstatus,
        "idx": 0,
        "doctype": doctype,
        "naming_series": series,
        "title": customer.get("customer_name") or customer["name"],
        "customer": customer["name"],
        "customer_name": customer.get("customer_name") or customer["name"],
        "company": company["name"],
        "posting_date": posting_date.isoformat(),
        "posting_time": posting_time,
        "set_posting_time": cint(doc.get("set_posting_time")),
        "due_date": max(to_date(doc.get("due_date"), posting_date), posting_date).isoformat(),
        "is_pos": is_pos,
        "pos_profile": (profile or {}).get("name") or doc.get("pos_profile"),
        "is_return": is_return,
        "return_against": doc.get("return_against") if is_return else None,
        "update_stock": cint(doc.get("update_stock", (profile or {}).get("update_stock", 0))),
        "set_warehouse": doc.get("set_warehouse"),
        "cost_center": doc.get("cost_center") or (profile or {}).get("cost_center"),
        "currency": currency,
        "conversion_rate": 1.0,
        "selling_price_list": price_list,
        "price_list_currency": currency,
        "plc_conversion_rate": 1.0,
        "ignore_pricing_rule": cint(doc.get("ignore_pricing_rule")),
        "account_for_change_amount": doc.get("account_for_change_amount") or company.get("default_cash_account"),
        "remarks": doc.get("remarks") or "No Remarks",
        "po_no": doc.get("po_no"),
        "po_date": doc.get("po_date"),
        "amended_from": doc.get("amended_from"),
    }
    if doctype == "Sales Invoice":
        out["is_consolidated"] = cint(doc.get("is_consolidated"))
        out["update_outstanding_for_self"] = 1
    else:
        out["consolidated_invoice"] = doc.get("consolidated_invoice")
    for fieldname in custom_fields(site, doctype):
        out[fieldname] = doc.get(fieldname)
    compute_totals(site, doctype, out, doc, profile, payments_in)
    if doctype == "POS Invoice" and docstatus == 1:
        check_pos_availability(site, out)
        _check_full_payment(out, profile)
    _check_unique(site, doctype, doc, name)
    if doctype == "Sales Invoice" and docstatus == 1:
        check_negative_stock(site, doctype, out, name)
    if not existing:
        out["name"] = next_name(site, series, posting_date)
        for table in CHILD_TABLES[doctype]:
            for row in out.get(table) or []:
                row["parent"] = out["name"]
    return out


def _posting(site: StandInSite, doc: dict[str, Any]) -> tuple[date, str]:
    """validate_auto_set_posting_time: keep the given date/time only with set_posting_time."""
    if cint(doc.get("set_posting_time")) and doc.get("posting_date"):
        return to_date(doc["posting_date"], today(site)), str(doc.get("posting_time") or "00:00:00")
    return local_now(site).date(), nowtime_text(site)


def _check_mandatory(doctype: str, doc: dict[str, Any], name: str, is_return: int,
                     payments: list[dict[str, Any]]) -> None:
    missing: list[tuple[str, str]] = []
    for field, label in (("customer", "Customer"), ("company", "Company")):
        if doc.get(field) in (None, ""):
            missing.append((field, missing_message(doctype, label)))
    if is_return and not doc.get("return_against"):
        missing.append(("return_against", missing_message(doctype, "Return Against")))
    items = doc.get("items") or []
    if not items:
        missing.append(("items", "Error: Data missing in table: Items"))
    item_doctype = CHILD_TABLES[doctype]["items"]
    for idx, row in enumerate(items, 1):
        for field, label in (("item_code", "Item"), ("qty", "Quantity")):
            if row.get(field) in (None, ""):
                missing.append((field, missing_message(item_doctype, label, idx)))
    for idx, row in enumerate(payments, 1):
        if not row.get("mode_of_payment"):
            missing.append(("mode_of_payment", missing_message(PAYMENT_DOCTYPE, "Mode of Payment", idx)))
    raise_missing(doctype, name, missing)


def _pos_profile(site: StandInSite, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The given POS Profile, else the company's (erpnext.stock.get_item_details.get_pos_profile)."""
    profiles = site.docs.get("POS Profile", {})
    if doc.get("pos_profile"):
        return profiles.get(doc["pos_profile"])
    return next((p for p in profiles.values() if p.get("company") == doc.get("company") and not p.get("disabled")), None)


def _check_customer(site: StandInSite, doc: dict[str, Any], profile: dict[str, Any] | None) -> None:
    if link_exists(site, "Customer", doc["customer"]):
        return
    if profile is not None:
        # set_pos_fields: customer_price_list, customer_group = frappe.get_value("Customer", ...) -> None
        raise FrappeError("TypeError", "cannot unpack non-iterable NoneType object")
    raise_invalid_links([f"Customer: {doc['customer']}"])


def _check_links(site: StandInSite, doc: dict[str, Any]) -> None:
    invalid = [f"{label}: {doc[field]}" for field, target, label in PARENT_LINKS
               if doc.get(field) and not link_exists(site, target, doc[field])]
    for idx, row in enumerate(doc["items"], 1):
        invalid += [f"Row #{idx}: {label}: {row[field]}" for field, target, label in ROW_LINKS
                    if row.get(field) and not link_exists(site, target, row[field])]
    raise_invalid_links(invalid)


def _check_opening_entry(site: StandInSite, pos_profile: str | None) -> None:
    """pos_invoice.py validate_pos_opening_entry (see opening.open_entries)."""
    if not open_entries(site, pos_profile):
        raise FrappeError("ValidationError", title="POS Opening Entry Missing",
                          message=f"No open POS Opening Entry found for POS Profile <strong>{pos_profile}</strong>.")


def _check_payments(site: StandInSite, doctype: str, doc: dict[str, Any], is_pos: int, is_return: int, docstatus: int,
                    payments: list[dict[str, Any]]) -> None:
    if not is_pos:
        return
    for idx, row in enumerate(payments, 1):
        amount = dec(row.get("amount"))
        if not is_return and amount < 0:
            raise FrappeError("ValidationError", f"Row #{idx} (Payment Table): Amount must be positive")
        if is_return and amount > 0:
            raise FrappeError("ValidationError", f"Row #{idx} (Payment Table): Amount must be negative")
    submitting_si = doctype == "Sales Invoice" and docstatus == 1
    if (doctype == "POS Invoice" or submitting_si) and not payments:
        raise FrappeError("ValidationError", "At least one mode of payment is required for POS invoice.")
    if submitting_si:
        # on_submit: clear_unallocated_mode_of_payments, then make_gl_entries -> GL Entry check_mandatory
        payments[:] = [p for p in payments if dec(p.get("amount")) != 0]
        if any(not p.get("account") for p in payments):
            raise FrappeError("ValidationError", "Account is required")
        return
    for row in payments:  # set_account_for_mode_of_payment
        if not row.get("account"):
            row["account"] = _mode_account(site, row["mode_of_payment"], doc["company"])


def _check_full_payment(out: dict[str, Any], profile: dict[str, Any] | None) -> None:
    """pos_invoice.py validate_full_payment, for a submitted POS Invoice."""
    total = dec(out["rounded_total"]) or dec(out["grand_total"])
    if out["paid_amount"] is None:
        raise FrappeError("TypeError", "'<' not supported between instances of 'NoneType' and 'float'")
    if cint((profile or {}).get("allow_partial_payment")):
        return
    paid = dec(out["paid_amount"])
    if (out["is_return"] and paid != total) or paid < total:
        raise FrappeError("PartialPaymentValidationError", "Partial Payment in POS Invoice is not allowed.")


def _mode_account(site: StandInSite, mode: str, company: str) -> str:
    """erpnext.accounts.doctype.sales_invoice.sales_invoice.get_bank_cash_account."""
    mop = site.docs.get("Mode of Payment", {}).get(mode) or {}
    for row in mop.get("accounts") or []:
        if row.get("company") == company and row.get("default_account"):
            return row["default_account"]
    link = f'<a href="/app/mode-of-payment/{mode}">{mode}</a>'
    raise FrappeError("ValidationError", f"Please set default Cash or Bank account in Mode of Payment {link}",
                      title="Missing Account")


def _check_unique(site: StandInSite, doctype: str, doc: dict[str, Any], name: str) -> None:
    for fieldname, cf in custom_fields(site, doctype).items():
        value = doc.get(fieldname)
        if not cint(cf.get("unique")) or value in (None, ""):
            continue
        if any(other.get(fieldname) == value and other["name"] != name for other in site.docs.get(doctype, {}).values()):
            integrity = f"IntegrityError(1062, \"Duplicate entry '{value}' for key '{fieldname}'\")"
            raise FrappeError("UniqueValidationError", f"{cf.get('label') or fieldname} must be unique",
                              exception=f"frappe.exceptions.UniqueValidationError: ('{doctype}', '{name}', {integrity})")


def _has_submitted_return(site: StandInSite, doctype: str, name: str) -> bool:
    return any(cint(d.get("is_return")) and d.get("return_against") == name and cint(d.get("docstatus")) == 1
               for d in site.docs.get(doctype, {}).values())
