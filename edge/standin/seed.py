"""Reference data a POS site needs: the site settings (System Settings, Global
Defaults, the Currency), Company, Customers, Items with stock in the warehouse,
Warehouse, Cost Center, Price List, Modes of Payment (with their per-company
accounts), a POS Profile, optionally an open POS Opening Entry for it and Custom
Fields (pos-edge's unique transaction-id field on the invoice doctype). Seeding
is idempotent: existing documents are left alone (a Mode of Payment only gains
the company's account row if it lacks one, an item is only stocked where it has
no stock level yet, a shift is only opened where none is open).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edge.standin.clock import local_now
from edge.standin.custom_fields import ensure_custom_field
from edge.standin.masters import insert_master
from edge.standin.opening import insert_opening_entry, open_entries
from edge.standin.rounding import BANKERS_LEGACY
from edge.standin.settings import GLOBAL_DEFAULTS, SYSTEM_SETTINGS
from edge.standin.stock import has_level, set_stock

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

DEFAULT_CUSTOMERS = ("Walk-in Customer", "Ama Mensah")
DEFAULT_ITEMS = (("COFFEE", "Coffee", 2.50), ("BREAD", "Bread", 1.20), ("MILK", "Milk 1L", 0.99))
# mode of payment -> account name before " - <suffix>"
DEFAULT_MODES = {"Cash": "Cash", "Mobile Money": "Mobile Money", "Credit Card": "Card Clearing"}
REFERENCE_FIELD = "custom_pos_edge_txn_id"
AMPLE_STOCK = 1_000_000  # units per item: sales on the old test sites never run out
REFERENCE_LABEL = "POS transaction id (pos-edge)"


def _row(parent: str, parenttype: str, parentfield: str, doctype: str, idx: int, **fields: Any) -> dict[str, Any]:
    return {"name": secrets.token_hex(5), "owner": "Administrator", "modified_by": "Administrator", "docstatus": 0,
            "idx": idx, **fields, "parent": parent, "parentfield": parentfield, "parenttype": parenttype,
            "doctype": doctype}


def _add(site: StandInSite, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
    existing = site.docs.get(doctype, {}).get(doc["name"])
    if existing is not None:
        return existing
    stored = site.insert(doctype, doc)
    for rows in (v for v in stored.values() if isinstance(v, list)):
        for row in rows:
            row.setdefault("creation", stored["creation"])
            row.setdefault("modified", stored["modified"])
    return stored


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
    stock: float | Mapping[str, float] = AMPLE_STOCK,
    open_shift: bool = False,
    time_zone: str | None = None,
    rounding_method: str = BANKERS_LEGACY,
    smallest_currency_fraction: float = 0.01,
    territory: str = "All Territories",
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
    `stock`: units of each item in the warehouse (a number for all, or per item
    code; ample by default). `open_shift`: leave a submitted, Open POS Opening
    Entry for the profile, which POS Invoices need. The site settings (seeded
    once): `time_zone` (None: the machine's), `rounding_method`, and the
    currency's `smallest_currency_fraction` (0: totals round to whole units).
    """
    modes = dict(modes_of_payment or {mode: f"{base} - {suffix}" for mode, base in DEFAULT_MODES.items()})
    customers = tuple(customers)
    warehouse, cost_center = f"Stores - {suffix}", f"Main - {suffix}"
    seed_settings(site, company, currency, time_zone=time_zone, rounding_method=rounding_method,
                  smallest_currency_fraction=smallest_currency_fraction)
    _add(site, "Company", {"name": company, "company_name": company, "abbr": suffix, "default_currency": currency,
                           "default_cash_account": modes.get("Cash"), "cost_center": cost_center,
                           "write_off_account": f"Write Off - {suffix}", "round_off_account": f"Round Off - {suffix}",
                           "round_off_cost_center": cost_center})
    for name in customers:
        _add(site, "Customer", {"name": name, "customer_name": name, "customer_type": "Individual",
                                "customer_group": "Individual", "territory": territory})
    for code, item_name, rate in items:
        _add(site, "Item", {"name": code, "item_code": code, "item_name": item_name, "standard_rate": rate,
                            "stock_uom": "Nos", "item_group": "Products", "is_stock_item": 1, "disabled": 0})
        if not has_level(site, code, warehouse):
            set_stock(site, code, warehouse, stock.get(code, 0) if isinstance(stock, Mapping) else stock)
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
        "write_off_account": f"Write Off - {suffix}", "write_off_cost_center": cost_center, "write_off_limit": 1.0,
        "validate_stock_on_save": 0, "ignore_pricing_rule": 0, "allow_rate_change": 0, "allow_partial_payment": 0,
        "disable_rounded_total": 0, "disabled": 0, "applicable_for_users": [],
        "payments": [_row(pos_profile, "POS Profile", "payments", "POS Payment Method", i, mode_of_payment=mode,
                          default=int(i == 1), allow_in_returns=0) for i, mode in enumerate(modes, 1)],
    })
    if open_shift and not open_entries(site, pos_profile):
        user = next(iter(site.users.values()), ("", "Administrator"))[1]
        insert_opening_entry(site, {
            "pos_profile": pos_profile, "company": company, "user": user, "docstatus": 1,
            "period_start_date": local_now(site).strftime("%Y-%m-%d %H:%M:%S"),
            "balance_details": [{"mode_of_payment": mode, "opening_amount": 0} for mode in modes]}, user)
    if invoice_doctype:
        ensure_custom_field(site, invoice_doctype, reference_field, label=REFERENCE_LABEL, unique=True)
    for spec in custom_fields:
        ensure_custom_field(site, **spec)


def seed_settings(site: StandInSite, company: str, currency: str, *, time_zone: str | None = None,
                  rounding_method: str = BANKERS_LEGACY, smallest_currency_fraction: float = 0.01) -> None:
    """The single documents System Settings and Global Defaults, and the Currency (each only if absent),
    shaped like the recorded site's (site.json)."""
    _add(site, SYSTEM_SETTINGS, {"name": SYSTEM_SETTINGS, "time_zone": time_zone, "currency": currency,
                                 "date_format": "dd-mm-yyyy", "time_format": "HH:mm:ss", "number_format": "#,###.##",
                                 "float_precision": "3", "currency_precision": "", "rounding_method": rounding_method})
    _add(site, GLOBAL_DEFAULTS, {"name": GLOBAL_DEFAULTS, "default_company": company, "default_currency": currency,
                                 "disable_rounded_total": 0, "disable_in_words": 0})
    _add(site, "Currency", {"name": currency, "enabled": 1, "fraction": "Cent", "fraction_units": 100,
                            "smallest_currency_fraction_value": smallest_currency_fraction, "number_format": "#,###.##"})


def seed_master_data(site: StandInSite, price_list: str = "Standard Selling",
                     customers: Sequence[tuple[str, str]] = (("Kofi Boateng", "+233200000001"),
                                                             ("Efua Owusu", "+233200000002")),
                     discount_item: str | None = None) -> None:
    """Master data for a seeded site (seed_pos first): an Item Price on `price_list` for every item at
    its standard_rate, the `customers` (name, mobile_no; each gets a primary Contact, as ERPNext
    makes one) and one active selling Pricing Rule, 10% off `discount_item` (default: the first
    item) from 3 units on the price list. Made as the REST API would make them (masters.py);
    idempotent."""
    items = list(site.docs.get("Item", {}).values())
    priced = {(p.get("item_code"), p.get("price_list")) for p in site.docs.get("Item Price", {}).values()}
    for item in items:
        if (item["name"], price_list) not in priced and item.get("standard_rate") is not None:
            insert_master(site, "Item Price", {"item_code": item["name"], "price_list": price_list,
                                               "price_list_rate": item["standard_rate"]}, "Administrator")
    for name, mobile in customers:
        if name not in site.docs.get("Customer", {}):
            insert_master(site, "Customer", {"customer_name": name, "customer_type": "Individual",
                                             "customer_group": "Individual", "territory": "All Territories",
                                             "mobile_no": mobile}, "Administrator")
    target = discount_item or (items[0]["name"] if items else None)
    rules = site.docs.get("Pricing Rule", {}).values()
    if target and not any(r.get("title") == f"10% off {target}" for r in rules):
        insert_master(site, "Pricing Rule", {
            "title": f"10% off {target}", "selling": 1, "apply_on": "Item Code", "items": [{"item_code": target}],
            "for_price_list": price_list, "min_qty": 3, "rate_or_discount": "Discount Percentage",
            "discount_percentage": 10, "priority": "1"}, "Administrator")
