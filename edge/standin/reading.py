"""How a stored document reads back: typed values of Time, Datetime and Date fields.

An insert answers with the document as it was in memory, so a posting_time
reads as it was sent ("9:5:7") or computed ("22:39:06.914147"). Read back
from MariaDB (GET, list, a whitelisted method's as_dict) a Time is a
timedelta that Frappe writes with the hour unpadded, minutes in two digits
and seconds in two digits only when whole: "9:05:07", "23:30:00",
"22:39:6.914147" (recorded pt-a2, pt-b7, rnd-e2-get); a Datetime is written
like Python's str(datetime) ("2026-11-28 00:00:00" for a POS Closing Entry's
period_end_date given as a date, recorded close-f). Filters and ordering on
these fields compare the values, not the text (posting_time >= "23:00:00"
keeps "23:30:00" and drops "9:05:07").

The field types are a fieldname table shared by the stand-in's modelled
doctypes (a simplification: these names have one type across them).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

TIME_FIELDS = frozenset({"posting_time"})
DATETIME_FIELDS = frozenset({"creation", "modified", "period_start_date", "period_end_date"})
DATE_FIELDS = frozenset({"posting_date", "due_date", "po_date", "valid_from", "valid_upto"})


def parse_time(value: Any) -> timedelta | None:
    """A Time value ("9:5:7", "22:39:06.914147") as a timedelta; None when it is not one."""
    parts = str(value).strip().split(":")
    if len(parts) not in (2, 3):
        return None
    try:
        hours, minutes = int(parts[0]), int(parts[1])
        seconds = Decimal(parts[2]) if len(parts) == 3 else Decimal(0)
    except (ValueError, InvalidOperation):
        return None
    micro = int((seconds * 1_000_000).to_integral_value())
    return timedelta(hours=hours, minutes=minutes, microseconds=micro)


def parse_datetime(value: Any) -> datetime | None:
    """A Datetime or Date value ("2026-11-28 9:5:7", "2026-11-28") as a datetime; None when not one."""
    text = str(value).strip()
    day, _, clock = text.replace("T", " ").partition(" ")
    try:
        base = datetime.combine(date.fromisoformat(day), datetime.min.time())
    except ValueError:
        return None
    if not clock:
        return base
    delta = parse_time(clock)
    return None if delta is None else base + delta


def format_time(value: Any) -> Any:
    """A Time as Frappe writes a timedelta read from the database (see the module docstring)."""
    delta = parse_time(value) if value not in (None, "") else None
    if delta is None:
        return value
    total = delta.total_seconds()
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    seconds = round(seconds, 6)
    shown = int(seconds) if seconds == int(seconds) else seconds
    return f"{int(hours)}:{int(minutes):02}:{shown:02}"


def format_datetime(value: Any) -> Any:
    """A Datetime as str(datetime): microseconds only when there are some."""
    parsed = parse_datetime(value) if value not in (None, "") else None
    return value if parsed is None else str(parsed)


def format_date(value: Any) -> Any:
    """A Date as 'YYYY-MM-DD'."""
    parsed = parse_datetime(value) if value not in (None, "") else None
    return value if parsed is None else parsed.date().isoformat()


def read_value(fieldname: str, value: Any) -> Any:
    """`value` of `fieldname` as it reads back from the database."""
    if fieldname in TIME_FIELDS:
        return format_time(value)
    if fieldname in DATETIME_FIELDS:
        return format_datetime(value)
    if fieldname in DATE_FIELDS:
        return format_date(value)
    return value


def read_doc(doc: dict[str, Any], *, drop_nulls: bool) -> dict[str, Any]:
    """The document (child rows too) as read back. `drop_nulls`: Frappe's answer for a
    document leaves null fields out (json_handler uses as_dict(no_nulls=True)); a method
    returning doc.as_dict() keeps them."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, list):
            out[key] = [read_doc(row, drop_nulls=drop_nulls) if isinstance(row, dict) else row for row in value]
        elif value is None and drop_nulls:
            continue
        else:
            out[key] = read_value(key, value)
    return out


def answer_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as an insert/save answer carries it: values as in memory, nulls left out."""
    return {k: ([answer_doc(r) if isinstance(r, dict) else r for r in v] if isinstance(v, list) else v)
            for k, v in doc.items() if v is not None}


def sort_value(fieldname: str, value: Any) -> Any:
    """A comparable value for filters and ordering on a typed field (None when not typed or not parsable)."""
    if value in (None, ""):
        return None
    if fieldname in TIME_FIELDS:
        return parse_time(value)
    if fieldname in DATETIME_FIELDS or fieldname in DATE_FIELDS:
        return parse_datetime(value)
    return None
