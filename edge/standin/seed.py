"""Reference data a POS site needs: Company, Customers, Items, Warehouse, Cost Center,
Price List, Modes of Payment (with their per-company accounts), a POS Profile and
optional Custom Fields (pos-edge's unique transaction-id field on the invoice
doctype). Seeding is idempotent: existing documents are left alone (a Mode of
Payment only gains the company's account row if it lacks one).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edge.standin.custom_fields import ensure_custom_field

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

DEFAULT_CUSTOMERS = ("Walk-in Customer", "Ama Mensah")
DEFAULT_ITEMS = (("COFFEE", "Coffee", 2.50), ("BREAD", "Bread", 1.20), ("MILK", "Milk 1L", 0.99))
# mode of payment -> account name before " - <suffix>"
DEFAULT_MODES = {"Cash": "Cash", "Mobile Money": "Mobile Money", "Credit Card": "Card Clearing"}
REFERENCE_FIELD = "custom_pos_edge_txn_id"
REFERENCE_LABEL = "POS transaction id (pos-edge)"


def _row(parent: str, parenttype: str, parentfield: str, doctype: str, idx: int, **fields: Any) -> dict[str, Any]:
    return {"name": secrets.token_hex(5), "idx": idx, **fields, "parent": parent, "parentfield": parentfield,
            "parenttype": parenttype, "doctype": doctype}


def _add(site: StandInSite, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
    existing = site.docs.get(doctype, {}).get(doc["name"])
    return existing if existing is not None else site.insert(doctype, doc)


def seed_pos(
    site: StandInSite,
    company: str,
    *,
    suffix: str,
    pos_profile: str,
    invoice_doctype: str | None = None,
    reference_field: str = REFERENCE_FIELD,
    currency: str = "GHS",
    customers: Iterable[str] = DEFAULT_CUSTOMERS,
    items: Iterable[tuple[str, str, float]] = DEFAULT_ITEMS,
    price_list: str = "Standard Selling",
    modes_of_payment: Mapping[str, str] | None = None,
    custom_fields: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Seed `site` (a StandInSite) for POS sales of `company`.

    Names follow ERPNext's "<name> - <company abbr>" convention with `suffix` as the
    abbreviation: warehouse "Stores - <suffix>", cost center "Main - <suffix>".
    `modes_of_payment` maps a mode to its default account for this company
    (default: Cash -> "Cash - <suffix>", Mobile Money -> "Mobile Money - <suffix>",
    Credit Card -> "Card Clearing - <suffix>"); a mode named "Cash" has type Cash,
    others Bank. With `invoice_doctype`, that doctype gets the unique Data Custom
    Field `reference_field`. `custom_fields` items are keyword arguments of
    custom_fields.ensure_custom_field (dt, fieldname, label, unique...).
    """
    modes = dict(modes_of_payment or {mode: f"{base} - {suffix}" for mode, base in DEFAULT_MODES.items()})
    customers = tuple(customers)
    warehouse, cost_center = f"Stores - {suffix}", f"Main - {suffix}"
    _add(site, "Company", {"name": company, "company_name": company, "abbr": suffix, "default_currency": currency,
                           "default_cash_account": modes.get("Cash"), "cost_center": cost_center})
    for name in customers:
        _add(site, "Customer", {"name": name, "customer_name": name, "customer_type": "Individual",
                                "customer_group": "Individual", "territory": "All Territories"})
    for code, item_name, rate in items:
        _add(site, "Item", {"name": code, "item_code": code, "item_name": item_name, "standard_rate": rate,
                            "stock_uom": "Nos", "item_group": "Products", "is_stock_item": 1, "disabled": 0})
    _add(site, "Warehouse", {"name": warehouse, "warehouse_name": "Stores", "company": company, "is_group": 0})
    _add(site, "Cost Center", {"name": cost_center, "cost_center_name": "Main", "company": company, "is_group": 0})
    _add(site, "Price List", {"name": price_list, "price_list_name": price_list, "currency": currency,
                              "selling": 1, "buying": 0, "enabled": 1})
    for mode, account in modes.items():
        mop = _add(site, "Mode of Payment", {"name": mode, "mode_of_payment": mode, "enabled": 1,
                                             "type": "Cash" if mode == "Cash" else "Bank", "accounts": []})
        rows = mop.setdefault("accounts", [])
        if not any(row.get("company") == company for row in rows):
            rows.append(_row(mode, "Mode of Payment", "accounts", "Mode of Payment Account", len(rows) + 1,
                             company=company, default_account=account))
    _add(site, "POS Profile", {
        "name": pos_profile, "company": company, "customer": customers[0] if customers else None, "warehouse": warehouse,
        "cost_center": cost_center, "selling_price_list": price_list, "currency": currency, "update_stock": 1,
        "write_off_account": None, "disabled": 0,
        "payments": [_row(pos_profile, "POS Profile", "payments", "POS Payment Method", i, mode_of_payment=mode,
                          default=int(i == 1)) for i, mode in enumerate(modes, 1)],
    })
    if invoice_doctype:
        ensure_custom_field(site, invoice_doctype, reference_field, label=REFERENCE_LABEL, unique=True)
    for spec in custom_fields:
        ensure_custom_field(site, **spec)
