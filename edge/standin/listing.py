"""GET /api/resource/<doctype>: frappe.client.get_list (fields, filters, group_by, order_by, limit_start,
limit_page_length or limit).

Filters come as a list of [field, op, value] or [doctype, field, op, value],
or as a dict {field: value | [op, value]}. A filter, field, group_by or
order_by on a child doctype joins its table (selecting.py): answer rows, and
the paging over them, are per joined row (recorded lst-d1/lst-d2: page 2
of a two-payment invoice holds its two payment rows). Comparisons follow
MariaDB: strings compare case-insensitively, numbers and numeric strings as
numbers, NULL as '' (Frappe wraps columns in ifnull); Time, Date and Datetime
fields compare as values (reading.py). `between` on a Time field is a 500
TypeError on the recorded site (pt-b4: Frappe parses the list as a date).
Unknown fields of a modelled doctype are refused before the query runs
(meta.check_query, DataError 417).

Without order_by Frappe's REST list adds no ORDER BY at all (frappe.client.get_list passes
order_by=None, and db_query only falls back to the meta's sort_field when that names several
columns; Item, Item Price, Customer, Pricing Rule name one), so the order is MariaDB's: the
rows come in ascending name order (the table's primary key; recorded lst-f/lst-f2 and
item-default-order, although the metas say modified desc, Item Price's modified asc), or, with
a range filter on modified or creation, in that column's ascending order (MariaDB reads them
through the column's index: recorded item-default-order-modified); a joined table's rows in
their idx order (on the real site their order is that of the rows' random names:
bc-join-unordered; a client must order by `tabChild`.idx); grouped rows in ascending group
order (MariaDB sorts GROUP BY). Values read back as from the database (reading.read_value:
"9:05:07"). Without limit_page_length (or limit) a page holds 20 rows (frappe.api.v1
document_list; recorded item-default-size); 0 means all.

A child doctype is listed by itself only with `parent` naming its parent doctype (else 403
PermissionError, recorded bc-child-no-parent, bc-child-wrong-parent): its rows are those of
every parent document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response

from edge.standin.documents import dec
from edge.standin.errors import FrappeError, frappe_error
from edge.standin.meta import CHILD_DOCTYPES, CHILD_TABLES, allowed, check_query, raise_invalid_field
from edge.standin.reading import DATETIME_FIELDS, TIME_FIELDS, read_value, sort_value
from edge.standin.selecting import (
    Column,
    Selected,
    check_ambiguous,
    check_ambiguous_order,
    child_doctypes,
    parse_column,
    parse_field,
    parse_order,
)

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

Row = dict[str | None, dict[str, Any] | None]  # None -> the parent document, child doctype -> its row


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
    try:
        if doctype in CHILD_DOCTYPES:
            docs = _child_rows(site, doctype, q.get("parent"))
        rows = _query(site, doctype, docs, [str(f) for f in fields], filters, q)
    except FrappeError as e:
        return e.response()
    page = rows[start: start + length] if length else rows[start:]
    return JSONResponse({"data": page})


def _child_rows(site: StandInSite, doctype: str, parent: str | None) -> dict[str, dict[str, Any]]:
    """frappe.client.get_list on a child doctype: check_parent_permission wants `parent`, the parent doctype."""
    parent_doctype = CHILD_DOCTYPES[doctype]
    if parent != parent_doctype:
        raise FrappeError("PermissionError", messages=[], exception="frappe.exceptions.PermissionError")
    tables = [t for t, child in CHILD_TABLES[parent_doctype].items() if child == doctype]
    return {row["name"]: row for doc in site.docs.get(parent_doctype, {}).values() for t in tables
            for row in doc.get(t) or [] if isinstance(row, dict) and row.get("name")}


def _query(site: StandInSite, doctype: str, docs: dict[str, dict[str, Any]], fields: list[str],
           filters: list[list[Any]], q: Mapping[str, str]) -> list[dict[str, Any]]:
    check_query(site, doctype, [f for f in fields if "." not in f and "(" not in f], filters)
    star = fields == ["*"]
    selected = [] if star else [parse_field(doctype, f) for f in fields]
    for s in selected:
        if s.column and s.column.table and not allowed(site, s.column.table, s.column.field):
            raise_invalid_field(s.column.field)
    conditions = [_condition(doctype, f) for f in filters]
    group = [parse_column(doctype, g) for g in str(q.get("group_by") or "").split(",") if g.strip()]
    order = parse_order(doctype, str(q.get("order_by") or ""))
    joined = {c.table for c in [*(s.column for s in selected if s.column), *(c for c, _, _ in conditions),
                                *group, *(c for c, _ in order)] if c is not None and c.table}
    check_ambiguous(selected, joined)
    check_ambiguous_order(str(q.get("order_by") or ""), {s.key for s in selected} if not star else set(), joined)

    rows = [r for d in sorted(docs.values(), key=lambda d: str(d.get("name"))) for r in _join(doctype, d, joined)]
    rows = [r for r in rows if all(_match(c.field, _value(r, c), op, value) for c, op, value in conditions)]
    if not order and not group:
        order = _index_order(conditions)
    if star:
        tables = CHILD_TABLES.get(doctype, {})
        rows = _ordered(rows, order)
        return [{k: read_value(k, v) for k, v in own.items() if k not in tables} for r in rows if (own := r[None])]
    if group or any(s.function for s in selected):
        return _grouped(rows, selected, group, order)
    return [{s.key: read_value(s.column.field, _value(r, s.column)) for s in selected if s.column}
            for r in _ordered(rows, order)]


RANGE_OPS = frozenset({">", ">=", "<", "<=", "between"})


def _index_order(conditions: list[tuple[Column, str, Any]]) -> list[tuple[Column, bool]]:
    """No order_by: the order MariaDB's plan gives, read through the index of a range-filtered
    modified/creation column (else the primary key, name: the rows are already in that order)."""
    for column, op, _ in conditions:
        if column.table is None and column.field in ("modified", "creation") and str(op).lower() in RANGE_OPS:
            return [(column, False)]
    return []


def _join(doctype: str, doc: dict[str, Any], joined: set[str]) -> list[Row]:
    rows: list[Row] = [{None: doc}]
    tables = child_doctypes(doctype)
    for child in sorted(joined):
        children = sorted(doc.get(tables[child]) or [], key=lambda r: r.get("idx") or 0) or [None]
        rows = [{**r, child: c} for r in rows for c in children]
    return rows


def _value(row: Row, column: Column) -> Any:
    source = row.get(column.table)
    return None if source is None else source.get(column.field)


def _condition(doctype: str, flt: list[Any]) -> tuple[Column, str, Any]:
    if len(flt) == 4:
        table, field, op, value = flt
        column = Column(None if table == doctype else str(table), str(field))
        if column.table and column.table not in child_doctypes(doctype):
            raise FrappeError("DataError", f"Field not permitted in query: {field}")
        return column, str(op), value
    field, op, value = flt
    return parse_column(doctype, str(field)), str(op), value


def _ordered(rows: list[Row], order: list[tuple[Column, bool]]) -> list[Row]:
    for column, descending in reversed(order):  # stable sorts, last key first
        rows = sorted(rows, key=partial(_row_key, column), reverse=descending)
    return rows


def _row_key(column: Column, row: Row) -> Any:
    return _sort_key(column.field, _value(row, column))


def _answer_key(key: str, field: str, answer: dict[str, Any]) -> Any:
    return _sort_key(field, answer.get(key))


def _grouped(rows: list[Row], selected: list[Selected], group: list[Column],
             order: list[tuple[Column, bool]]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for r in rows:
        groups.setdefault(tuple(_value(r, c) for c in group), []).append(r)
    if not group and not groups:
        groups[()] = []  # an aggregate without group_by answers one row, even over nothing
    keys = sorted(groups, key=lambda k: [_sort_key(c.field, v) for c, v in zip(group, k, strict=True)])
    out = []
    for key in keys:
        members = groups[key]
        out.append({s.key: _aggregate(s, members) if s.function or s.column is None else
                    read_value(s.column.field, _value(members[0], s.column) if members else None)
                    for s in selected})
    for column, descending in reversed(order):  # by the answer key that selects the column
        answer_key = next((s.key for s in selected if s.column == column and not s.function), column.field)
        out = sorted(out, key=partial(_answer_key, answer_key, column.field), reverse=descending)
    return out


def _aggregate(sel: Selected, rows: list[Row]) -> Any:
    values = [_value(r, sel.column) if sel.column else 1 for r in rows]
    present = [v for v in values if v is not None]
    if sel.function == "count":
        return len(present)
    if not present:
        return None
    numbers = [dec(v) for v in present]
    if sel.function == "sum":
        return float(sum(numbers, Decimal(0)))
    if sel.function == "avg":
        return float(sum(numbers, Decimal(0)) / len(numbers))
    return float(min(numbers) if sel.function == "min" else max(numbers))


def _sort_key(field: str, value: Any) -> tuple[int, Any]:
    typed = sort_value(field, value)
    if typed is not None:
        return (1, typed)
    if value is None:
        return (0, 0)  # NULL sorts first in ascending order
    number = _number(value)
    return (1, number) if number is not None else (2, str(value).casefold())


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


def _cmp(field: str, actual: Any, value: Any) -> int:
    a_typed, b_typed = sort_value(field, actual), sort_value(field, value)
    if a_typed is not None and b_typed is not None:
        a, b = a_typed, b_typed
    else:
        a, b = _number(actual), _number(value)
        if a is None or b is None:
            a, b = str(actual or ""), str(value or "")
    return (a > b) - (a < b)


def _like(actual: Any, pattern: Any) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.fullmatch(regex, str(actual or ""), re.IGNORECASE | re.DOTALL) is not None


def _match(field: str, actual: Any, op: str, value: Any) -> bool:
    op = str(op).lower()
    if op in ("=", "=="):
        typed = sort_value(field, actual), sort_value(field, value)
        return typed[0] == typed[1] if None not in typed else _eq(actual, value)
    if op == "!=":
        return not _match(field, actual, "=", value)
    if op in ("in", "not in"):
        values = value if isinstance(value, list) else str(value).split(",")
        found = any(_eq(actual, v) for v in values)
        return found if op == "in" else not found
    if op in ("like", "not like"):
        return _like(actual, value) if op == "like" else not _like(actual, value)
    if op in (">", "<", ">=", "<="):
        c = _cmp(field, actual, value)
        return {">": c > 0, "<": c < 0, ">=": c >= 0, "<=": c <= 0}[op]
    if op == "is":
        is_set = actual not in (None, "")
        return is_set if value == "set" else not is_set
    if op == "between":
        return _between(field, actual, value)
    return False


def _between(field: str, actual: Any, value: Any) -> bool:
    if field in TIME_FIELDS:
        # frappe.model.db_query get_between_date_filter hands the list to dateutil's parser
        raise FrappeError("TypeError", exception="TypeError: Parser must be a string or character stream, not list")
    if not isinstance(value, list) or len(value) != 2:
        return False
    low, high = value
    if field in DATETIME_FIELDS and len(str(high).strip()) == 10:
        high = f"{str(high).strip()} 23:59:59.999999"  # a bare date as the upper bound covers the whole day
    return _cmp(field, actual, low) >= 0 and _cmp(field, actual, high) <= 0
