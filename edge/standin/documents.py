"""Small helpers shared by the stand-in's modelled doctypes: stamps, child rows, money, checks."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from edge.standin.errors import FrappeError

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

CENT = Decimal("0.01")


def cint(value: Any) -> int:
    """frappe.utils.cint: int() that treats junk as 0."""
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 0


def dec(value: Any) -> Decimal:
    """A number as Decimal (None and junk are 0), without float noise."""
    try:
        return Decimal(str(value)) if value not in (None, "") else Decimal(0)
    except InvalidOperation:
        return Decimal(0)


def money(value: Any) -> Decimal:
    """Rounded to 2 places, half up (frappe.utils.flt(value, 2) on currency fields)."""
    return dec(value).quantize(CENT, ROUND_HALF_UP)


def num(value: Decimal) -> float:
    """A Decimal as the JSON number Frappe sends for Currency/Float fields."""
    return float(value)


def to_date(value: Any, default: date | None = None) -> date:
    """frappe.utils.getdate for 'YYYY-MM-DD' (or a datetime string); `default` when empty or bad."""
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return default or date.today()


def child_row(parent: dict[str, Any], parentfield: str, doctype: str, idx: int, fields: dict[str, Any]) -> dict[str, Any]:
    """A child table row as Frappe stores it (hash name, idx, parent links, the parent's stamps)."""
    return {
        "name": secrets.token_hex(5),
        "owner": parent["owner"],
        "creation": parent["creation"],
        "modified": parent["modified"],
        "modified_by": parent["modified_by"],
        "docstatus": parent["docstatus"],
        "idx": idx,
        **fields,
        "parent": parent["name"],
        "parentfield": parentfield,
        "parenttype": parent["doctype"],
        "doctype": doctype,
    }


def missing_message(doctype: str, label: str, row: int | None = None) -> str:
    """BaseDocument._get_missing_mandatory_fields get_msg(df)."""
    if row is not None:
        return f"Error: <strong>{doctype}</strong> Row #{row}: Value missing for: {label}"
    return f"Error: Value missing for {doctype}: {label}"


def raise_missing(doctype: str, name: str, missing: list[tuple[str, str]]) -> None:
    """Document._validate_mandatory: one msgprint per field, then MandatoryError naming the fieldnames."""
    if missing:
        fields = ", ".join(f for f, _ in missing)
        raise FrappeError("MandatoryError", messages=[m for _, m in missing],
                          exception=f"frappe.exceptions.MandatoryError: [{doctype}, {name}]: {fields}")


def raise_invalid_links(invalid: Iterable[str]) -> None:
    """Document._validate_links: every broken link in one LinkValidationError."""
    invalid = list(invalid)
    if invalid:
        raise FrappeError("LinkValidationError", "Could not find {}".format(", ".join(invalid)))


def link_exists(site: StandInSite, doctype: str, name: Any) -> bool:
    """Whether the Link target exists on the site."""
    return isinstance(name, str) and name in site.docs.get(doctype, {})
