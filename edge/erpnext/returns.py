"""Returns bound to their sale: each returned line linked to the original invoice row.

ERPNext checks a return row against the sale only when the row names the original
row (`sales_invoice_item`, or `pos_invoice_item` on a POS Invoice): then more than
what remains is 417 StockOverReturnError "Row # 1: Cannot return more than 2.0 for
Item X", and a higher rate than the sale's is refused. A row without the link is
not checked at all: returning 5 of 2 sold, or an item the sale never had, is booked
with only a message (tests/fixtures/real_erpnext/pos/returns.json). So the gateway
links every row, and refuses before posting what ERPNext would refuse, or would
let through wrongly: an item not on the sale, or more than remains of it, counting
earlier returns (linked ones by row, and unlinked ones, which ERPNext does not
count, by item).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from edge.erpnext.client import ErpnextClient

LINK_FIELDS = {"Sales Invoice": "sales_invoice_item", "POS Invoice": "pos_invoice_item"}


class ReturnRefused(Exception):
    """What cannot be returned against this sale (one message per line)."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class SoldRow:
    """A row of the original invoice and how much of it is left to return."""

    row: str
    item_code: str
    rate: Decimal
    remaining: Decimal


@dataclass(frozen=True)
class BoundLine:
    """A return line (positive quantity) linked to the original row it returns."""

    item_code: str
    qty: Decimal
    rate: Decimal
    row: str


def bind(invoice: str, sold: list[SoldRow], lines: list[tuple[str, Decimal, Decimal]]) -> list[BoundLine]:
    """Link each (item_code, qty, rate) line to original rows: the same rate first, then
    rows at a higher rate (a return may be cheaper than the sale, never dearer); a line
    spreads over several rows of one item when it must. Raises ReturnRefused."""
    left = {r.row: r.remaining for r in sold}
    bound: list[BoundLine] = []
    refused: list[str] = []
    for n, (item, qty, rate) in enumerate(lines, 1):
        rows = [r for r in sold if r.item_code == item]
        if not rows:
            refused.append(f"line {n}: {item} is not on invoice {invoice}")
            continue
        usable = sorted((r for r in rows if r.rate >= rate), key=lambda r: (r.rate != rate, r.rate))
        available = sum((left[r.row] for r in usable), Decimal(0))
        if qty > available:
            total = sum((left[r.row] for r in rows), Decimal(0))
            refused.append(f"line {n}: cannot return {_num(qty)} of {item} at {_num(rate)}: "
                           f"{_num(total)} of it remain to return on invoice {invoice}"
                           + (f", {_num(available)} at that rate or more" if available != total else ""))
            continue
        need = qty
        for r in usable:
            take = min(need, left[r.row])
            if take > 0:
                bound.append(BoundLine(item, take, rate, r.row))
                left[r.row] -= take
                need -= take
            if need == 0:
                break
    if refused:
        raise ReturnRefused(refused)
    return bound


async def sold_rows(client: ErpnextClient, doctype: str, invoice: dict[str, Any]) -> list[SoldRow]:
    """The original invoice's rows, less what submitted returns against it took back."""
    link = LINK_FIELDS[doctype]
    rows = [(str(r["name"]), str(r.get("item_code")), Decimal(str(r.get("rate") or 0)), Decimal(str(r.get("qty") or 0)))
            for r in invoice.get("items") or []]
    earlier = await client.find(
        doctype, [["return_against", "=", invoice["name"]], ["docstatus", "=", 1], ["is_return", "=", 1]],
        ["name", f"items.{link}", "items.item_code", "items.qty"], limit=0)
    taken: dict[str, Decimal] = {}
    unlinked: dict[str, Decimal] = {}
    for r in earlier:
        qty = -Decimal(str(r.get("qty") or 0))  # returned quantities are negative
        if r.get(link):
            taken[str(r[link])] = taken.get(str(r[link]), Decimal(0)) + qty
        else:
            unlinked[str(r.get("item_code"))] = unlinked.get(str(r.get("item_code")), Decimal(0)) + qty
    out = []
    for row, item, rate, qty in rows:
        remaining = qty - taken.get(row, Decimal(0))
        # an unlinked earlier return of this item is charged to its rows in order
        charge = min(remaining, unlinked.get(item, Decimal(0)))
        unlinked[item] = unlinked.get(item, Decimal(0)) - charge
        out.append(SoldRow(row, item, rate, remaining - charge))
    return out


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")
