"""The collections tills get, as ERPNext holds them: which doctype, which fields, which
child rows, and which documents belong (the rest become tombstones).

Each `keep` answers the till's row for an ERPNext row, or None when the document does
not (or no longer) belong: disabled, not for sale, another company, a customer group
the tenant does not send. A row read with None where the till had it becomes a
tombstone in the till's next delta.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Children:
    """A child table read alongside each page: `table` is the parent's field (`barcodes`),
    `fields` its columns, answered as a list under `key` in the till's row."""

    table: str
    fields: tuple[str, ...]
    key: str


@dataclass(frozen=True)
class Collection:
    """One kind of master data."""

    name: str  # the route and event name: products, prices, customers, campaigns
    doctype: str
    fields: tuple[str, ...]  # read from ERPNext (always with name and modified)
    keep: Callable[[Row, Any, str], Row | None]  # (ERPNext row, tenant config, scope) -> the till's row or None
    children: tuple[Children, ...] = ()
    # server-side filters for a scope (e.g. the price list); rows outside them are never read
    scoped: Callable[[str], list[list[Any]]] = field(default=lambda scope: [])
    extra_fields: Callable[[Any], list[str]] = field(default=lambda cfg: [])  # per tenant (custom fields)

    def read_fields(self, cfg: Any) -> list[str]:
        """The fields to ask ERPNext for, for this tenant."""
        return list(dict.fromkeys(["name", "modified", *self.fields, *self.extra_fields(cfg)]))


def _flag(row: Row, key: str, default: int = 0) -> bool:
    """A Check field; `default` where the field is null (ERPNext's own default for it)."""
    value = row.get(key)
    return bool(int(default if value is None else value))


def _product(row: Row, cfg: Any, scope: str) -> Row | None:
    # a template (has_variants) is not sold itself: its variants are
    if _flag(row, "disabled") or not _flag(row, "is_sales_item", default=1) or _flag(row, "has_variants"):
        return None
    out = {"item_code": row["name"], "item_name": row.get("item_name"), "item_group": row.get("item_group"),
           "stock_uom": row.get("stock_uom"), "variant_of": row.get("variant_of"),
           "barcodes": row.get("barcodes") or []}
    for name in cfg.masterdata.item_fields:
        out[name] = row.get(name)
    return out


def _price(row: Row, cfg: Any, scope: str) -> Row | None:
    if row.get("price_list") != scope or not _flag(row, "selling", default=1):
        return None
    return {"item_price": row["name"], "item_code": row.get("item_code"), "price_list": scope,
            "price_list_rate": row.get("price_list_rate"), "currency": row.get("currency"), "uom": row.get("uom"),
            "valid_from": row.get("valid_from"), "valid_upto": row.get("valid_upto"), "customer": row.get("customer")}


def _customer(row: Row, cfg: Any, scope: str) -> Row | None:
    chosen = cfg.masterdata.customers
    if _flag(row, "disabled"):
        return None
    if chosen.groups and row.get("customer_group") not in chosen.groups:
        return None
    if chosen.loyalty_only and not row.get("loyalty_program"):
        return None
    out = {"customer": row["name"], "customer_name": row.get("customer_name"),
           "customer_group": row.get("customer_group"), "territory": row.get("territory"),
           "mobile_no": row.get("mobile_no"), "email_id": row.get("email_id"),
           "loyalty_program": row.get("loyalty_program")}
    for name in cfg.masterdata.customer_fields:
        out[name] = row.get(name)
    return out


def _campaign(row: Row, cfg: Any, scope: str) -> Row | None:
    if not _flag(row, "selling") or _flag(row, "disable"):
        return None
    if row.get("company") not in (None, "", cfg.company):
        return None
    keys = ("title", "apply_on", "for_price_list", "valid_from", "valid_upto", "min_qty", "max_qty",
            "rate_or_discount", "discount_percentage", "discount_amount", "rate", "priority")
    return {"pricing_rule": row["name"], **{k: row.get(k) for k in keys},
            "item_codes": row.get("item_codes") or [], "item_groups": row.get("item_groups") or []}


def _profile(row: Row, cfg: Any, scope: str) -> Row | None:
    if _flag(row, "disabled"):
        return None
    keys = ("company", "currency", "warehouse", "selling_price_list", "taxes_and_charges", "cost_center",
            "write_off_account", "write_off_cost_center", "write_off_limit", "disable_rounded_total",
            "allow_discount_change", "allow_rate_change", "customer")
    till_method = {mop: method for method, mop in cfg.payment_methods.items()}
    return {"pos_profile": row["name"], **{k: row.get(k) for k in keys},
            "payment_methods": [{"method": till_method.get(p.get("mode_of_payment")),
                                 "mode_of_payment": p.get("mode_of_payment"), "default": bool(int(p.get("default") or 0))}
                                for p in row.get("payments") or []]}


PRODUCTS = Collection(
    "products", "Item",
    ("item_name", "item_group", "stock_uom", "variant_of", "disabled", "is_sales_item", "has_variants"),
    _product, children=(Children("barcodes", ("barcode", "uom"), "barcodes"),),
    extra_fields=lambda cfg: list(cfg.masterdata.item_fields),
)
PRICES = Collection(
    "prices", "Item Price",
    ("item_code", "price_list", "price_list_rate", "currency", "uom", "valid_from", "valid_upto", "customer", "selling"),
    _price, scoped=lambda scope: [["price_list", "=", scope]],
)
CUSTOMERS = Collection(
    "customers", "Customer",
    ("customer_name", "customer_group", "territory", "mobile_no", "email_id", "loyalty_program", "disabled"),
    _customer, extra_fields=lambda cfg: list(cfg.masterdata.customer_fields),
)
CAMPAIGNS = Collection(
    "campaigns", "Pricing Rule",
    ("title", "selling", "disable", "company", "apply_on", "for_price_list", "valid_from", "valid_upto", "min_qty",
     "max_qty", "rate_or_discount", "discount_percentage", "discount_amount", "rate", "priority"),
    _campaign, children=(Children("items", ("item_code",), "item_codes"),
                         Children("item_groups", ("item_group",), "item_groups")),
)

# A branch's POS Profile, as one row: its scope is the profile's name
SETTINGS = Collection(
    "settings", "POS Profile",
    ("disabled", "company", "currency", "warehouse", "selling_price_list", "taxes_and_charges", "cost_center",
     "write_off_account", "write_off_cost_center", "write_off_limit", "disable_rounded_total", "allow_discount_change",
     "allow_rate_change", "customer"),
    _profile, children=(Children("payments", ("mode_of_payment", "default"), "payments"),),
    scoped=lambda scope: [["name", "=", scope]],
)

# what tills page through and get deltas of (settings come with /v1/init)
COLLECTIONS: dict[str, Collection] = {c.name: c for c in (PRODUCTS, PRICES, CUSTOMERS, CAMPAIGNS)}
