"""The column expressions of a list query (`fields`, `group_by`, `order_by`), as frappe.model.db_query reads them.

A field is a parent column ("grand_total"), a child-table column written
with its table (`` `tabSales Invoice Payment`.mode_of_payment ``) or through
the parent's table field ("payments.mode_of_payment", which Frappe turns
into the former), or an aggregate over one: "sum(`tabSales Invoice
Payment`.amount) as total", "count(name) as n". Answer keys are the alias,
else the bare column name (recorded lst-a2: "mode_of_payment", not the
prefixed name). Naming a child column joins its table: one answer row per
child row (a parent without rows gets one row of nulls, a LEFT JOIN).

Recorded refusals (lists.json): the "payments.x" spelling inside an aggregate
is 403 PermissionError "payments" (lst-e2: db_query takes "payments" for a
doctype); with a table joined, a bare column both tables have ("name" in
count(name)) is 500 OperationalError 1052 "ambiguous" (lst-e3b).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.standin.errors import FrappeError
from edge.standin.meta import CHILD_TABLES, DEFAULT_FIELDS, raise_invalid_field

AGGREGATES = ("sum", "count", "avg", "min", "max")
_ALIAS = re.compile(r"^(?P<expr>.+?)\s+as\s+(?P<alias>[`'\"]?[\w ]+[`'\"]?)$", re.IGNORECASE | re.DOTALL)
_FUNCTION = re.compile(r"^(?P<fn>\w+)\s*\((?P<arg>.*)\)$", re.DOTALL)
_TABLE_COLUMN = re.compile(r"^`?tab(?P<table>[^`.]+)`?\.`?(?P<field>[\w]+)`?$")
_FIELD_COLUMN = re.compile(r"^`?(?P<table>\w+)`?\.`?(?P<field>\w+)`?$")
# columns every table has: ambiguous without a table once a child table is joined
_IN_EVERY_TABLE = DEFAULT_FIELDS - {"doctype"}


@dataclass(frozen=True)
class Column:
    """A column: `table` is the child doctype it comes from, None for the queried doctype."""

    table: str | None
    field: str


@dataclass(frozen=True)
class Selected:
    """One requested field: a column, or an aggregate `function` over `column` (None: count(*))."""

    key: str
    column: Column | None
    function: str | None = None
    bare: bool = False  # a column written without its table


def child_doctypes(doctype: str) -> dict[str, str]:
    """Child doctype -> the parent's table field holding it."""
    return {child: table for table, child in CHILD_TABLES.get(doctype, {}).items()}


def parse_column(doctype: str, text: str, *, in_function: bool = False) -> Column:
    """A column reference of a query on `doctype` (raises as Frappe would for a bad one)."""
    text = text.strip()
    if match := _TABLE_COLUMN.match(text):
        table, field = match["table"], match["field"]
        if table == doctype:
            return Column(None, field)
        if table in child_doctypes(doctype):
            return Column(table, field)
        raise_invalid_field(text)
    if match := _FIELD_COLUMN.match(text):
        tables = CHILD_TABLES.get(doctype, {})
        if in_function:
            # db_query.apply_fieldlevel_read_permissions reads "payments" as a doctype
            raise FrappeError("PermissionError", messages=[], exception=f"frappe.exceptions.PermissionError: {match['table']}")
        if match["table"] in tables:
            return Column(tables[match["table"]], match["field"])
        raise_invalid_field(text)
    bare = text.strip("`")
    if not re.fullmatch(r"\w+", bare):
        raise_invalid_field(text)
    return Column(None, bare)


def parse_field(doctype: str, text: str) -> Selected:
    """One entry of `fields`."""
    expr, alias = text.strip(), None
    if match := _ALIAS.match(expr):
        expr, alias = match["expr"].strip(), match["alias"].strip("`'\" ")
    if (match := _FUNCTION.match(expr)) and match["fn"].lower() in AGGREGATES:
        arg = match["arg"].strip()
        column = None if arg == "*" else parse_column(doctype, arg, in_function=True)
        bare = arg != "*" and not arg.lstrip("`").startswith("tab")
        return Selected(alias or expr, column, match["fn"].lower(), bare)
    column = parse_column(doctype, expr)
    return Selected(alias or column.field, column)


def check_ambiguous(selected: list[Selected], joined: set[str]) -> None:
    """MariaDB refuses a bare column that both the parent and a joined table have (error 1052).
    Frappe qualifies plain fields itself, but not the ones inside an aggregate."""
    if not joined:
        return
    for sel in selected:
        if sel.function and sel.bare and sel.column is not None and sel.column.field in _IN_EVERY_TABLE:
            raise FrappeError("OperationalError", messages=[], exception=(
                f"pymysql.err.OperationalError: (1052, \"Column '{sel.column.field}' in SELECT is ambiguous\")"))


def check_ambiguous_order(text: str, selected: set[str], joined: set[str]) -> None:
    """MariaDB resolves an unqualified ORDER BY column against the selected columns first; one
    that is not selected and is in both the parent and a joined table is error 1052 (recorded
    bc-join-bare-order-unselected; bc-join-bare-order, with modified and name selected, passes)."""
    if not joined:
        return
    for part in (p.strip() for p in text.split(",") if p.strip()):
        expr = part.rsplit(" ", 1)[0] if part.lower().endswith((" asc", " desc")) else part
        bare = expr.strip().strip("`")
        if "." not in bare and bare in _IN_EVERY_TABLE and bare not in selected:
            raise FrappeError("OperationalError", messages=[], exception=(
                f"pymysql.err.OperationalError: (1052, \"Column '{bare}' in ORDER BY is ambiguous\")"))


def parse_order(doctype: str, text: str) -> list[tuple[Column, bool]]:
    """`order_by` ("posting_time asc, name desc") as (column, descending) pairs."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        expr, _, direction = part.rpartition(" ") if part.lower().endswith((" asc", " desc")) else (part, "", "asc")
        out.append((parse_column(doctype, expr), direction.lower() == "desc"))
    return out
