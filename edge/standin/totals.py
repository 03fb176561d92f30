"""An invoice's rows and totals (erpnext/controllers/taxes_and_totals.py, without taxes).

Amounts round to the currency precision with the site's rounding method
(rounding.py; 2 decimals, half up on a site without System Settings). The
rate sent is kept; price_list_rate is the Item's standard rate (recorded: rate
24000.6 with price_list_rate 24000). No rate: the price list rate less the row
discount. additional_discount_percentage wins over discount_amount; the
discount is spread over the rows in proportion, the rest on the last.

rounded_total is the grand total rounded to the currency's smallest fraction
(rounding.to_smallest_fraction); disable_rounded_total on the invoice (sent,
else Global Defaults') makes rounded_total and rounding_adjustment 0
(recorded rnd-e4). Payments are measured against rounded_total or, when
that is 0, grand_total:

- Sales Invoice: paid_amount is the sum of the payment rows; change only
  when overpaid with a Cash row (calculate_change_amount); outstanding =
  total - (paid - change): 24000.6 paid against 24001 leaves 0.4 and
  "Partly Paid" (rnd-a).
- POS Invoice: paid_amount is the document's own field, which ERPNext does not
  compute over REST (None without it: see invoices.py); change = paid - total
  when overpaid, whatever the mode (validate_change_amount). Its base amounts
  stay unset: base_paid_amount 0.0, payment rows' base_amount 0.0,
  base_change_amount 0 - base total when there is change (recorded pinv-e4).
  outstanding = total - (paid - change), an assumption beyond the recorded
  fully paid cases (ERPNext leaves a POS Invoice's outstanding alone).
- A consolidated Sales Invoice (consolidation.py) keeps the merged invoices'
  rates with price_list_rate 0, and its rounded total is the sum of theirs
  (set_rounded_total returns early for is_consolidated with an adjustment).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from edge.standin.documents import child_row, cint, dec, num
from edge.standin.meta import CHILD_TABLES
from edge.standin.rounding import round_to, to_smallest_fraction
from edge.standin.settings import currency_precision, rounded_total_disabled_by_default, rounding_method, smallest_fraction

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

PAYMENT_DOCTYPE = "Sales Invoice Payment"


def compute_totals(site: StandInSite, doctype: str, out: dict[str, Any], doc: dict[str, Any],
                   profile: dict[str, Any] | None, payments_in: list[dict[str, Any]]) -> None:
    """Fill `out` (the invoice being built from the request `doc`) with rows, totals and payments."""
    places, method = currency_precision(site), rounding_method(site)

    def rnd(value: Decimal) -> Decimal:
        return round_to(value, places, method)

    consolidated = cint(doc.get("is_consolidated"))
    rows, amounts = _rows(site, doctype, out, doc, profile, rnd, consolidated)
    total = sum(amounts, Decimal(0))
    pct = dec(doc.get("additional_discount_percentage"))
    discount = rnd(total * pct / 100) if pct else rnd(dec(doc.get("discount_amount")))
    spread = Decimal(0)
    for i, (row, amount) in enumerate(zip(rows, amounts, strict=True)):
        share = discount - spread if i == len(rows) - 1 else (rnd(discount * amount / total) if total else Decimal(0))
        spread += share
        net_amount = amount - share
        qty = dec(row["qty"])
        row.update({"net_amount": num(net_amount), "base_net_amount": num(net_amount),
                    "net_rate": num(rnd(net_amount / qty)) if qty else row["rate"]})
        row["base_net_rate"] = row["net_rate"]
    net_total = total - discount
    grand_total = net_total

    disabled = cint(doc.get("disable_rounded_total", rounded_total_disabled_by_default(site)))
    if disabled:
        rounded_total = adjustment = Decimal(0)
    elif consolidated and dec(doc.get("rounding_adjustment")):
        rounded_total, adjustment = dec(doc.get("rounded_total")), dec(doc.get("rounding_adjustment"))
    else:
        rounded_total = to_smallest_fraction(grand_total, smallest_fraction(site, out["currency"]), places, method)
        adjustment = rnd(rounded_total - grand_total)
    due = rounded_total or grand_total

    pos_invoice = doctype == "POS Invoice"
    payments = _payments(site, out, payments_in, rnd, base=not pos_invoice)
    paid_sum = sum((dec(p["amount"]) for p in payments), Decimal(0))
    if pos_invoice:
        sent = doc.get("paid_amount")
        paid: Decimal | None = rnd(dec(sent)) if sent not in (None, "") else (None if site.strict_paid_amount else paid_sum)
    else:
        paid = paid_sum
    change = Decimal(0)
    if out["is_pos"] and not out["is_return"] and paid is not None and paid > due:
        if pos_invoice or any(p["type"] == "Cash" for p in payments):
            change = paid - due
    outstanding = due - ((paid or Decimal(0)) - change) if out["is_pos"] else due
    base_paid = Decimal(0) if pos_invoice else (paid or Decimal(0))
    base_change = (base_paid - due if change else Decimal(0)) if pos_invoice else change
    out.update({
        "total_qty": float(sum((dec(r["qty"]) for r in rows), Decimal(0))),
        "total": num(total), "base_total": num(total),
        "net_total": num(net_total), "base_net_total": num(net_total),
        "apply_discount_on": "Grand Total",
        "additional_discount_percentage": float(pct),
        "discount_amount": num(discount), "base_discount_amount": num(discount),
        "grand_total": num(grand_total), "base_grand_total": num(grand_total),
        "disable_rounded_total": disabled,
        "rounding_adjustment": num(adjustment), "base_rounding_adjustment": num(adjustment),
        "rounded_total": num(rounded_total), "base_rounded_total": num(rounded_total),
        "paid_amount": None if paid is None else num(paid), "base_paid_amount": num(base_paid),
        "change_amount": num(change), "base_change_amount": num(base_change),
        "write_off_amount": 0.0, "base_write_off_amount": 0.0,
        "outstanding_amount": num(rnd(outstanding)),
        "items": rows,
        "payments": payments,
        "taxes": [],
    })


def _rows(site: StandInSite, doctype: str, out: dict[str, Any], doc: dict[str, Any], profile: dict[str, Any] | None,
          rnd: Any, consolidated: int) -> tuple[list[dict[str, Any]], list[Decimal]]:
    item_doctype = CHILD_TABLES[doctype]["items"]
    rows: list[dict[str, Any]] = []
    amounts: list[Decimal] = []
    for idx, row in enumerate(doc["items"], 1):
        item = site.docs["Item"][row["item_code"]]
        qty = dec(row["qty"])
        price_list_rate = Decimal(0) if consolidated else rnd(dec(row.get("price_list_rate") or item.get("standard_rate")))
        discount_pct = dec(row.get("discount_percentage"))
        rate = rnd(dec(row.get("rate")))
        if discount_pct == 100:
            rate = Decimal(0)
        elif not rate and not consolidated:  # calculate_item_values: no rate -> price_list_rate less the row discount
            rate = rnd(price_list_rate * (1 - discount_pct / 100))
        amount = rnd(qty * rate)
        amounts.append(amount)
        fields: dict[str, Any] = {
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
        }
        for link in ("sales_invoice_item", "pos_invoice", "pos_invoice_item"):
            if link in row:
                fields[link] = row[link]
        rows.append(child_row(out, "items", item_doctype, idx, fields))
    return rows, amounts


def _payments(site: StandInSite, out: dict[str, Any], payments_in: list[dict[str, Any]], rnd: Any,
              base: bool) -> list[dict[str, Any]]:
    payments = []
    for idx, row in enumerate(payments_in, 1):
        mop = site.docs.get("Mode of Payment", {}).get(row["mode_of_payment"]) or {}
        amount = rnd(dec(row.get("amount")))
        payments.append(child_row(out, "payments", PAYMENT_DOCTYPE, idx, {
            "default": cint(row.get("default")),
            "mode_of_payment": row["mode_of_payment"],
            "amount": num(amount),
            "base_amount": num(amount) if base else 0.0,
            "account": row.get("account"),
            "type": mop.get("type"),
            "reference_no": row.get("reference_no"),
        }))
    return payments
