"""Returns (credit notes) against a Sales Invoice or POS Invoice, as ERPNext 15 checks them.

erpnext/controllers/sales_and_purchase_return.py validate_returned_items, as
recorded (returns.json) on Sales Invoices:

- return_against must be a submitted, non-return invoice of the same doctype
  (else LinkValidationError "Could not find Return Against: X").
- A row linked to the original's row (items[].sales_invoice_item, or
  pos_invoice_item on a POS Invoice) is checked: a row id the original does
  not have is 417 "Row # 1: Returned Item X does not exist in Sales Invoice Y"
  (ret-f2, ret-f3); more than the row's quantity less what earlier LINKED
  returns took back is 417 StockOverReturnError "Row # 1: Cannot return more
  than 2.0 for Item X" (ret-d, ret-g4: returns without the link do not count);
  a rate above the original row's (Sales Invoice only) is 417 "Row # 1: Rate
  cannot be greater than the rate used in Sales Invoice Y" (ret-g1).
- A row WITHOUT the link is not checked at all, whatever its item, quantity
  or rate, but the message "Row # 1: Returned Item X does not exist in Sales
  Invoice Y" is printed without raising: it rides on the 200 answer's
  _server_messages (ret-b, ret-c, ret-f1, ret-g3).
- A positive quantity: Sales Invoice "Row #1: Quantity must be negative for
  return" (kept from the stand-in's earlier model, not recorded); POS Invoice
  validate_return_items_qty "... You cannot add postive quantities ..."
  (pos_invoice.py, not recorded).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from edge.standin.documents import cint, dec, raise_invalid_links
from edge.standin.errors import FrappeError

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

# the row field that links a return's row to the original's row
LINK_FIELD = {"Sales Invoice": "sales_invoice_item", "POS Invoice": "pos_invoice_item"}


def check_return(site: StandInSite, doctype: str, doc: dict[str, Any], notes: list[str]) -> None:
    """Validate a return; messages printed without raising are appended to `notes`."""
    against = doc["return_against"]
    original = site.docs.get(doctype, {}).get(against)
    if original is None or cint(original.get("docstatus")) != 1 or cint(original.get("is_return")):
        raise_invalid_links([f"Return Against: {against}"])
    assert original is not None  # raise_invalid_links raised: it was given a link
    link = LINK_FIELD[doctype]
    rows = {r.get("name"): r for r in original.get("items") or []}
    taken = _already_returned(site, doctype, against, link)
    for idx, row in enumerate(doc["items"], 1):
        if dec(row["qty"]) > 0:
            if doctype == "POS Invoice":
                raise FrappeError("ValidationError", title="Invalid Item", message=(
                    f"Row #{idx}: You cannot add postive quantities in a return invoice. "
                    f"Please remove item <strong>{row['item_code']}</strong> to complete the return."))
            raise FrappeError("ValidationError", f"Row #{idx}: Quantity must be negative for return")
        missing = f"Row # {idx}: Returned Item {row['item_code']} does not exist in {doctype} {against}"
        ref = rows.get(row.get(link)) if row.get(link) else None
        if not row.get(link):
            notes.append(missing)
            continue
        if ref is None or ref.get("item_code") != row["item_code"]:
            raise FrappeError("ValidationError", missing)
        left = dec(ref.get("qty")) - taken.get(row[link], Decimal(0))
        if abs(dec(row["qty"])) > left:
            raise FrappeError("StockOverReturnError",
                              f"Row # {idx}: Cannot return more than {float(left)} for Item {row['item_code']}")
        if doctype == "Sales Invoice" and row.get("rate") not in (None, "") and dec(row["rate"]) > dec(ref.get("rate")):
            raise FrappeError("ValidationError",
                              f"Row # {idx}: Rate cannot be greater than the rate used in {doctype} {against}")


def _already_returned(site: StandInSite, doctype: str, against: str, link: str) -> dict[str, Decimal]:
    """get_already_returned_items: units taken back per original row by submitted, linked returns."""
    taken: dict[str, Decimal] = {}
    for ret in site.docs.get(doctype, {}).values():
        if cint(ret.get("is_return")) and ret.get("return_against") == against and cint(ret.get("docstatus")) == 1:
            for row in ret.get("items") or []:
                if row.get(link):
                    taken[row[link]] = taken.get(row[link], Decimal(0)) + abs(dec(row.get("qty")))
    return taken
