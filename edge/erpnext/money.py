"""Money as ERPNext books it: the rounded total a sale must be paid against.

ERPNext rounds an invoice's grand total (erpnext/controllers/taxes_and_totals.py
set_rounded_total -> frappe/utils/data.py round_based_on_smallest_currency_fraction)
unless the invoice's `disable_rounded_total` is set:

- with a currency's `smallest_currency_fraction_value` (0.05, 0.01...): to a multiple
  of it, a remainder above half going up and one of exactly half going down;
- without one (0: UGX, JPY...): to a whole unit, by System Settings' rounding method
  ("Banker's Rounding": half to even; "Commercial Rounding": half away from zero).

A POS sale is then paid against the rounded total: 24,000.60 UGX paid 24,000.60 is
booked "Partly Paid" (0.40 outstanding) and 24,000.40 paid 24,000 is "Paid"
(tests/fixtures/real_erpnext/pos/rounding.json).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

_HALF_WAYS = {"Banker's Rounding": ROUND_HALF_EVEN, "Banker's Rounding (legacy)": ROUND_HALF_EVEN,
              "Commercial Rounding": ROUND_HALF_UP}


@dataclass(frozen=True)
class Rounding:
    """How ERPNext rounds a document's total: per currency, site and POS Profile."""

    smallest_fraction: Decimal  # the currency's smallest_currency_fraction_value (0: whole units)
    method: str  # System Settings' rounding_method
    disabled: bool  # the invoice's disable_rounded_total (the gateway sends the POS Profile's)

    def total(self, grand_total: Decimal) -> Decimal:
        """What ERPNext asks to be paid for `grand_total`."""
        if self.disabled:
            return grand_total
        step = self.smallest_fraction
        if step:
            remainder = grand_total % step
            return grand_total + (step - remainder) if remainder > step / 2 else grand_total - remainder
        return grand_total.quantize(Decimal(1), rounding=_HALF_WAYS.get(self.method, ROUND_HALF_EVEN))


def due(grand_total: Decimal, rounding: Rounding | None) -> Decimal:
    """What a sale of `grand_total` must be paid, as ERPNext will book it. With the
    rounding not known (the site's settings could not be read yet), the least it could
    be: the total less one whole unit, the most any rounding takes off; what ERPNext
    then books unpaid is flagged after posting."""
    return rounding.total(grand_total) if rounding is not None else grand_total - 1


def covers(paid: Decimal, grand_total: Decimal, rounding: Rounding | None) -> bool:
    """Whether `paid` settles a sale of `grand_total` (see due())."""
    return paid >= due(grand_total, rounding)


def uncovered(paid: Decimal, grand_total: Decimal, rounding: Rounding | None) -> str:
    """Why `paid` does not settle the sale, in the till's terms."""
    owed = due(grand_total, rounding)
    if rounding is not None and owed != grand_total:
        return (f"payments ({_num(paid)}) do not cover the total ({_num(grand_total)}, which ERPNext rounds to "
                f"{_num(owed)} in this currency)")
    return f"payments ({_num(paid)}) do not cover the total ({_num(grand_total)})"


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
