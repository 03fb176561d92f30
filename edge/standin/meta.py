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
    "Bin", "Company", "Cost Center", "Currency", "Custom Field", "Customer", "Deleted Document", "Global Defaults",
    "Item", "Item Barcode", "Item Price", "Mode of Payment", "POS Closing Entry", "POS Invoice", "POS Invoice Merge Log",
    "POS Opening Entry", "POS Payment Method", "POS Profile", "Price List", "Pricing Rule", "Pricing Rule Item Code",
    "Pricing Rule Item Group", "Sales Invoice",
    "System Settings", "User", "Warehouse", "Webhook",
})
# Child doctypes listed directly: only with `parent` naming their parent doctype
# (frappe.client.get_list -> check_parent_permission; recorded bc-child, bc-child-no-parent).
CHILD_DOCTYPES = {"Item Barcode": "Item", "Pricing Rule Item Code": "Pricing Rule",
                  "Pricing Rule Item Group": "Pricing Rule", "POS Payment Method": "POS Profile"}

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

# Master data (erpnext item.json, item_barcode.json, item_price.json, customer.json, pricing_rule.json,
# pricing_rule_item_code.json; frappe deleted_document.json): every field, in the JSON's order.
ITEM_FIELDS = frozenset("""
naming_series item_code variant_of item_name item_group stock_uom disabled allow_alternative_item is_stock_item
include_item_in_manufacturing opening_stock valuation_rate standard_rate is_fixed_asset asset_category
asset_naming_series image brand description barcodes shelf_life_in_days end_of_life default_material_request_type
valuation_method warranty_period weight_per_unit weight_uom reorder_levels uoms has_batch_no create_new_batch
batch_number_series has_expiry_date retain_sample sample_quantity has_serial_no serial_no_series has_variants
variant_based_on attributes item_defaults is_purchase_item purchase_uom min_order_qty safety_stock lead_time_days
last_purchase_rate is_customer_provided_item customer delivered_by_supplier supplier_items country_of_origin
customs_tariff_number sales_uom is_sales_item max_discount enable_deferred_revenue no_of_months enable_deferred_expense
no_of_months_exp customer_items taxes inspection_required_before_purchase inspection_required_before_delivery
quality_inspection_template default_bom is_sub_contracted_item customer_code total_projected_qty
over_delivery_receipt_allowance over_billing_allowance auto_create_assets default_item_manufacturer
default_manufacturer_part_no grant_commission is_grouped_asset allow_negative_stock
""".split())
ITEM_PRICE_FIELDS = frozenset("""
item_code uom packing_unit item_name brand item_description price_list customer supplier buying selling currency
price_list_rate valid_from lead_time_days valid_upto note reference batch_no
""".split())
CUSTOMER_FIELDS = frozenset("""
naming_series salutation customer_name gender customer_type default_bank_account lead_name image account_manager
customer_group territory tax_id tax_category disabled is_internal_customer represents_company companies
default_currency default_price_list language website customer_primary_contact mobile_no email_id
customer_primary_address primary_address accounts payment_terms customer_details market_segment industry is_frozen
loyalty_program loyalty_program_tier default_sales_partner default_commission_rate sales_team customer_pos_id
credit_limits so_required dn_required tax_withholding_category opportunity_name portal_users prospect_name
first_name last_name
""".split())
PRICING_RULE_FIELDS = frozenset("""
title disable apply_on price_or_product_discount warehouse items item_groups brands mixed_conditions is_cumulative
coupon_code_based apply_rule_on_other other_item_code other_item_group other_brand selling buying applicable_for
customer customer_group territory sales_partner campaign supplier supplier_group min_qty max_qty min_amt max_amt
valid_from valid_upto company currency margin_type margin_rate_or_amount rate_or_discount apply_discount_on rate
discount_amount discount_percentage for_price_list same_item free_item free_qty free_item_uom free_item_rate
threshold_percentage priority apply_multiple_pricing_rules apply_discount_on_rate validate_applied_rule
rule_description promotional_scheme_id promotional_scheme condition is_recursive naming_series round_free_qty
recurse_for apply_recursion_over has_priority dont_enforce_free_item_qty
""".split())
DELETED_DOCUMENT_FIELDS = frozenset({"deleted_name", "deleted_doctype", "restored", "new_name", "data"})

SCHEMAS: dict[str, frozenset[str]] = {
    "Item": ITEM_FIELDS,
    "Item Barcode": frozenset({"barcode", "barcode_type", "uom"}),
    "Item Price": ITEM_PRICE_FIELDS,
    "Customer": CUSTOMER_FIELDS,
    "Pricing Rule": PRICING_RULE_FIELDS,
    "Pricing Rule Item Code": frozenset({"item_code", "uom"}),
    "Pricing Rule Item Group": frozenset({"item_group", "uom"}),
    "POS Payment Method": frozenset({"mode_of_payment", "default", "allow_in_returns"}),
    "Deleted Document": DELETED_DOCUMENT_FIELDS,
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
    "Item": {"barcodes": "Item Barcode"},
    "Pricing Rule": {"items": "Pricing Rule Item Code", "item_groups": "Pricing Rule Item Group"},
    "POS Profile": {"payments": "POS Payment Method"},  # recorded: payments.mode_of_payment joins
    "Webhook": {"webhook_headers": "Webhook Header", "webhook_data": "Webhook Data"},
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
