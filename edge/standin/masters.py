"""Master data (issue 12): Item, Item Price, Customer and Pricing Rule, inserted, deleted and
stamped as the real ERPNext 15 does (recorded in tests/fixtures/real_erpnext/masterdata).

Insert (POST /api/resource/<doctype>): unknown keys are dropped, the doctype's defaults
filled in (what the recorded answers show), the name made as ERPNext makes it (Item:
item_code; Customer: customer_name, Selling Settings' default; Item Price: a hash;
Pricing Rule: the series "PRLE-.####"), child rows get a name, idx, parent fields and the
parent's creation/modified (Frappe stamps children with the parent's modified). Item
Price takes uom from the item's stock_uom and currency from the price list; Pricing Rule
takes company (Global Defaults' default_company) and currency (the company's) when not
sent, and refuses what the recorded site refused (rule-title-only: 417 MandatoryError
"Item Code is not added in the table"; rule-no-side: 417 "Atleast one of the Selling or
Buying must be selected").

Delete (frappe.model.delete_doc): a missing document is 404 with `exc_type` only
(item-delete-again); an Item that a Pricing Rule row or an invoice row links to is 417
LinkExistsError "You can disable this Item instead of deleting it." after the message
naming the link (del-item-with-price); an Item's own Item Prices and Bins go with it,
without Deleted Documents (erpnext Item.on_trash deletes them by SQL); else the answer is 202 {"data": "ok"}
and a `Deleted Document` is inserted: deleted_doctype, deleted_name, data (the deleted
document's as_json: every field, nulls included, keys sorted, indent 1, child rows
inline), a hash name, creation = modified = now. Deleting the last name of a naming
series moves the series back (rule-new-after-delete reused PRLE-0003). Deleted Documents
are readable over GET /api/resource/Deleted Document (System Manager only on the real
site; the stand-in's API users may read them).
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from edge.standin.clock import local_now, now_text, today
from edge.standin.errors import FrappeError
from edge.standin.meta import CHILD_TABLES, SCHEMAS, keep_known
from edge.standin.reading import parse_datetime
from edge.standin.settings import GLOBAL_DEFAULTS

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

MASTER_DOCTYPES = frozenset({"Item", "Item Price", "Customer", "Pricing Rule"})
DELETED_DOCUMENT = "Deleted Document"
PRICING_RULE_SERIES = "PRLE-"

# Field defaults the recorded insert answers show (erpnext's doctype JSON `default`s).
DEFAULTS: dict[str, dict[str, Any]] = {
    "Item": {"disabled": 0, "is_stock_item": 1, "has_variants": 0, "is_sales_item": 1, "is_purchase_item": 1,
             "allow_alternative_item": 0, "include_item_in_manufacturing": 1, "opening_stock": 0.0,
             "valuation_rate": 0.0, "standard_rate": 0.0, "is_fixed_asset": 0, "end_of_life": "2099-12-31",
             "naming_series": "STO-ITEM-.YYYY.-", "barcodes": []},
    "Item Barcode": {"barcode_type": ""},
    "Item Price": {"buying": 0, "selling": 0, "packing_unit": 0, "lead_time_days": 0},
    "Customer": {"customer_type": "Company", "disabled": 0, "is_internal_customer": 0, "is_frozen": 0,
                 "naming_series": "CUST-.YYYY.-"},
    "Pricing Rule": {"disable": 0, "apply_on": "Item Code", "price_or_product_discount": "Price", "selling": 0,
                     "buying": 0, "min_qty": 0.0, "max_qty": 0.0, "min_amt": 0.0, "max_amt": 0.0,
                     "margin_type": "Percentage", "margin_rate_or_amount": 0.0,
                     "rate_or_discount": "Discount Percentage", "apply_discount_on": "Grand Total", "rate": 0.0,
                     "discount_amount": 0.0, "discount_percentage": 0.0, "priority": "", "applicable_for": "",
                     "naming_series": "PRLE-.####", "items": []},
}
FLOATS = {"Item Price": ("price_list_rate",), "Pricing Rule": ("min_qty", "max_qty", "rate", "discount_amount",
                                                               "discount_percentage")}
# apply_on -> the table that must then have rows, and its link field
APPLY_ON = {"Item Code": ("items", "item_code"), "Item Group": ("item_groups", "item_group"), "Brand": ("brands", "brand")}
# the documents whose rows link to an Item (doctype, child table, field)
ITEM_LINKS = (("Pricing Rule", "items", "item_code"), ("Sales Invoice", "items", "item_code"),
              ("POS Invoice", "items", "item_code"))


def hash_name() -> str:
    """frappe.model.naming make_autoname("hash"): a 4-character time prefix and random base32 characters."""
    ts = int(time.time() * 10) % (32**4)
    prefix = base64.b32hexencode(ts.to_bytes(5, "big")).decode()[-3:].lower()
    return (secrets.choice("0123456789abcdef") + prefix + base64.b32hexencode(secrets.token_bytes(7)).decode()[:6].lower())


def insert_master(site: StandInSite, doctype: str, data: dict[str, Any], user: str,
                  notes: list[str] | None = None) -> dict[str, Any]:
    """Insert a master document as ERPNext would; raises FrappeError where the real site refused.
    Messages printed on the way are added to `notes`."""
    notes = [] if notes is None else notes
    doc = {**DEFAULTS[doctype], **{k: v for k, v in keep_known(site, doctype, data).items() if v is not None}}
    for field in FLOATS.get(doctype, ()):
        if doc.get(field) is not None:
            doc[field] = float(doc[field])
    if doctype == "Item":
        doc["name"] = doc.get("item_code") or data.get("name")
        doc.setdefault("item_name", doc.get("item_code"))
    elif doctype == "Customer":
        doc["name"] = _customer_name(site, doc, notes) if doc.get("customer_name") else data.get("name")
    elif doctype == "Item Price":
        _fill_item_price(site, doc)
        doc["name"] = data.get("name") or hash_name()
    elif doctype == "Pricing Rule":
        _check_pricing_rule(site, doc)
    if doctype != "Pricing Rule" and doc.get("name") in site.docs.get(doctype, {}):
        raise FrappeError("DuplicateEntryError", f"{doctype} {doc['name']} already exists")
    if doctype == "Pricing Rule":
        doc["name"] = data.get("name") or _next_rule_name(site)
    stored = site.insert(doctype, doc, user)
    stamp_rows(doctype, stored)
    if doctype == "Customer" and (stored.get("mobile_no") or stored.get("email_id")):
        _primary_contact(site, stored, user)
    return stored


def _primary_contact(site: StandInSite, customer: dict[str, Any], user: str) -> None:
    """erpnext Customer.create_primary_contact: a Contact "<customer>-<customer>" linked to the customer,
    which becomes its customer_primary_contact (the real site saves the customer again: cust-new-b)."""
    name = f"{customer['customer_name']}-{customer['name']}"
    site.insert("Contact", {"name": name, "first_name": customer["customer_name"], "is_primary_contact": 1,
                            "mobile_no": customer.get("mobile_no"), "email_id": customer.get("email_id"),
                            "links": [{"link_doctype": "Customer", "link_name": customer["name"]}]}, user)
    customer["customer_primary_contact"] = name


def _customer_name(site: StandInSite, doc: dict[str, Any], notes: list[str]) -> str:
    """erpnext Customer.get_customer_name (Selling Settings cust_master_name "Customer Name"): a
    taken name gets " - <n>", one more than the highest such suffix, and a note."""
    name = doc["customer_name"] = str(doc["customer_name"]).strip()
    taken = site.docs.get("Customer", {})
    if name not in taken:
        return name
    suffixes = [int(n.rsplit(" ", 1)[-1]) for n in taken if f"{name} - " in n and n.rsplit(" ", 1)[-1].isdigit()]
    new = f"{name} - {max(suffixes, default=0) + 1}"
    notes.append(f"Changed customer name to '{new}' as '{name}' already exists.")
    return new


def stamp_rows(doctype: str, doc: dict[str, Any]) -> None:
    """Give child rows their name, idx, parent fields, defaults and the parent's stamps."""
    for table, child in CHILD_TABLES.get(doctype, {}).items():
        rows = doc.get(table)
        if not isinstance(rows, list):
            continue
        for idx, row in enumerate(rows, 1):
            for key, value in DEFAULTS.get(child, {}).items():
                row.setdefault(key, value)
            row.update({"idx": idx, "parent": doc["name"], "parentfield": table, "parenttype": doctype,
                        "doctype": child, "docstatus": doc.get("docstatus", 0), "owner": doc.get("owner"),
                        "modified_by": doc.get("modified_by"), "creation": doc["creation"],
                        "modified": doc["modified"]})
            row.setdefault("name", hash_name())


def _fill_item_price(site: StandInSite, doc: dict[str, Any]) -> None:
    item = site.docs.get("Item", {}).get(str(doc.get("item_code")))
    if item is None:
        raise FrappeError("LinkValidationError", f"Could not find Item: {doc.get('item_code')}")
    doc.setdefault("uom", item.get("stock_uom"))
    doc.setdefault("item_name", item.get("item_name"))
    price_list = site.docs.get("Price List", {}).get(str(doc.get("price_list")), {})
    # erpnext ItemPrice.update_price_list_details: always the price list's
    doc["currency"] = price_list.get("currency", doc.get("currency"))
    doc["selling"], doc["buying"] = int(price_list.get("selling") or 0), int(price_list.get("buying") or 0)
    doc.setdefault("valid_from", today(site).isoformat())


def _check_pricing_rule(site: StandInSite, doc: dict[str, Any]) -> None:
    table, _ = APPLY_ON.get(str(doc.get("apply_on")), (None, None))
    if table and not doc.get(table):
        raise FrappeError("MandatoryError", f"{doc['apply_on']} is not added in the table")
    if not doc.get("selling") and not doc.get("buying"):
        raise FrappeError("ValidationError", "Atleast one of the Selling or Buying must be selected")
    if not doc.get("company"):
        doc["company"] = site.docs.get(GLOBAL_DEFAULTS, {}).get(GLOBAL_DEFAULTS, {}).get("default_company")
    if not doc.get("currency"):
        company = site.docs.get("Company", {}).get(str(doc.get("company")), {})
        doc["currency"] = company.get("default_currency")
    doc.setdefault("valid_from", today(site).isoformat())


def _next_rule_name(site: StandInSite) -> str:
    current = site.series.get(PRICING_RULE_SERIES, 0) + 1
    site.series[PRICING_RULE_SERIES] = current
    return f"{PRICING_RULE_SERIES}{current:04d}"


def as_json(doc: dict[str, Any]) -> str:
    """Document.as_json(): every field (nulls too), keys sorted, indent 1, child rows inline."""
    fields = SCHEMAS.get(str(doc.get("doctype")), frozenset())
    tables = CHILD_TABLES.get(str(doc.get("doctype")), {})
    full = {**{f: ([] if f in tables else None) for f in fields}, **doc}
    full = {k: [as_dict(r) for r in v] if k in tables and isinstance(v, list) else v for k, v in full.items()}
    return json.dumps(full, indent=1, sort_keys=True, default=str, separators=(",", ": "))


def as_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A child row with every field of its doctype (nulls too)."""
    return {**{f: None for f in SCHEMAS.get(str(row.get("doctype")), frozenset())}, **row}


def delete_doc(site: StandInSite, doctype: str, name: str, user: str) -> Response:
    """DELETE /api/resource/<doctype>/<name> (frappe.api.v1.delete_doc -> frappe.delete_doc)."""
    docs = site.docs.setdefault(doctype, {})
    doc = docs.get(name)
    if doc is None:
        return JSONResponse({"exc_type": "DoesNotExistError"}, status_code=404)
    if doctype == "Item":
        _check_item_links(site, name)
        # erpnext Item.on_trash deletes its prices and bins by SQL: no Deleted Document for them
        for dependent in ("Item Price", "Bin"):
            rows = site.docs.get(dependent, {})
            for key in [k for k, d in rows.items() if d.get("item_code") == name]:
                del rows[key]
    del docs[name]
    if doctype == "Pricing Rule" and name.startswith(PRICING_RULE_SERIES):
        # frappe.model.naming.revert_series_if_last
        number = name.removeprefix(PRICING_RULE_SERIES)
        if number.isdigit() and int(number) == site.series.get(PRICING_RULE_SERIES):
            site.series[PRICING_RULE_SERIES] = int(number) - 1
    later = 0
    if doctype == "Customer":
        if doc.get("customer_primary_contact"):
            # erpnext Customer.on_trash unsets the primary contact with db_set: modified moves
            doc.update({"customer_primary_contact": None, "modified": now_text(site)})
        # erpnext Customer.on_trash -> delete_contact_and_address: its own contacts go first
        contacts = site.docs.get("Contact", {})
        for key in [k for k, c in contacts.items()
                    if [(r.get("link_doctype"), r.get("link_name")) for r in c.get("links") or []] == [(doctype, name)]]:
            _deleted_document(site, "Contact", contacts.pop(key), user)
            later += 1
    if doctype != DELETED_DOCUMENT:
        _deleted_document(site, doctype, doc, user, later)
    return JSONResponse({"data": "ok"}, status_code=202)


def _deleted_document(site: StandInSite, doctype: str, doc: dict[str, Any], user: str, later: int = 0) -> None:
    """frappe.model.delete_doc.add_to_deleted_document. `later`: microseconds after now, so that
    documents deleted in one request keep their order under a pinned clock (the real site's
    deletes are milliseconds apart: del-list's Contact before its Customer)."""
    stored = site.insert(DELETED_DOCUMENT, {"name": hash_name(), "deleted_doctype": doctype, "deleted_name": doc["name"],
                                            "data": as_json(doc), "restored": 0}, user)
    if later:
        stamp = (parse_datetime(stored["creation"]) or local_now(site)) + timedelta(microseconds=later)
        stored["creation"] = stored["modified"] = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")


def _check_item_links(site: StandInSite, name: str) -> None:
    """frappe.model.delete_doc.check_if_doc_is_linked for an Item: any document (any docstatus)
    whose row names it; an Item has `disabled`, so Frappe adds the second message."""
    for doctype, table, field in ITEM_LINKS:
        for doc in site.docs.get(doctype, {}).values():
            if any(isinstance(r, dict) and r.get(field) == name for r in doc.get(table) or []):
                def link(dt: str, dn: str) -> str:
                    return f'<a href="http://{site.name}/app/{dt.lower().replace(" ", "-")}/{dn}">{dn}</a>'
                disable = "You can disable this Item instead of deleting it."
                raise FrappeError("LinkExistsError", messages=[
                    f"Cannot delete or cancel because Item {link('Item', name)} is linked with {doctype} "
                    f"{link(doctype, doc['name'])} ", disable], exception=f"frappe.exceptions.LinkExistsError: {disable}")


def set_modified(site: StandInSite, doctype: str, names: Iterable[str], stamp: str | datetime | None = None) -> str:
    """Give the documents `names` of `doctype` (and their child rows) the same `modified`, as a bulk
    SQL update on a real site would (the REST API cannot: every save stamps now()). `stamp`: the
    site-local text 'YYYY-MM-DD HH:MM:SS.ffffff' or a naive datetime (default: now). Returns it."""
    text = (stamp.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(stamp, datetime) else stamp) or now_text(site)
    docs = site.docs.get(doctype, {})
    for name in names:
        doc = docs[name]
        doc["modified"] = text
        for table in CHILD_TABLES.get(doctype, {}):
            for row in doc.get(table) or []:
                row["modified"] = text
    return text
