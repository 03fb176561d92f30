"""Stock: how many units of an item a warehouse holds, and the two ways ERPNext refuses to sell what is not there.

Levels live in Bin documents ({item_code, warehouse, actual_qty}), as in
ERPNext, readable with GET /api/resource/Bin. seed.seed_pos stocks the
items it creates. A submitted Sales Invoice with update_stock moves stock
(a return, with negative quantities, brings it back); cancelling moves it
back; a POS Invoice moves nothing until its closing entry consolidates it
into a Sales Invoice (which has update_stock).

- Sales Invoice, update_stock 1, more than the warehouse holds: 417
  NegativeStockError from the stock ledger on submit, title "Insufficient
  Stock", message "<strong>1.0</strong> units of <a ...>Item SALT-1KG: Salt 1kg
  (never stocked)</a> needed in <a ...>Warehouse Stores - S1</a> on <posting
  datetime> for <a ...>Sales Invoice Walk-in Customer</a> to complete this
  transaction." (recorded stk-a, stk-c: the number is the shortfall, 1061.0 for
  6000 wanted of 4939; the link names the invoice the insert would have made,
  whose name is not used up: stk-b got it).
- POS Invoice, submitted and not a return: validate_stock_availablility
  compares with the Bin less what unconsolidated POS Invoices reserve: nothing
  left is 417 "Row #1: Item <strong>X</strong> has no stock in warehouse
  <strong>W</strong>." title "Item Out of Stock" (recorded stk-d). Some but too
  little: "Row #1: Item <strong>X</strong> in warehouse <strong>W</strong>:
  Available <strong>2.0</strong>, Needed <strong>3.0</strong>." title
  "Insufficient Stock" (from pos_invoice.py, not recorded).

Items that are not stock items (is_stock_item 0) and rows without a
warehouse are not checked (an assumption for the latter). Rows of one item
are drawn in turn, so two rows of 3 from a stock of 5 fail on the second.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from edge.standin.documents import cint, dec
from edge.standin.errors import FrappeError
from edge.standin.reading import parse_datetime

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

BIN = "Bin"


def _bin_name(item_code: str, warehouse: str) -> str:
    return hashlib.sha1(f"{item_code}\0{warehouse}".encode()).hexdigest()[:10]


def actual_qty(site: StandInSite, item_code: str, warehouse: str) -> Decimal:
    """The units of `item_code` in `warehouse` (0 without a Bin)."""
    row = site.docs.get(BIN, {}).get(_bin_name(item_code, warehouse))
    return dec(row.get("actual_qty")) if row else Decimal(0)


def has_level(site: StandInSite, item_code: str, warehouse: str) -> bool:
    """Whether the warehouse has a Bin for the item (stock was ever recorded there)."""
    return _bin_name(item_code, warehouse) in site.docs.get(BIN, {})


def set_stock(site: StandInSite, item_code: str, warehouse: str, qty: Decimal | float) -> None:
    """Make the warehouse hold `qty` units (for seeding)."""
    move(site, item_code, warehouse, dec(qty) - actual_qty(site, item_code, warehouse))


def move(site: StandInSite, item_code: str, warehouse: str, delta: Decimal) -> None:
    """Add `delta` units (negative: take them out)."""
    bins = site.docs.setdefault(BIN, {})
    name = _bin_name(item_code, warehouse)
    row = bins.setdefault(name, {"name": name, "doctype": BIN, "docstatus": 0, "item_code": item_code,
                                 "warehouse": warehouse, "actual_qty": 0.0, "stock_uom": "Nos"})
    row["actual_qty"] = float(dec(row["actual_qty"]) + delta)


def _is_stock_item(site: StandInSite, item_code: str) -> bool:
    return bool(cint((site.docs.get("Item", {}).get(item_code) or {}).get("is_stock_item")))


def pos_reserved(site: StandInSite, item_code: str, warehouse: str) -> Decimal:
    """get_pos_reserved_qty: units in submitted POS Invoices not yet consolidated."""
    total = Decimal(0)
    for inv in site.docs.get("POS Invoice", {}).values():
        if cint(inv.get("docstatus")) != 1 or inv.get("consolidated_invoice"):
            continue
        total += sum((dec(r.get("stock_qty")) for r in inv.get("items") or []
                      if r.get("item_code") == item_code and r.get("warehouse") == warehouse), Decimal(0))
    return total


def check_pos_availability(site: StandInSite, doc: dict[str, Any]) -> None:
    """pos_invoice.py validate_stock_availablility, for a submitted POS Invoice that is not a return."""
    if cint(doc.get("is_return")) or cint(doc.get("docstatus")) != 1:
        return
    for idx, row in enumerate(doc["items"], 1):
        code, warehouse = row["item_code"], row.get("warehouse")
        if not warehouse or not _is_stock_item(site, code):
            continue
        available = actual_qty(site, code, warehouse) - pos_reserved(site, code, warehouse)
        needed = dec(row.get("stock_qty"))
        if available <= 0:
            raise FrappeError("ValidationError", title="Item Out of Stock", message=(
                f"Row #{idx}: Item <strong>{code}</strong> has no stock in warehouse <strong>{warehouse}</strong>."))
        if available < needed:
            raise FrappeError("ValidationError", title="Insufficient Stock", message=(
                f"Row #{idx}: Item <strong>{code}</strong> in warehouse <strong>{warehouse}</strong>: "
                f"Available <strong>{float(available)}</strong>, Needed <strong>{float(needed)}</strong>."))


def check_negative_stock(site: StandInSite, doctype: str, doc: dict[str, Any], name: str) -> None:
    """The stock ledger's NegativeStockError for a Sales Invoice about to move stock (see the module docstring)."""
    drawn: dict[tuple[str, str], Decimal] = {}
    for row in _moving_rows(site, doc):
        key = (row["item_code"], row["warehouse"])
        drawn[key] = drawn.get(key, Decimal(0)) + dec(row.get("stock_qty"))
        left = actual_qty(site, *key) - drawn[key]
        if left < 0:
            code, warehouse = key
            item_label = f"Item {code}: {site.docs['Item'][code].get('item_name') or code}"
            voucher_label = f"{doctype} {doc.get('title') or doc.get('customer')}"
            when = parse_datetime(f"{doc['posting_date']} {doc['posting_time']}")
            raise FrappeError("NegativeStockError", title="Insufficient Stock", message=(
                f"<strong>{float(-left)}</strong> units of {_link('Item', code, item_label)}"
                f" needed in {_link('Warehouse', quote(warehouse), f'Warehouse {warehouse}')} on {when}"
                f" for {_link(doctype, name, voucher_label)} to complete this transaction."))


def _link(doctype: str, name: str, label: str) -> str:
    return f'<a href="/app/Form/{doctype}/{name}" style="font-weight: bold;">{label}</a>'


def _moving_rows(site: StandInSite, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of a submitted update_stock Sales Invoice that move stock, selling first."""
    if not cint(doc.get("update_stock")):
        return []
    rows = [r for r in doc.get("items") or [] if r.get("warehouse") and _is_stock_item(site, r["item_code"])]
    return [r for r in rows if dec(r.get("stock_qty")) > 0]


def post_stock(site: StandInSite, doc: dict[str, Any], sign: int = -1) -> None:
    """The stock ledger entries of a Sales Invoice with update_stock (sign -1 on submit, +1 on cancel)."""
    if not cint(doc.get("update_stock")):
        return
    for row in doc.get("items") or []:
        if row.get("warehouse") and _is_stock_item(site, row["item_code"]):
            move(site, row["item_code"], row["warehouse"], sign * dec(row.get("stock_qty")))
