"""GET /api/resource/<doctype>: frappe.client.get_list (fields, filters, order_by, limit_start, limit_page_length).

Filters come as a list of [field, op, value] or [doctype, field, op, value] (a
child doctype filters on its rows: a parent matches when one row does), or as a
dict {field: value | [op, value]}. Comparisons follow MariaDB: strings compare
case-insensitively, numbers and numeric strings compare as numbers, NULL is ''
(Frappe wraps columns in ifnull). Unknown fields of a modelled doctype are refused
before the query runs (meta.check_query, DataError 417).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from edge.standin.errors import frappe_error
from edge.standin.meta import CHILD_TABLES, check_query

if TYPE_CHECKING:
    from edge.standin.app import StandInSite


def get_list(site: StandInSite, doctype: str, docs: dict[str, dict[str, Any]], q: Mapping[str, str]) -> Response:
    """The list answer `{"data": [...]}` for a get_list query."""
    try:
        fields = ["*"] if q.get("fields") == "*" else json.loads(q.get("fields") or '["name"]')
        filters = json.loads(q.get("filters") or "[]")
        start = int(q.get("limit_start") or 0)
        length = int(q.get("limit_page_length", q.get("limit", 20)) or 0)
    except ValueError:
        return frappe_error("ValidationError", "Invalid list parameters")
    if fields == "*":
        fields = ["*"]
    if isinstance(filters, dict):
        filters = [[k, "=", v] if not isinstance(v, list) else [k, *v] for k, v in filters.items()]
    if not isinstance(fields, list) or not isinstance(filters, list) or not all(
            isinstance(f, list) and len(f) in (3, 4) for f in filters):
        return frappe_error("ValidationError", "Invalid list parameters")
    check_query(site, doctype, fields, filters)
    order_field, _, direction = (q.get("order_by") or "modified desc").replace("`", "").partition(" ")
    order_field = order_field.split(".")[-1]
    rows = sorted(docs.values(), key=lambda d: _sort_key(d.get(order_field)), reverse=direction.strip().lower() != "asc")
    tables = {child: field for field, child in CHILD_TABLES.get(doctype, {}).items()}
    for flt in filters:
        if len(flt) == 4 and flt[0] in tables:
            table, (field_name, op, value) = tables[flt[0]], flt[1:]
            rows = [d for d in rows if any(_match(r.get(field_name), op, value) for r in d.get(table) or [])]
            continue
        field_name, op, value = flt[-3:]
        rows = [d for d in rows if _match(d.get(field_name), op, value)]
    page = rows[start: start + length] if length else rows[start:]
    if fields == ["*"]:
        tables = CHILD_TABLES.get(doctype, {})
        return JSONResponse({"data": [{k: v for k, v in d.items() if k not in tables} for d in page]})
    names = [str(f).split(" as ")[-1].strip().strip("`") for f in fields]
    sources = [str(f).split(" as ")[0].strip().strip("`") for f in fields]
    return JSONResponse({"data": [{n: d.get(s) for n, s in zip(names, sources)} for d in page]})


def _sort_key(value: Any) -> tuple[int, Any]:
    number = _number(value)
    return (0, number) if number is not None else (1, str(value or ""))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _eq(actual: Any, value: Any) -> bool:
    a, b = _number(actual), _number(value)
    if a is not None and b is not None:
        return a == b
    return str("" if actual is None else actual).casefold() == str("" if value is None else value).casefold()


def _cmp(actual: Any, value: Any) -> int:
    a, b = _number(actual), _number(value)
    if a is None or b is None:
        a, b = str(actual or ""), str(value or "")  # type: ignore[assignment]
    return (a > b) - (a < b)  # type: ignore[operator]


def _like(actual: Any, pattern: Any) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, str(actual or ""), re.IGNORECASE | re.DOTALL) is not None


def _match(actual: Any, op: str, value: Any) -> bool:
    op = str(op).lower()
    if op in ("=", "=="):
        return _eq(actual, value)
    if op == "!=":
        return not _eq(actual, value)
    if op in ("in", "not in"):
        values = value if isinstance(value, list) else str(value).split(",")
        found = any(_eq(actual, v) for v in values)
        return found if op == "in" else not found
    if op in ("like", "not like"):
        return _like(actual, value) if op == "like" else not _like(actual, value)
    if op in (">", "<", ">=", "<="):
        c = _cmp(actual, value)
        return {">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0}[op]
    if op == "is":
        is_set = actual not in (None, "")
        return is_set if value == "set" else not is_set
    if op == "between" and isinstance(value, list) and len(value) == 2:
        return _cmp(actual, value[0]) >= 0 and _cmp(actual, value[1]) <= 0
    return False
