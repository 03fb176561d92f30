"""Sales Invoice and POS Invoice: insert, save/submit/cancel by PUT, and status, as ERPNext 15 does them.

A small, faithful subset (no taxes, pricing rules, stock or GL). The checks run in
this order and the first failure wins:

1. mandatory fields: customer, company, items (item_code, qty), payments' mode of
   payment, return_against for a return -> MandatoryError 417
   (frappe Document._validate_mandatory)
2. a POS Invoice must have is_pos (pos_invoice.py validate)
3. unknown customer: with is_pos and a POS Profile, ERPNext's set_pos_fields does
   `customer_price_list, customer_group = frappe.get_value("Customer", ...)`, which
   crashes on None -> TypeError 500; otherwise LinkValidationError 417
4. unknown item -> DoesNotExistError 404 "Item X not found" (get_item_details)
5. other links (company, pos_profile, selling_price_list, cost_center,
   set_warehouse, rows' warehouse/cost_center) -> LinkValidationError 417
   (Document._validate_links, all broken links in one message)
6. returns: return_against must be a submitted invoice of the same doctype,
   returned items must be in it, quantities negative
   (controllers/sales_and_purchase_return.py, pos_invoice.py validate_return_items_qty)
7. payments: amounts positive (negative for a return) -> "Row #n (Payment Table): ..."
   (sales_invoice.py verify_payment_amount_is_positive/negative, pos_invoice.py)
8. payment accounts: a POS Invoice fills them in validate and a Sales Invoice in
   before_save (set_account_for_mode_of_payment -> get_bank_cash_account, which
   throws for a mode with no account for the company). Inserting a Sales Invoice
   with docstatus 1 runs before_submit instead of before_save, so a row left
   without account reaches the GL Entry: "Account is required" (gl_entry.py
   check_mandatory). A mode of payment is not otherwise validated.
9. a unique Custom Field value already used -> UniqueValidationError 417
   ("<Label> must be unique", BaseDocument.show_unique_validation_message)
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from edge.standin.clock import local_now, now_text, nowtime_text, today
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
from edge.standin.errors import FrappeError
from edge.standin.meta import CHILD_TABLES, custom_fields, keep_known
from edge.standin.naming import next_name, series_for

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

INVOICE_DOCTYPES = frozenset({"Sales Invoice", "POS Invoice"})
PAYMENT_DOCTYPE = "Sales Invoice Payment"

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


def insert_invoice(site: StandInSite, doctype: str, data: dict[str, Any],
                   user: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST /api/resource/<doctype>: validate, name, total and store.

    Returns (stored document, create response). The response's `status` is the
    stale "Draft": ERPNext's set_status returns early while the document is new,
    so insert() answers with the default even when it submitted; the stored
    document (what a later GET reads) has the real status.
    """
    doc = keep_known(site, doctype, data)
    docstatus = cint(doc.get("docstatus"))
    if docstatus not in (0, 1):
        raise FrappeError("DocstatusTransitionError", f"Cannot change docstatus from 0 to {docstatus}")
    stored = _build(site, doctype, doc, user, docstatus, existing=None)
    site.docs.setdefault(doctype, {})[stored["name"]] = stored
    refresh_status(site, doctype, stored)
    response = {**stored, "status": "Draft"}
    return stored, response


def update_invoice(site: StandInSite, doctype: str, current: dict[str, Any], data: dict[str, Any],
                   user: str) -> dict[str, Any]:
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
            refresh_status(site, doctype, current)
        return current
    if new == 2:
        raise FrappeError("DocstatusTransitionError", "Cannot change docstatus from 0 to 2")
    merged = {k: v for k, v in current.items() if k not in ("status", "docstatus")}
    merged.update({k: v for k, v in changes.items() if k not in ("name", "doctype", "owner", "creation")})
    stored = _build(site, doctype, merged, user, new, existing=current)
    site.docs[doctype][stored["name"]] = stored
    refresh_status(site, doctype, stored)
    return stored


def compute_status(site: StandInSite, doctype: str, doc: dict[str, Any]) -> str:
    """The status ERPNext's set_status gives a saved invoice (sales_invoice.py / pos_invoice.py)."""
    docstatus = cint(doc.get("docstatus"))
    if docstatus == 0:
        return "Draft"
    if docstatus == 2:
        return "Cancelled"
    outstanding = money(doc.get("outstanding_amount"))
    total = money(doc.get("rounded_total") or doc.get("grand_total"))
    overdue = outstanding > 0 and to_date(doc.get("due_date"), today(site)) < today(site)
    is_return = cint(doc.get("is_return"))
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
    if cint(doc.get("is_return")) and original is not None:
        original["status"] = compute_status(site, doctype, original)


# --- the pipeline -------------------------------------------------------------------------


def _build(site: StandInSite, doctype: str, doc: dict[str, Any], user: str, docstatus: int,
           existing: dict[str, Any] | None) -> dict[str, Any]:
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
        _check_return(site, doctype, doc)
    _check_payments(site, doctype, doc, is_pos, is_return, docstatus, payments_in)
    _check_unique(site, doctype, doc, name)

    if not existing:
        name = next_name(site, series, posting_date)
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
    if doctype == "POS Invoice":
        out["consolidated_invoice"] = doc.get("consolidated_invoice")
    for fieldname in custom_fields(site, doctype):
        out[fieldname] = doc.get(fieldname)
    _totals(site, doctype, out, doc, profile, payments_in)
    return out


def _posting(site: StandInSite, doc: dict[str, Any]) -> tuple[date, str]:
    """validate_auto_set_posting_time: keep the given date/time only with set_posting_time;
    otherwise the site's local now (clock.py)."""
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


def _check_return(site: StandInSite, doctype: str, doc: dict[str, Any]) -> None:
    against = doc["return_against"]
    original = site.docs.get(doctype, {}).get(against)
    if original is None or cint(original.get("docstatus")) != 1 or cint(original.get("is_return")):
        raise_invalid_links([f"Return Against: {against}"])
    returnable = {row["item_code"] for row in original.get("items") or []}
    for idx, row in enumerate(doc["items"], 1):
        if dec(row["qty"]) > 0:
            if doctype == "POS Invoice":
                raise FrappeError("ValidationError", title="Invalid Item", message=(
                    f"Row #{idx}: You cannot add postive quantities in a return invoice. "
                    f"Please remove item <strong>{row['item_code']}</strong> to complete the return."))
            raise FrappeError("ValidationError", f"Row #{idx}: Quantity must be negative for return")
        if row["item_code"] not in returnable:
            raise FrappeError("ValidationError",
                              f"Row # {idx}: Returned Item {row['item_code']} does not exist in {doctype} {against}")


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


# --- totals (erpnext/controllers/taxes_and_totals.py, without taxes) ------------------------


def _totals(site: StandInSite, doctype: str, out: dict[str, Any], doc: dict[str, Any], profile: dict[str, Any] | None,
            payments_in: list[dict[str, Any]]) -> None:
    item_doctype = CHILD_TABLES[doctype]["items"]
    rows: list[dict[str, Any]] = []
    amounts: list[Decimal] = []
    for idx, row in enumerate(doc["items"], 1):
        item = site.docs["Item"][row["item_code"]]
        qty = dec(row["qty"])
        price_list_rate = money(row.get("price_list_rate") or item.get("standard_rate"))
        discount_pct = dec(row.get("discount_percentage"))
        rate = money(row.get("rate"))
        if discount_pct == 100:
            rate = Decimal("0.00")
        elif not rate:  # calculate_item_values: no rate -> price_list_rate less the row discount
            rate = money(price_list_rate * (1 - discount_pct / 100))
        amount = money(qty * rate)
        amounts.append(amount)
        rows.append(child_row(out, "items", item_doctype, idx, {
            "item_code": item["name"],
            "item_name": row.get("item_name") or item.get("item_name") or item["name"],
            "description": row.get("description") or item.get("description") or item.get("item_name") or item["name"],
            "qty": float(qty),
            "uom": row.get("uom") or item.get("stock_uom") or "Nos",
            "stock_uom": item.get("stock_uom") or "Nos",
            "conversion_factor": 1.0,
            "stock_qty": float(qty),
            "price_list_rate": num(price_list_rate),
            "discount_percentage": float(discount_pct),
            "rate": num(rate),
            "amount": num(amount),
            "base_rate": num(rate),
            "base_amount": num(amount),
            "warehouse": row.get("warehouse") or doc.get("set_warehouse") or (profile or {}).get("warehouse"),
            "cost_center": row.get("cost_center") or out.get("cost_center"),
        }))
    total = sum(amounts, Decimal("0.00"))
    # apply_discount_amount: the percentage wins over a given amount; spread over rows, rest on the last
    pct = dec(doc.get("additional_discount_percentage"))
    discount = money(total * pct / 100) if pct else money(doc.get("discount_amount"))
    spread = Decimal("0.00")
    for i, (row, amount) in enumerate(zip(rows, amounts)):
        share = discount - spread if i == len(rows) - 1 else (money(discount * amount / total) if total else Decimal(0))
        spread += share
        net_amount = amount - share
        qty = dec(row["qty"])
        row.update({"net_amount": num(net_amount), "base_net_amount": num(net_amount),
                    "net_rate": num(money(net_amount / qty)) if qty else row["rate"]})
        row["base_net_rate"] = row["net_rate"]
    net_total = total - discount
    grand_total = net_total
    rounded_total = money(grand_total)  # as with disable_rounded_total or a 0.01 smallest fraction

    payments = []
    for idx, row in enumerate(payments_in, 1):
        mop = site.docs.get("Mode of Payment", {}).get(row["mode_of_payment"]) or {}
        amount = money(row.get("amount"))
        payments.append(child_row(out, "payments", PAYMENT_DOCTYPE, idx, {
            "default": cint(row.get("default")),
            "mode_of_payment": row["mode_of_payment"],
            "amount": num(amount),
            "base_amount": num(amount),
            "account": row.get("account"),
            "type": mop.get("type"),
            "reference_no": row.get("reference_no"),
        }))
    paid = sum((dec(p["amount"]) for p in payments), Decimal("0.00"))
    change = Decimal("0.00")
    if out["is_pos"] and not out["is_return"] and paid > rounded_total:
        # calculate_change_amount (Sales Invoice: only with a Cash row); POS Invoice validate_change_amount
        if doctype == "POS Invoice" or any(p["type"] == "Cash" for p in payments):
            change = paid - rounded_total
    outstanding = rounded_total - (paid - change)
    out.update({
        "total_qty": float(sum((dec(r["qty"]) for r in rows), Decimal(0))),
        "total": num(total), "base_total": num(total),
        "net_total": num(net_total), "base_net_total": num(net_total),
        "apply_discount_on": "Grand Total",
        "additional_discount_percentage": float(pct),
        "discount_amount": num(discount), "base_discount_amount": num(discount),
        "grand_total": num(grand_total), "base_grand_total": num(grand_total),
        "rounding_adjustment": 0.0,
        "rounded_total": num(rounded_total), "base_rounded_total": num(rounded_total),
        "paid_amount": num(paid), "base_paid_amount": num(paid),
        "change_amount": num(change), "base_change_amount": num(change),
        "write_off_amount": 0.0,
        "outstanding_amount": num(outstanding),
        "status": "Draft",
        "items": rows,
        "payments": payments,
    })
