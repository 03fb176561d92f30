"""POS payloads -> ERPNext Sales Invoice / POS Invoice documents (pure functions).

The document is created *and submitted* in one call (`docstatus: 1`). ERPNext
fills a payment row's `account` only on a plain save, so submit-on-insert needs
it given (417 "Account is required" otherwise): posting.py resolves each Mode
of Payment's default account for the company and passes it in. The other way,
insert a draft then submit, costs a second round trip per sale and leaves a
draft behind whenever the gateway dies between the two calls.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from edge.erpnext.returns import LINK_FIELDS, BoundLine
from edge.sales import InvoiceView, Return, Sale


def invoice(payload: Sale, cfg: Any, reference: str, accounts: dict[str, str], customer: str,
            bound: list[BoundLine] | None = None) -> dict[str, Any]:
    """The invoice document for a sale or a return (quantities and amounts negative).
    A return's `bound` lines (returns.bind) replace its items, each linked to the row of
    the sale it returns."""
    sign = Decimal(-1) if isinstance(payload, Return) else Decimal(1)
    branch = cfg.branches[payload.branch_id]
    rows = _rows(payload, cfg, branch) if bound is None else [
        {"item_code": line.item_code, "qty": -line.qty, "rate": line.rate, "warehouse": branch.warehouse,
         LINK_FIELDS[cfg.invoice_doctype]: line.row,
         **({"cost_center": branch.cost_center} if branch.cost_center else {})}
        for line in bound
    ]
    doc: dict[str, Any] = {
        "customer": customer,
        "company": cfg.company,
        "is_pos": 1,
        "pos_profile": branch.pos_profile,
        "update_stock": 1 if cfg.update_stock else 0,
        "ignore_pricing_rule": 1 if cfg.ignore_pricing_rule else 0,
        "docstatus": 1,
        cfg.reference_field: reference,
        "remarks": f"POS {'return' if sign < 0 else 'sale'} from till {payload.till_id} via pos-edge",
        "items": rows,
        "payments": [
            {
                "mode_of_payment": cfg.payment_methods[p.method],
                "amount": sign * p.amount,
                "account": accounts[cfg.payment_methods[p.method]],
                **({"reference_no": p.reference} if p.reference else {}),
            }
            for p in payload.payments
        ],
    }
    if cfg.invoice_doctype == "POS Invoice":
        # Unlike a Sales Invoice, a POS Invoice does not total its payments itself: without
        # paid_amount ERPNext answers 500 (a TypeError in validate_full_payment).
        doc["paid_amount"] = sign * payload.paid()
    if payload.posting_date is not None:
        # Without set_posting_time ERPNext stamps "now": an offline sale would get the upload's date.
        doc["set_posting_time"] = 1
        doc["posting_date"] = payload.posting_date.isoformat()
        if payload.posting_time is not None:
            doc["posting_time"] = payload.posting_time.isoformat()
    if branch.cost_center:
        doc["cost_center"] = branch.cost_center
    if branch.price_list:
        doc["selling_price_list"] = branch.price_list
    if payload.discount_amount is not None:
        doc["discount_amount"] = sign * payload.discount_amount
    if payload.additional_discount_percentage is not None:
        doc["additional_discount_percentage"] = payload.additional_discount_percentage
    if isinstance(payload, Return):
        doc["is_return"] = 1
        doc["return_against"] = payload.return_against
    return doc


def _rows(payload: Sale, cfg: Any, branch: Any) -> list[dict[str, Any]]:
    sign = Decimal(-1) if isinstance(payload, Return) else Decimal(1)
    return [
        {
            "item_code": cfg.item_codes.get(item.item_code, item.item_code),
            "qty": sign * item.qty,
            "rate": item.rate,
            "warehouse": branch.warehouse,
            **({"cost_center": branch.cost_center} if branch.cost_center else {}),
            **({"item_name": item.item_name} if item.item_name else {}),
        }
        for item in payload.items
    ]


def till_view(doc: dict[str, Any], warnings: list[str] | None = None) -> InvoiceView:
    """What the till gets back: ERPNext's own figures from the created document."""
    return InvoiceView.model_validate({
        "status": booked_status(doc),
        "messages": [_plain(m) for m in doc.get("_server_messages") or []],
        "warnings": warnings or [],
        "invoice_id": doc["name"],
        "docstatus": doc.get("docstatus"),
        "is_return": bool(doc.get("is_return")),
        "return_against": doc.get("return_against"),
        "posting_date": doc.get("posting_date"),
        "posting_time": doc.get("posting_time"),
        "total": doc.get("total"),
        "net_total": doc.get("net_total"),
        "grand_total": doc.get("grand_total"),
        "rounded_total": doc.get("rounded_total"),
        "paid_amount": doc.get("paid_amount"),
        "change_amount": doc.get("change_amount"),
        "outstanding_amount": doc.get("outstanding_amount"),
        "items": [
            {"item_code": i.get("item_code"), "qty": i.get("qty"), "rate": i.get("rate"), "amount": i.get("amount")}
            for i in doc.get("items", [])
        ],
        "payments": [
            {"mode_of_payment": p.get("mode_of_payment"), "amount": p.get("amount")} for p in doc.get("payments", [])
        ],
    })


def booked_status(doc: dict[str, Any]) -> str | None:
    """The invoice's state. ERPNext answers a document inserted with docstatus 1 with the
    stale "Draft" (and keeps it for good on a credit note): read the submitted state
    off its figures instead, as ERPNext's set_status would."""
    status = doc.get("status")
    if status != "Draft" or int(doc.get("docstatus") or 0) != 1:
        return status
    if int(doc.get("is_return") or 0):
        return "Return"
    outstanding = Decimal(str(doc.get("outstanding_amount") or 0))
    if outstanding <= 0:
        return "Paid"
    due = Decimal(str(doc.get("rounded_total") or doc.get("grand_total") or 0))
    return "Partly Paid" if outstanding < due else "Unpaid"


def _plain(message: Any) -> str:
    """A Frappe message without its HTML tags."""
    return re.sub(r"<[^>]+>", "", str(message)).strip()


def unpaid_warning(doc: dict[str, Any], cfg: Any) -> str | None:
    """Why a posted sale needs a look: ERPNext booked it with something outstanding on a
    tenant that takes no credit sales (its own rounding or pricing made the total more
    than the payments). None when all is well."""
    if cfg.allow_credit_sales or int(doc.get("is_return") or 0):
        return None
    outstanding = Decimal(str(doc.get("outstanding_amount") or 0))
    if outstanding <= 0:
        return None
    return (f"ERPNext booked invoice {doc.get('name')} as {booked_status(doc)} with {_plain(outstanding)} outstanding, "
            "though this shop takes no credit sales")
