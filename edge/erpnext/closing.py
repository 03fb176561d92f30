"""End-of-period closures: ERPNext's takings per payment method, and, for tenants on
POS Invoices, the POS Closing Entry that closes the branch's shift.

The invoices are read in a few list calls, never one by one: their headers a page
at a time (keyset paging by name, so a page never shifts under a new invoice), and
each page's payment rows in one call selecting the child table's fields (Frappe
answers one row per payment row; tests/fixtures/real_erpnext/pos/lists.json).

Times: ERPNext stamps and compares posting times in the site's time zone. A period
given with a UTC offset is converted to it; a naive one is site time.

A POS Closing Entry (pos_closing.json) closes one POS Opening Entry; ERPNext takes
its period start, profile and user from that entry, consolidates exactly the POS
Invoices listed in `pos_transactions` (it never selects them itself), and stores
the totals and payment reconciliation as sent. So the gateway lists the shift's
unconsolidated invoices, sends their totals, and answers with what ERPNext stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from edge.erpnext.client import ErpnextClient, Unreachable
from edge.sales import Closure

PAGE = 1000  # invoices per list call
_HEADER = ["name", "posting_date", "posting_time", "grand_total", "net_total", "total_qty", "change_amount"]


@dataclass
class Takings:
    """The invoices a closure covers, and what they took per Mode of Payment."""

    names: list[str] = field(default_factory=list)
    grand_total: Decimal = Decimal(0)
    net_total: Decimal = Decimal(0)
    total_qty: Decimal = Decimal(0)
    by_mode: dict[str, Decimal] = field(default_factory=dict)


def site_time(moment: datetime, zone: ZoneInfo | None) -> datetime:
    """`moment` as the site's naive local time (naive: already site time)."""
    if moment.tzinfo is None or zone is None:
        return moment.replace(tzinfo=None)
    return moment.astimezone(zone).replace(tzinfo=None)


def posting_moment(row: dict[str, Any]) -> datetime | None:
    """An invoice's posting date and time. Frappe writes times unpadded ("9:05:07",
    "22:39:6.914147") in answers read back."""
    try:
        clock = str(row.get("posting_time") or "0:0:0").split(".")[0].split(":")
        hh, mm, ss = (int(x) for x in (clock + ["0", "0"])[:3])
        return datetime.fromisoformat(str(row.get("posting_date"))).replace(hour=hh, minute=mm, second=ss)
    except (ValueError, TypeError):
        return None


async def takings(client: ErpnextClient, doctype: str, filters: list[list[Any]],
                  window: tuple[datetime, datetime] | None = None) -> Takings:
    """The invoices matching `filters` (posted inside `window`, site time, when given),
    with their totals and payments per Mode of Payment net of the change given back in cash."""
    out = Takings()
    after: list[list[Any]] = []  # the names of later pages come after the last one read
    while True:
        rows = await client.find(doctype, [*filters, *after], _HEADER, limit=PAGE, order_by="name asc")
        if not rows:
            return out
        last = str(rows[-1]["name"])
        inside = {str(r["name"]): r for r in rows if window is None or _within(r, window)}
        if inside:
            # this page's payment rows: the same filters over the page's range of names (a range,
            # not a list of a thousand names, so the database walks its index once)
            payments = await client.find(doctype, [*filters, *after, ["name", "<=", last]],
                                         ["name", "payments.mode_of_payment", "payments.amount"], limit=0)
            _add(out, inside, [p for p in payments if str(p.get("name")) in inside])
        if len(rows) < PAGE:
            return out
        after = [["name", ">", last]]


def _within(row: dict[str, Any], window: tuple[datetime, datetime]) -> bool:
    moment = posting_moment(row)
    return moment is None or window[0] <= moment <= window[1]


def _add(out: Takings, headers: dict[str, dict[str, Any]], payments: list[dict[str, Any]]) -> None:
    change_left = {name: _dec(h.get("change_amount")) for name, h in headers.items()}
    for name, h in headers.items():
        out.names.append(name)
        out.grand_total += _dec(h.get("grand_total"))
        out.net_total += _dec(h.get("net_total"))
        out.total_qty += _dec(h.get("total_qty"))
    for p in payments:
        mop, name = p.get("mode_of_payment"), str(p.get("name"))
        if not mop:
            continue  # an invoice without payment rows (a credit sale)
        amount = _dec(p.get("amount"))
        if change_left.get(name) and _is_cash(mop):
            amount, change_left[name] = amount - change_left[name], Decimal(0)  # change goes back in cash
        out.by_mode[mop] = out.by_mode.get(mop, Decimal(0)) + amount


def reconcile(closure: Closure, cfg: Any, taken: Takings, opening: dict[str, Decimal] | None = None,
              ) -> list[dict[str, Any]]:
    """Per method: opening (the shift's, else the till's), ERPNext's takings, expected, counted, difference."""
    out = []
    for b in closure.balances:
        mop = cfg.payment_methods[b.method]
        start = opening.get(mop, Decimal(0)) if opening is not None else b.opening_amount
        got = taken.by_mode.get(mop, Decimal(0))
        out.append({
            "method": b.method, "mode_of_payment": mop, "opening_amount": start, "erpnext_amount": got,
            "expected_amount": start + got, "closing_amount": b.closing_amount,
            "difference": b.closing_amount - (start + got),
        })
    return out


def closing_entry(entry: str, company: str, end: datetime, taken: Takings, methods: list[dict[str, Any]]) -> dict[str, Any]:
    """A submitted POS Closing Entry for the POS Opening Entry `entry`, ending at `end` (site time)."""
    return {
        "pos_opening_entry": entry,
        "company": company,
        "period_end_date": end.replace(microsecond=0).isoformat(sep=" "),
        "posting_date": end.date().isoformat(),
        "docstatus": 1,
        "grand_total": taken.grand_total,
        "net_total": taken.net_total,
        "total_quantity": taken.total_qty,
        "pos_transactions": [{"pos_invoice": name} for name in taken.names],
        "payment_reconciliation": [
            {"mode_of_payment": m["mode_of_payment"], "opening_amount": m["opening_amount"],
             "expected_amount": m["expected_amount"], "closing_amount": m["closing_amount"],
             "difference": m["difference"]}
            for m in methods
        ],
    }


def stored_methods(closure: Closure, cfg: Any, stored: dict[str, Any], taken: Takings) -> list[dict[str, Any]]:
    """The per-method figures as ERPNext stored them on the closing entry, by the till's methods."""
    rows = {r.get("mode_of_payment"): r for r in stored.get("payment_reconciliation") or []}
    out = []
    for b in closure.balances:
        mop = cfg.payment_methods[b.method]
        row = rows.get(mop, {})
        opening, expected = _dec(row.get("opening_amount")), _dec(row.get("expected_amount"))
        out.append({"method": b.method, "mode_of_payment": mop, "opening_amount": opening,
                    "erpnext_amount": taken.by_mode.get(mop, expected - opening),
                    "expected_amount": expected, "closing_amount": _dec(row.get("closing_amount")),
                    "difference": _dec(row.get("difference"))})
    return out


def opening_balances(entry: dict[str, Any]) -> dict[str, Decimal]:
    """A POS Opening Entry's opening amount per Mode of Payment."""
    out: dict[str, Decimal] = {}
    for row in entry.get("balance_details") or []:
        mop = row.get("mode_of_payment")
        out[mop] = out.get(mop, Decimal(0)) + _dec(row.get("opening_amount"))
    return out


def _dec(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _is_cash(mode_of_payment: str | None) -> bool:
    return (mode_of_payment or "").lower() == "cash"


class NoOpenShift(Exception):
    """A POS Invoice tenant's branch has no open POS Opening Entry to close."""


class Closer:
    """Closes a till's period for one tenant (see the module docstring)."""

    def __init__(self, client: ErpnextClient, cfg: Any, site: Any, shifts: Any) -> None:
        self.client, self.cfg, self.site, self.shifts = client, cfg, site, shifts

    async def close(self, closure: Closure, reference: str) -> dict[str, Any]:
        """The closure's figures (ClosureView fields); a submitted POS Closing Entry on POS Invoice tenants."""
        zone = await self.site.time_zone()
        start, end = site_time(closure.period_start, zone), site_time(closure.period_end, zone)
        profile = self.cfg.branches[closure.branch_id].pos_profile
        view: dict[str, Any] = {
            "closure_id": f"CLS-{reference}", "closing_entry": None, "opening_entry": None,
            "branch_id": closure.branch_id, "till_id": closure.till_id,
            "period_start": start.isoformat(), "period_end": end.isoformat(),
        }
        if self.cfg.invoice_doctype == "POS Invoice":
            return {**view, **await self._close_shift(closure, profile, start, end)}
        taken = await takings(self.client, "Sales Invoice", [
            ["pos_profile", "=", profile], ["docstatus", "=", 1], ["is_pos", "=", 1],
            ["posting_date", "between", [start.date().isoformat(), end.date().isoformat()]]], (start, end))
        return {**view, "invoice_count": len(taken.names), "grand_total": taken.grand_total,
                "methods": reconcile(closure, self.cfg, taken)}

    async def _close_shift(self, closure: Closure, profile: str, start: datetime, end: datetime) -> dict[str, Any]:
        # A closure sent again (its answer was lost) finds the entry it made: the profile
        # and the period's end are its natural key.
        stored = await self._closing_for(profile, end)
        if stored is None:
            entries = await self.shifts.open_entries(profile)
            names = [str(e["name"]) for e in entries]
            target = closure.opening_entry or (names[0] if names else None)
            if target is None or target not in names:
                raise NoOpenShift(f"branch {closure.branch_id} has no open POS Opening Entry"
                                  + (f" named {target}" if target else "") + " to close")
            opening = await self.client.get_doc("POS Opening Entry", target)
            balances = opening_balances(opening or {})
            taken = await takings(self.client, "POS Invoice", [
                ["pos_profile", "=", profile], ["docstatus", "=", 1], ["status", "!=", "Consolidated"]],
                (datetime.min, end))
            doc = closing_entry(target, self.cfg.company, end, taken, reconcile(closure, self.cfg, taken, balances))
            stored = await self._insert(doc, profile, end)
            warnings = await self._close_others(names, target, end)
        else:
            taken, warnings = Takings(names=[str(r.get("pos_invoice")) for r in stored.get("pos_transactions") or []]), []
        return {
            "closure_id": stored["name"], "closing_entry": stored["name"],
            "opening_entry": stored.get("pos_opening_entry"),
            "period_start": _site_text(stored.get("period_start_date")) or start.isoformat(),
            "invoice_count": len(stored.get("pos_transactions") or []),
            "grand_total": _dec(stored.get("grand_total")),
            "methods": stored_methods(closure, self.cfg, stored, taken),
            "differences": _differences(closure, self.cfg, stored, start),
            "warnings": warnings,
        }

    async def _insert(self, doc: dict[str, Any], profile: str, end: datetime) -> dict[str, Any]:
        try:
            created: dict[str, Any] = await self.client.insert("POS Closing Entry", doc)
            return created
        except Unreachable as exc:
            if not exc.sent:
                raise
            found = await self._closing_for(profile, end)  # committed, answer lost?
            if found is None:
                raise
            return found

    async def _closing_for(self, profile: str, end: datetime) -> dict[str, Any] | None:
        rows = await self.client.find("POS Closing Entry", [
            ["pos_profile", "=", profile], ["period_end_date", "=", end.replace(microsecond=0).isoformat(sep=" ")],
            ["docstatus", "=", 1]], ["name"], limit=1)
        return await self.client.get_doc("POS Closing Entry", str(rows[0]["name"])) if rows else None

    async def _close_others(self, names: list[str], target: str, end: datetime) -> list[str]:
        # Replicas racing at a shift's first sale can open two entries for one profile:
        # close the extra ones too (empty), so the next shift starts from none.
        warnings = []
        for name in names:
            if name == target:
                continue
            try:
                await self.client.insert("POS Closing Entry", {"pos_opening_entry": name, "company": self.cfg.company,
                                                               "period_end_date": end.isoformat(sep=" "),
                                                               "docstatus": 1})
                warnings.append(f"POS Opening Entry {name} was open too; it is closed now, empty")
            except Exception as exc:  # best effort: the shift's own closing stands
                warnings.append(f"POS Opening Entry {name} is still open: {exc}")
        return warnings


def _differences(closure: Closure, cfg: Any, stored: dict[str, Any], start: datetime) -> list[dict[str, Any]]:
    """Where ERPNext's closing entry is not what the till sent: the shift's start (ERPNext
    takes it from the opening entry) and each method's opening amount."""
    out = []
    erp_start = _site_text(stored.get("period_start_date"))
    if erp_start and erp_start != start.isoformat():
        out.append({"field": "period_start", "till": start.isoformat(), "erpnext": erp_start})
    rows = {r.get("mode_of_payment"): r for r in stored.get("payment_reconciliation") or []}
    for b in closure.balances:
        row = rows.get(cfg.payment_methods[b.method])
        if row is not None and _dec(row.get("opening_amount")) != b.opening_amount:
            out.append({"field": "opening_amount", "method": b.method, "till": _text(b.opening_amount),
                        "erpnext": _text(_dec(row.get("opening_amount")))})
    return out


def _site_text(value: Any) -> str | None:
    """A Frappe datetime ("2026-11-28 22:37:37[.123]") as ISO 8601 text."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).replace(microsecond=0).isoformat()
    except ValueError:
        return str(value)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f")
