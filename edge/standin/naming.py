"""Naming series, as frappe/model/naming.py make_autoname does for `naming_series:` doctypes.

A series like "ACC-SINV-.YYYY.-" is split on "."; YYYY/YY/MM/DD become date parts,
and ".#####" (appended when absent) takes the next value of the series counter
kept per prefix (Frappe's `tabSeries`, one per site). The counter moves only when
the insert succeeds: a failed insert rolls its transaction back in Frappe.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

# The first option of each doctype's naming_series field is its default.
SERIES: dict[str, tuple[str, ...]] = {
    "Sales Invoice": ("ACC-SINV-.YYYY.-", "ACC-SINV-RET-.YYYY.-"),
    "POS Invoice": ("ACC-PSINV-.YYYY.-", "ACC-PSINV-RET-.YYYY.-"),
    "POS Closing Entry": ("POS-CLO-.YYYY.-",),
    "POS Opening Entry": ("POS-OPE-.YYYY.-",),
}


def _prefix_and_digits(series: str, on: date) -> tuple[str, int]:
    key = series if "#" in series else series + ".#####"
    prefix, digits = "", 5
    for part in key.split("."):
        if part.startswith("#"):
            digits = len(part)
            break
        prefix += {"YYYY": f"{on:%Y}", "YY": f"{on:%y}", "MM": f"{on:%m}", "DD": f"{on:%d}"}.get(part, part)
    return prefix, digits


def series_for(doctype: str, requested: Any) -> str:
    """The series to use: the requested one when it is an option of the doctype, else the default."""
    options = SERIES[doctype]
    return requested if requested in options else options[0]


def next_name(site: StandInSite, series: str, on: date, *, consume: bool = True) -> str:
    """The next name in `series` for a document dated `on` (peek with consume=False)."""
    prefix, digits = _prefix_and_digits(series, on)
    current = site.series.get(prefix, 0) + 1
    if consume:
        site.series[prefix] = current
    return f"{prefix}{current:0{digits}d}"
