"""A site's settings, read from its single documents the way ERPNext reads them.

Frappe keeps site-wide settings in "single" doctypes, served like any document
(`GET /api/resource/System Settings/System Settings`): System Settings
(time_zone, currency_precision, float_precision, rounding_method), Global
Defaults (disable_rounded_total) and, per currency, Currency
(smallest_currency_fraction_value, fraction_units). seed.seed_settings stores
them; a site without them behaves as the stand-in always did (machine-local
time, 2 decimals, half-up rounding of amounts).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from edge.standin.documents import cint, dec

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

SYSTEM_SETTINGS = "System Settings"
GLOBAL_DEFAULTS = "Global Defaults"
# Frappe's rounding when System Settings names none (frappe.utils.data.rounded).
DEFAULT_ROUNDING = "Banker's Rounding (legacy)"


def single(site: StandInSite, doctype: str) -> dict[str, Any]:
    """The single document `doctype` of the site ({} when it was never seeded)."""
    return site.docs.get(doctype, {}).get(doctype) or {}


def time_zone(site: StandInSite) -> str | None:
    """System Settings.time_zone (an IANA name), None for the machine's own zone."""
    return single(site, SYSTEM_SETTINGS).get("time_zone") or None


def rounding_method(site: StandInSite) -> str:
    """System Settings.rounding_method: "Banker's Rounding", "Banker's Rounding (legacy)"
    or "Commercial Rounding"."""
    return single(site, SYSTEM_SETTINGS).get("rounding_method") or DEFAULT_ROUNDING


def currency_precision(site: StandInSite) -> int:
    """Decimals of Currency fields: System Settings.currency_precision, or (empty, as on
    the recorded site) the decimals of its number_format "#,###.##", i.e. 2."""
    settings = single(site, SYSTEM_SETTINGS)
    if str(settings.get("currency_precision") or "").strip():
        return cint(settings["currency_precision"])
    number_format = str(settings.get("number_format") or "#,###.##")
    return len(number_format.rpartition(".")[2]) if "." in number_format else 0


def smallest_fraction(site: StandInSite, currency: str | None) -> Decimal | None:
    """Currency.smallest_currency_fraction_value; None when the Currency is not on the site
    (then totals are only rounded to the currency precision)."""
    doc = site.docs.get("Currency", {}).get(currency or "")
    return None if doc is None else dec(doc.get("smallest_currency_fraction_value"))


def rounded_total_disabled_by_default(site: StandInSite) -> int:
    """Global Defaults.disable_rounded_total: the default of an invoice's own disable_rounded_total
    (ERPNext makes it the field's default; the POS Profile's flag does not reach a REST invoice)."""
    return cint(single(site, GLOBAL_DEFAULTS).get("disable_rounded_total"))
