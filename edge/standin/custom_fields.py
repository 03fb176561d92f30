"""Custom Field, as frappe/custom/doctype/custom_field/custom_field.py creates it.

A Custom Field is named "<dt>-<fieldname>" (autoname); with no fieldname one is
made from the label ("custom_" + scrubbed label, set_fieldname). Its validate()
refuses a fieldname the doctype already has, standard or custom:
ValidationError 417 "A field with the name <strong>x</strong> already exists in DT".
Once stored, the field is a column of `dt` (see meta.fieldnames): it is kept on
insert, can be filtered on, and `unique: 1` is enforced (invoices._check_unique).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from edge.standin.clock import now_text
from edge.standin.documents import (
    cint,
    missing_message,
    raise_invalid_links,
    raise_missing,
)
from edge.standin.errors import FrappeError
from edge.standin.meta import KNOWN_DOCTYPES, STANDARD_FIELDS, fieldnames, keep_known

if TYPE_CHECKING:
    from edge.standin.app import StandInSite


def _scrub(label: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "", label.strip().replace(" ", "_")).lower()


def insert_custom_field(site: StandInSite, data: dict[str, Any], user: str) -> dict[str, Any]:
    """POST /api/resource/Custom Field."""
    doc = keep_known(site, "Custom Field", data)
    dt, label = doc.get("dt"), doc.get("label")
    fieldname = (doc.get("fieldname") or "").strip().lower()
    missing = [("dt", missing_message("Custom Field", "DocType"))] if not dt else []
    raise_missing("Custom Field", f"{dt}-{fieldname}", missing)
    assert isinstance(dt, str)  # raise_missing raised for a missing dt
    if dt not in KNOWN_DOCTYPES:
        raise_invalid_links([f"DocType: {dt}"])
    if not fieldname:
        if not label:
            raise FrappeError("ValidationError", "Label is mandatory")
        fieldname = "custom_" + _scrub(label)
    existing = (fieldnames(site, dt) or frozenset()) | STANDARD_FIELDS
    if fieldname in existing:
        raise FrappeError("ValidationError", f"A field with the name <strong>{fieldname}</strong> already exists in {dt}")
    stamp = now_text(site)
    stored = {
        "name": f"{dt}-{fieldname}", "owner": user, "creation": stamp, "modified": stamp, "modified_by": user,
        "docstatus": 0, "idx": 0, "doctype": "Custom Field",
        "dt": dt, "label": label, "fieldname": fieldname, "fieldtype": doc.get("fieldtype") or "Data",
        "options": doc.get("options"), "insert_after": doc.get("insert_after"), "unique": cint(doc.get("unique")),
        "reqd": cint(doc.get("reqd")), "read_only": cint(doc.get("read_only")), "hidden": cint(doc.get("hidden")),
        "default": doc.get("default"), "description": doc.get("description"),
        "allow_on_submit": cint(doc.get("allow_on_submit")), "no_copy": cint(doc.get("no_copy")),
        "in_list_view": cint(doc.get("in_list_view")), "in_standard_filter": cint(doc.get("in_standard_filter")),
        "module": doc.get("module"), "is_system_generated": cint(doc.get("is_system_generated")),
    }
    site.docs.setdefault("Custom Field", {})[f"{dt}-{fieldname}"] = stored
    return stored


def ensure_custom_field(site: StandInSite, dt: str, fieldname: str, *, label: str | None = None, fieldtype: str = "Data",
                        unique: bool = False) -> dict[str, Any]:
    """Create the Custom Field unless `dt` already has it (for seeding; idempotent)."""
    current = site.docs.get("Custom Field", {}).get(f"{dt}-{fieldname}")
    if current is not None:
        return current
    return insert_custom_field(site, {"dt": dt, "fieldname": fieldname, "label": label or fieldname,
                                      "fieldtype": fieldtype, "unique": int(unique)}, "Administrator")
