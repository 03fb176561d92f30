"""Which fields the stand-in's modelled doctypes have (a small slice of Frappe's DocType meta).

Doctypes listed in SCHEMAS behave like Frappe tables: unknown keys are dropped on
insert (frappe.model.base_document.get_valid_dict keeps only columns) and an
unknown field in a list query is refused (frappe.client.get_list ->
frappe.desk.reportview.validate_args -> raise_invalid_field: DataError 417
"Field not permitted in query: x"). Custom Fields stored on the site add columns
to their `dt`. Doctypes not listed here stay schemaless, as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from edge.standin.errors import FrappeError

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

# The doctypes the stand-in serves under /api/resource (others: "DocType X not found").
KNOWN_DOCTYPES = frozenset({
    "Bin", "Company", "Cost Center", "Currency", "Custom Field", "Customer", "Global Defaults", "Item",
    "Mode of Payment", "POS Closing Entry", "POS Invoice", "POS Invoice Merge Log", "POS Opening Entry",
    "POS Profile", "Price List", "Sales Invoice", "System Settings", "User", "Warehouse",
})

# frappe/model/__init__.py: default_fields, optional_fields, child_table_fields
DEFAULT_FIELDS = frozenset({"doctype", "name", "owner", "creation", "modified", "modified_by", "docstatus", "idx"})
OPTIONAL_FIELDS = frozenset({"_user_tags", "_comments", "_assign", "_liked_by", "_seen"})
CHILD_TABLE_FIELDS = frozenset({"parent", "parentfield", "parenttype"})
STANDARD_FIELDS = DEFAULT_FIELDS | OPTIONAL_FIELDS | CHILD_TABLE_FIELDS

# The Sales Invoice / POS Invoice fields the stand-in handles (erpnext sales_invoice.json, pos_invoice.json).
INVOICE_FIELDS = frozenset({
    "naming_series", "title", "customer", "customer_name", "company", "posting_date", "posting_time",
    "set_posting_time", "due_date", "is_pos", "pos_profile", "is_return", "return_against", "update_stock",
    "set_warehouse", "cost_center", "currency", "conversion_rate", "selling_price_list", "price_list_currency",
    "plc_conversion_rate", "ignore_pricing_rule", "items", "payments", "total_qty", "total", "base_total",
    "net_total", "base_net_total", "apply_discount_on", "additional_discount_percentage", "discount_amount",
    "base_discount_amount", "grand_total", "base_grand_total", "rounding_adjustment", "rounded_total",
    "base_rounded_total", "paid_amount", "base_paid_amount", "change_amount", "base_change_amount",
    "account_for_change_amount", "write_off_amount", "outstanding_amount", "status", "remarks", "po_no",
    "po_date", "amended_from", "is_consolidated", "disable_rounded_total", "update_outstanding_for_self",
    "base_rounding_adjustment", "base_write_off_amount",
})
INVOICE_ITEM_FIELDS = frozenset({
    "item_code", "item_name", "description", "qty", "uom", "stock_uom", "conversion_factor", "stock_qty",
    "price_list_rate", "discount_percentage", "rate", "amount", "net_rate", "net_amount", "base_rate",
    "base_amount", "base_net_rate", "base_net_amount", "warehouse", "cost_center", "income_account",
})
PAYMENT_FIELDS = frozenset({"mode_of_payment", "amount", "base_amount", "account", "type", "default", "reference_no"})
OPENING_FIELDS = frozenset({
    "period_start_date", "period_end_date", "status", "posting_date", "set_posting_date", "company", "pos_profile",
    "pos_closing_entry", "user", "balance_details", "amended_from",
})
OPENING_DETAIL_FIELDS = frozenset({"mode_of_payment", "opening_amount"})
MERGE_LOG_FIELDS = frozenset({
    "posting_date", "posting_time", "merge_invoices_based_on", "pos_closing_entry", "customer", "customer_group",
    "pos_invoices", "consolidated_invoice", "consolidated_credit_note", "amended_from",
})
CLOSING_FIELDS = frozenset({
    "naming_series", "period_start_date", "period_end_date", "posting_date", "posting_time", "pos_opening_entry",
    "status", "company", "pos_profile", "user", "payment_reconciliation", "pos_transactions", "grand_total",
    "net_total", "total_quantity", "remarks", "error_message", "amended_from",
})
CLOSING_DETAIL_FIELDS = frozenset({
    "mode_of_payment", "opening_amount", "expected_amount", "closing_amount", "difference",
})
CLOSING_INVOICE_FIELDS = frozenset({
    "pos_invoice", "posting_date", "customer", "grand_total", "is_return", "return_against",
})
CUSTOM_FIELD_FIELDS = frozenset({
    "dt", "module", "label", "fieldname", "fieldtype", "options", "insert_after", "unique", "reqd", "read_only",
    "hidden", "default", "description", "in_list_view", "in_standard_filter", "allow_on_submit", "no_copy",
    "print_hide", "is_system_generated", "length", "translatable",
})

SCHEMAS: dict[str, frozenset[str]] = {
    "Sales Invoice": INVOICE_FIELDS,
    "POS Invoice": INVOICE_FIELDS | {"consolidated_invoice"},
    "Sales Invoice Item": INVOICE_ITEM_FIELDS | {"sales_invoice_item", "pos_invoice", "pos_invoice_item"},
    "POS Invoice Item": INVOICE_ITEM_FIELDS | {"pos_invoice_item"},
    "Sales Invoice Payment": PAYMENT_FIELDS,
    "POS Closing Entry": CLOSING_FIELDS,
    "POS Closing Entry Detail": CLOSING_DETAIL_FIELDS,
    "POS Invoice Reference": CLOSING_INVOICE_FIELDS,
    "POS Opening Entry": OPENING_FIELDS,
    "POS Opening Entry Detail": OPENING_DETAIL_FIELDS,
    "POS Invoice Merge Log": MERGE_LOG_FIELDS,
    "Custom Field": CUSTOM_FIELD_FIELDS,
}
# parent doctype -> table fieldname -> child doctype
CHILD_TABLES: dict[str, dict[str, str]] = {
    "Sales Invoice": {"items": "Sales Invoice Item", "payments": "Sales Invoice Payment"},
    "POS Invoice": {"items": "POS Invoice Item", "payments": "Sales Invoice Payment"},
    "POS Closing Entry": {"payment_reconciliation": "POS Closing Entry Detail",
                          "pos_transactions": "POS Invoice Reference"},
    "POS Opening Entry": {"balance_details": "POS Opening Entry Detail"},
    "POS Invoice Merge Log": {"pos_invoices": "POS Invoice Reference"},
}


def custom_fields(site: StandInSite, doctype: str) -> dict[str, dict[str, Any]]:
    """The Custom Fields stored on `site` for `doctype`, by fieldname."""
    return {cf["fieldname"]: cf for cf in site.docs.get("Custom Field", {}).values() if cf.get("dt") == doctype}


def fieldnames(site: StandInSite, doctype: str) -> frozenset[str] | None:
    """Columns of `doctype` (its fields plus Custom Fields), or None for a schemaless doctype."""
    own = SCHEMAS.get(doctype)
    if own is None:
        return None
    return own | frozenset(custom_fields(site, doctype))


def keep_known(site: StandInSite, doctype: str, data: dict[str, Any]) -> dict[str, Any]:
    """Drop keys that are not columns of `doctype` (child tables too), as Frappe's insert ignores them."""
    known = fieldnames(site, doctype)
    if known is None:
        return dict(data)
    tables = CHILD_TABLES.get(doctype, {})
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in tables:
            rows = value if isinstance(value, list) else []
            out[key] = [keep_known(site, tables[key], r) for r in rows if isinstance(r, dict)]
        elif key in known or key in DEFAULT_FIELDS:
            out[key] = value
    return out


def raise_invalid_field(fieldname: str) -> NoReturn:
    """frappe.desk.reportview.raise_invalid_field."""
    raise FrappeError("DataError", f"Field not permitted in query: {fieldname}")


def allowed(site: StandInSite, doctype: str, fieldname: str) -> bool:
    """Whether `fieldname` may be queried on `doctype` (any field of a schemaless doctype)."""
    known = fieldnames(site, doctype)
    return known is None or fieldname in STANDARD_FIELDS or fieldname in known


def check_query(site: StandInSite, doctype: str, fields: list[Any], filters: list[Any]) -> None:
    """frappe.desk.reportview.validate_fields / validate_filters for a get_list call."""
    if fieldnames(site, doctype) is None:
        return
    for f in fields:
        name = str(f).split(" as ")[0].split(" AS ")[0].strip().strip("`")
        if name == "*" or "." in name:  # "*" and child-table columns are not checked here
            continue
        if "," in name or "/*" in name or "#" in name or not allowed(site, doctype, name):
            raise_invalid_field(name)
    for flt in filters:
        if len(flt) == 4:  # [doctype, fieldname, op, value]
            if not allowed(site, str(flt[0]), str(flt[1])):
                raise_invalid_field(str(flt[1]))
        elif not allowed(site, doctype, str(flt[0])):
            raise_invalid_field(str(flt[0]))
