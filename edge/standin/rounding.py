"""Rounding as Frappe does it: amounts to the currency precision, totals to the currency's smallest fraction.

frappe.utils.flt(value, precision) rounds with System Settings.rounding_method:
"Banker's Rounding" (half to even), "Banker's Rounding (legacy)" (half to even
only to a whole number, otherwise half up: Frappe's default and what the
stand-in always did for 2-decimal amounts) or "Commercial Rounding" (half away
from zero). Decimals stand in for Frappe's floats (which it corrects with an
epsilon), so 0.495 rounds like the decimal it was typed as.

rounded_total (taxes_and_totals.set_rounded_total with
round_based_on_smallest_currency_fraction): a currency whose
smallest_currency_fraction_value is 0 (UGX on the recorded site) rounds the
grand total to a whole number with the rounding method (24000.5 -> 24000,
24000.6 -> 24001, recorded rnd-a..d); otherwise to the nearest multiple of the
fraction, an exact half going down (0.01 for a 2-decimal currency: the grand
total itself).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

BANKERS = "Banker's Rounding"
BANKERS_LEGACY = "Banker's Rounding (legacy)"
COMMERCIAL = "Commercial Rounding"


def round_to(value: Decimal, places: int, method: str = BANKERS_LEGACY) -> Decimal:
    """`value` rounded to `places` decimals with a Frappe rounding method."""
    if method == BANKERS or (method == BANKERS_LEGACY and places == 0):
        mode = ROUND_HALF_EVEN
    else:  # legacy with decimals, and commercial: Decimal's half-up is away from zero
        mode = ROUND_HALF_UP
    return value.quantize(Decimal(1).scaleb(-places), mode)


def to_smallest_fraction(value: Decimal, fraction: Decimal | None, places: int, method: str) -> Decimal:
    """round_based_on_smallest_currency_fraction: the rounded total of a grand total
    (`fraction` None: the currency is not on the site, only the precision applies)."""
    if fraction is None:
        return round_to(value, places, method)
    if fraction:
        remainder = value % fraction
        if remainder < 0:  # Python's % on floats follows the divisor's sign; Decimal's the dividend's
            remainder += fraction
        value = value + fraction - remainder if remainder > fraction / 2 else value - remainder
        return round_to(value, places, method)
    return round_to(round_to(value, 0, method), places, method)
