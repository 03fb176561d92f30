"""POS end to end against a REAL ERPNext 15 site (the cases of tests/routes/test_pos_real_like.py,
which runs them against the stand-in): rounding, payment references, returns bound to the sale,
stock, closure windows in the site's time zone, POS Invoice shifts, exactly-once on po_no with
a tiny timeout, and the proxy's `cmd` refusal. Optional: see conftest.py for the variables."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.real_erpnext.conftest import COUNTER, MAIN, MISSING, SKIP_REASON, ZONE, Erp, log_of, new_id

if MISSING:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from tests.conftest import Gateway
from tests.routes.test_erpnext import assert_problem


def sale(rate: str = "24000", paid: str | None = None, qty: int = 1, item: str = "POSHO-5KG", **over: Any) -> dict[str, Any]:
    total = Decimal(rate) * qty
    return {"items": [{"item_code": item, "qty": qty, "rate": rate}],
            "payments": [{"method": "cash", "amount": paid if paid is not None else str(total)}],
            "till_id": "till-real", "client_txn_id": new_id("s"), **over}


def till(gw: Gateway, tenant: str = "shop1") -> tuple[str, str]:
    """A new till of `tenant` (branch main): (device id, token)."""
    device = new_id("till")
    r = gw.register(device, tenant=tenant, branch_id="main")
    assert r.status_code == 201, r.text
    return device, str(r.json()["token"])


def post(gw: Gateway, token: str, body: dict[str, Any], tenant: str = "shop1", kind: str = "sale", **kw: Any) -> Any:
    return gw.request("POST", f"/v1/{kind}", tenant=tenant, token=token, json=body, **kw)


def created(r: Any, gw: Gateway) -> dict[str, Any]:
    assert r.status_code == 201, f"{r.status_code} {r.text}\n--- gateway log:\n{log_of(gw)}"
    return dict(r.json())


# --------------------------------------------------------------------------- (a) (b) (c) (d) (h)


def test_a_sale_is_paid_against_erpnexts_rounded_total(gw: Gateway, erp: Erp) -> None:
    _, token = till(gw)
    # 24,000.60 paid 24,000.60: ERPNext would round it to 24,001 and book 0.40 outstanding
    problem = assert_problem(post(gw, token, sale("24000.60")), 422, "validation_failed")
    assert "rounds to 24001" in problem["errors"][0]["msg"], problem
    # 24,000.40 paid 24,000: ERPNext rounds down and calls it Paid
    out = created(post(gw, token, sale("24000.40", paid="24000")), gw)
    assert (out["rounded_total"], out["outstanding_amount"], out["status"]) == (24000, 0, "Paid"), out
    stored = erp.doc("Sales Invoice", out["invoice_id"])
    assert (stored["docstatus"], stored["status"], stored["rounded_total"], stored["outstanding_amount"]) == (
        1, "Paid", 24000, 0), stored
    out = created(post(gw, token, sale("24000.60", paid="24001")), gw)
    assert out["status"] == "Paid" and out["warnings"] == [], out
    assert erp.doc("Sales Invoice", out["invoice_id"])["status"] == "Paid"


def test_a_mobile_money_reference_is_the_payment_rows_reference_no(gw: Gateway, erp: Erp) -> None:
    _, token = till(gw)
    ref = new_id("MM")
    out = created(post(gw, token, sale(payments=[{"method": "momo", "amount": "24000", "reference": ref}])), gw)
    stored = erp.doc("Sales Invoice", out["invoice_id"])
    assert [(p["mode_of_payment"], p.get("reference_no")) for p in stored["payments"]] == [("Mobile Money", ref)]


def test_returns_are_bound_to_the_sale(gw: Gateway, erp: Erp) -> None:
    _, token = till(gw)
    sold = created(post(gw, token, sale(qty=2)), gw)
    row = erp.doc("Sales Invoice", sold["invoice_id"])["items"][0]["name"]

    def ret(qty: int, item: str = "POSHO-5KG", rate: str = "24000") -> Any:
        return post(gw, token, sale(rate=rate, qty=qty, item=item, return_against=sold["invoice_id"]), kind="return")

    def notes() -> list[str]:
        return [r["name"] for r in erp.rows("Sales Invoice", [["return_against", "=", sold["invoice_id"]]], ["name"])]

    note = created(ret(1), gw)
    assert note["status"] == "Return" and note["is_return"] is True, note  # never the stale "Draft"
    stored = erp.doc("Sales Invoice", note["invoice_id"])
    assert (stored["is_return"], stored["return_against"], stored["docstatus"]) == (1, sold["invoice_id"], 1)
    assert [(i["item_code"], i["qty"], i.get("sales_invoice_item")) for i in stored["items"]] == [
        ("POSHO-5KG", -1, row)]
    over = assert_problem(ret(5), 422, "erpnext_rejected")
    assert "cannot return 5 of POSHO-5KG at 24000: 1 of it remain to return" in over["detail"], over
    assert_problem(ret(1, item="SUGAR-1KG", rate="5000"), 422, "erpnext_rejected")  # never sold on it
    assert_problem(ret(1, rate="30000"), 422, "erpnext_rejected")  # dearer than it was sold
    assert notes() == [note["invoice_id"]]  # nothing of the refused returns reached ERPNext


def test_stock_erpnext_lacks_is_its_refusal(gw: Gateway, erp: Erp) -> None:
    _, token = till(gw)
    body = sale("1500", item="SALT-1KG")
    problem = assert_problem(post(gw, token, body), 422, "erpnext_rejected")
    assert problem["erpnext"]["exc_type"] == "NegativeStockError", problem
    assert problem["sale_state"] == "not_posted"
    assert erp.rows("Sales Invoice", [["custom_pos_edge_txn_id", "like", f"%/{body['client_txn_id']}"]], ["name"]) == []


def test_a_cmd_parameter_is_never_forwarded(gw: Gateway, erp: Erp) -> None:
    _, token = till(gw)
    ok = gw.request("GET", "/erpnext/Item", tenant="shop1", token=token,  # a site may hold thousands of items
                    params={"fields": '["name"]', "filters": '[["name", "=", "POSHO-5KG"]]'})
    assert ok.status_code == 200 and {"name": "POSHO-5KG"} in ok.json()["data"], ok.text  # the proxy reaches the site
    assert_problem(gw.request("GET", "/erpnext/Item?cmd=frappe.ping", tenant="shop1", token=token), 403,
                   "proxy_not_allowed")


# --------------------------------------------------------------------------- (e) closure window


def _clock(value: Any) -> tuple[int, int, int]:
    """A Frappe time read back ("2:00:00", "22:39:6.914147") as (h, m, s)."""
    h, m, s = (str(value).split(".")[0].split(":") + ["0", "0"])[:3]
    return int(h), int(m), int(s)


def _closure_day(erp: Erp) -> date:
    """A day for the 02:00 sale: after the stock arrived (a sale before it is NegativeStockError),
    before today (today's sales are every other test's), and, while one is left, a day on which
    no earlier run sold at 02:00. Picked from the clock, so that runs spread over the days."""
    first = erp.rows("Stock Ledger Entry", [["item_code", "=", "POSHO-5KG"], ["actual_qty", ">", 0],
                                            ["is_cancelled", "=", 0]], ["posting_date"], order_by="posting_date asc",
                     limit=1)
    assert first, "no stock of POSHO-5KG on the site"
    earliest = date.fromisoformat(str(first[0]["posting_date"])) + timedelta(days=1)
    today = Erp.now().date()
    days = [earliest + timedelta(days=n) for n in range((today - earliest).days)]
    assert days, f"no day between the stock's arrival ({earliest}) and today ({today})"
    sold = erp.rows("Sales Invoice", [["pos_profile", "=", MAIN], ["docstatus", "=", 1],
                                      ["posting_date", "between", [days[0].isoformat(), days[-1].isoformat()]]],
                    ["posting_date", "posting_time"])
    used = {str(r["posting_date"]) for r in sold if _clock(r["posting_time"]) == (2, 0, 0)}
    start = int(time.time() // 60) % len(days)
    ordered = days[start:] + days[:start]
    return next((d for d in ordered if d.isoformat() not in used), ordered[0])


def _sold_between(erp: Erp, day: date, start: tuple[int, int], end: tuple[int, int]) -> tuple[int, Decimal]:
    """ERPNext's own count and grand total of the POS Sales Invoices of Shop One Main on `day` from
    `start` to `end` (site time, inclusive), read over REST."""
    rows = erp.rows("Sales Invoice", [["pos_profile", "=", MAIN], ["docstatus", "=", 1], ["is_pos", "=", 1],
                                      ["posting_date", "=", day.isoformat()]], ["posting_time", "grand_total"])
    inside = [r for r in rows if (*start, 0) <= _clock(r["posting_time"]) <= (*end, 0)]
    return len(inside), sum((Decimal(str(r["grand_total"])) for r in inside), Decimal(0))


def test_a_closure_window_with_an_offset_is_read_in_the_sites_time_zone(gw: Gateway, erp: Erp) -> None:
    device, token = till(gw)
    day = _closure_day(erp)
    before, total_before = _sold_between(erp, day, (1, 0), (2, 30))
    out = created(post(gw, token, sale(posting_date=day.isoformat(), posting_time="02:00:00")), gw)
    stored = erp.doc("Sales Invoice", out["invoice_id"])
    assert (stored["posting_date"], _clock(stored["posting_time"])) == (day.isoformat(), (2, 0, 0)), stored
    eve = (day - timedelta(days=1)).isoformat()

    def close(start: str, end: str) -> dict[str, Any]:
        body = {"till_id": "till-real", "client_txn_id": new_id("c"), "period_start": start, "period_end": end,
                "balances": [{"method": "cash", "closing_amount": "24000"}]}
        return created(post(gw, token, body, kind="closure"), gw)

    # 02:00 in Kampala (UTC+3) is 23:00 UTC the day before
    utc = close(f"{eve}T22:00:00+00:00", f"{eve}T23:30:00+00:00")
    assert (utc["period_start"], utc["period_end"]) == (f"{day}T01:00:00", f"{day}T02:30:00"), utc
    assert utc["invoice_count"] == before + 1 == _sold_between(erp, day, (1, 0), (2, 30))[0], (utc, before)
    assert Decimal(str(utc["grand_total"])) == total_before + 24000
    naive = close(f"{day}T01:00:00", f"{day}T02:30:00")  # naive: site time
    assert naive["invoice_count"] == before + 1
    outside = close(f"{day}T00:00:00+00:00", f"{day}T01:00:00+00:00")  # 03:00-04:00 in Kampala
    assert outside["invoice_count"] == _sold_between(erp, day, (3, 0), (4, 0))[0], outside  # 0 unless by hand


# --------------------------------------------------------------------------- (f) shifts


@pytest.fixture
def no_open_shift(erp: Erp) -> None:
    """No POS Opening Entry left open (nor a POS Invoice left unconsolidated) on the profiles
    the shift tests use, whatever earlier runs left behind."""
    for profile in (COUNTER, MAIN):
        erp.close_shifts(profile)
        assert erp.open_entries(profile) == [] and erp.unconsolidated(profile) == []


def test_a_pos_invoice_shift_opens_sells_and_closes_by_its_opening_entry(gw: Gateway, erp: Erp,
                                                                           no_open_shift: None) -> None:
    _, token = till(gw, "counter")
    # a till that knows nothing of shifts: its first sale opens one (and carries paid_amount)
    first = created(post(gw, token, sale(), tenant="counter"), gw)
    entries = erp.open_entries(COUNTER)
    assert len(entries) == 1, entries
    entry = entries[0]["name"]
    assert erp.doc("POS Invoice", first["invoice_id"])["docstatus"] == 1
    opened = gw.request("POST", "/v1/opening", tenant="counter", token=token,
                        json={"till_id": "till-real", "balances": [{"method": "cash", "opening_amount": "50000"}]})
    out = created(opened, gw)
    assert out["created"] is False and out["opening_entry"] == entry, out  # the open shift is answered
    second = created(post(gw, token, sale("5000", item="SUGAR-1KG"), tenant="counter"), gw)
    end = datetime.now(ZONE).replace(microsecond=0) + timedelta(minutes=2)
    body = {"till_id": "till-real", "client_txn_id": new_id("c"),
            "period_start": "2026-01-01T00:00:00+03:00", "period_end": end.isoformat(),
            "balances": [{"method": "cash", "opening_amount": "50000", "closing_amount": "29000"}]}
    closed = created(post(gw, token, body, tenant="counter", kind="closure"), gw)
    closing = erp.doc("POS Closing Entry", closed["closing_entry"])
    assert closed["opening_entry"] == entry == closing["pos_opening_entry"], (closed, closing)
    assert closing["docstatus"] == 1 and closing["pos_profile"] == COUNTER
    assert sorted(t["pos_invoice"] for t in closing["pos_transactions"]) == sorted(
        [first["invoice_id"], second["invoice_id"]]), closing["pos_transactions"]
    assert closed["invoice_count"] == 2 and closed["grand_total"] == 29000 == closing["grand_total"], closed
    assert closed["methods"][0]["expected_amount"] == 29000, closed  # the shift opened at 0 (auto-opened)
    assert {"field": "opening_amount", "method": "cash", "till": "50000", "erpnext": "0"} in closed["differences"]
    assert erp.doc("POS Opening Entry", entry)["status"] == "Closed"
    assert {erp.doc("POS Invoice", n)["status"] for n in (first["invoice_id"], second["invoice_id"])} == {
        "Consolidated"}
    # the same closure again (its answer was lost): the entry it made, not a second one
    again = created(post(gw, token, {**body, "client_txn_id": new_id("c")}, tenant="counter", kind="closure"), gw)
    assert again["closing_entry"] == closed["closing_entry"], again
    assert len(erp.rows("POS Closing Entry", [["pos_opening_entry", "=", entry]], ["name"])) == 1
    # a sale after it opens a new shift
    third = created(post(gw, token, sale(), tenant="counter"), gw)
    entries = erp.open_entries(COUNTER)
    assert [e["name"] for e in entries] != [entry] and len(entries) == 1, entries
    # which closes with only its own sale
    body2 = {**body, "client_txn_id": new_id("c"), "period_end": (end + timedelta(minutes=1)).isoformat()}
    closed2 = created(post(gw, token, body2, tenant="counter", kind="closure"), gw)
    assert (closed2["opening_entry"], closed2["invoice_count"]) == (entries[0]["name"], 1), closed2
    assert [t["pos_invoice"] for t in erp.doc("POS Closing Entry", closed2["closing_entry"])["pos_transactions"]] == [
        third["invoice_id"]]
    # no shift open: nothing to close
    body3 = {**body, "client_txn_id": new_id("c"), "period_end": (end + timedelta(minutes=2)).isoformat()}
    problem = assert_problem(post(gw, token, body3, tenant="counter", kind="closure"), 422, "erpnext_rejected")
    assert "no open POS Opening Entry" in problem["detail"], problem


def test_without_auto_open_a_sale_needs_an_opened_shift(gw: Gateway, erp: Erp, no_open_shift: None) -> None:
    _, token = till(gw, "noauto")
    problem = assert_problem(post(gw, token, sale(), tenant="noauto"), 422, "erpnext_rejected")
    assert "POST /v1/opening" in problem["detail"], problem
    assert erp.open_entries(MAIN) == []  # nothing was opened for it
    opened = created(gw.request("POST", "/v1/opening", tenant="noauto", token=token,
                                json={"till_id": "till-real",
                                      "balances": [{"method": "cash", "opening_amount": "20000"}]}), gw)
    assert opened["created"] is True, opened
    assert opened["balances"] == [{"mode_of_payment": "Cash", "opening_amount": 20000}], opened
    entry = erp.doc("POS Opening Entry", opened["opening_entry"])
    assert (entry["status"], entry["pos_profile"], entry["docstatus"]) == ("Open", MAIN, 1), entry
    sold = created(post(gw, token, sale(), tenant="noauto"), gw)
    assert erp.doc("POS Invoice", sold["invoice_id"])["docstatus"] == 1
    # leave the profile as it was found: the shift closed, with this sale
    end = datetime.now(ZONE).replace(microsecond=0) + timedelta(minutes=1)
    closed = created(post(gw, token, {"till_id": "till-real", "client_txn_id": new_id("c"),
                                      "period_start": "2026-01-01T00:00:00+03:00", "period_end": end.isoformat(),
                                      "balances": [{"method": "cash", "opening_amount": "20000",
                                                    "closing_amount": "44000"}]},
                          tenant="noauto", kind="closure"), gw)
    assert (closed["opening_entry"], closed["invoice_count"], closed["methods"][0]["difference"]) == (
        opened["opening_entry"], 1, 0), closed
    assert erp.open_entries(MAIN) == []


# --------------------------------------------------------------------------- (g) exactly once on po_no


def test_a_timed_out_sale_on_po_no_is_booked_exactly_once(gw: Gateway, erp: Erp) -> None:
    """erpnext.timeout 0.3 s, reference_field po_no (not unique), commit_grace 20 s: a 30-row sale
    outlives the timeout (504, outcome unknown), ERPNext commits it anyway; every retry looks it
    up before anything is posted again."""
    device, token = till(gw, "pono")
    items = [{"item_code": "POSHO-5KG", "qty": 1, "rate": "24000"} if n % 2 == 0 else
             {"item_code": "SUGAR-1KG", "qty": 1, "rate": "5000"} for n in range(30)]
    body = {"items": items, "payments": [{"method": "cash", "amount": str(15 * 24000 + 15 * 5000)}],
            "till_id": "till-real", "client_txn_id": new_id("big")}
    reference = f"{device}/{body['client_txn_id']}"
    t0 = time.monotonic()
    first = post(gw, token, body, tenant="pono")
    problem = assert_problem(first, 504, "upstream_timeout")
    assert problem["sale_state"] == "unknown", problem
    answers: list[tuple[float, int, str]] = []
    final = None
    while time.monotonic() - t0 < 90:
        r = post(gw, token, body, tenant="pono")
        answers.append((round(time.monotonic() - t0, 2), r.status_code, r.json().get("code", "")))
        if r.status_code == 201:
            final = r.json()
            break
        assert (r.status_code, r.json().get("code")) == (503, "sale_outcome_unknown"), (
            f"{r.status_code} {r.text}\nanswers so far: {answers}\n--- gateway log:\n{log_of(gw)}")
        time.sleep(min(1.0, float(r.headers.get("Retry-After", "1"))))
    assert final is not None, f"no 201 within 90 s: {answers}"
    held = erp.rows("Sales Invoice", [["po_no", "=", reference]], ["name", "docstatus", "grand_total"])
    assert held == [{"name": final["invoice_id"], "docstatus": 1, "grand_total": 435000}], held
    assert len(erp.doc("Sales Invoice", final["invoice_id"])["items"]) == 30
    # after commit_grace, another attempt (another key) still finds it and posts nothing
    time.sleep(max(0.0, 21 - (time.monotonic() - t0)))
    late = created(post(gw, token, body, tenant="pono", headers={"Idempotency-Key": new_id("k")}), gw)
    assert late["invoice_id"] == final["invoice_id"]
    assert len(erp.rows("Sales Invoice", [["po_no", "=", reference]], ["name"])) == 1, answers
    print(f"po_no exactly-once: first 504 after the 0.3 s timeout, then {answers}")


# --------------------------------------------------------------------------- master data (issue 12)


def test_master_data_comes_from_the_real_site_and_follows_its_changes(gw: Gateway, erp: Erp) -> None:
    """/v1/init and the deltas against real ERPNext list calls: the stocked items with their
    Standard Selling prices, the POS Profile's settings in UGX; then an item made, re-priced,
    disabled and deleted on the site shows up in the deltas (Deleted Document included)."""
    _, token = till(gw)

    def get(path: str) -> dict[str, Any]:
        r = gw.request("GET", path, tenant="shop1", token=token)
        assert r.status_code == 200, f"{r.status_code} {r.text}\n--- gateway log:\n{log_of(gw)}"
        return dict(r.json())

    def rest(page: dict[str, Any]) -> dict[str, Any]:
        """A page and every page after it (`next`), merged: a site may hold thousands of items."""
        items, deleted = list(page["items"]), list(page["deleted"])
        while page["next"] is not None:
            page = get(page["next"])
            items += page["items"]
            deleted += page["deleted"]
        return {"items": items, "deleted": deleted, "cursor": page["cursor"]}

    init = get("/v1/init")
    assert init["settings"]["currency"] == "UGX" and init["settings"]["pos_profile"] == MAIN
    assert {"method": "cash", "mode_of_payment": "Cash", "default": True} in init["settings"]["payment_methods"]
    whole = {name: rest(init[name]) for name in ("products", "prices", "customers")}
    codes = {p["item_code"] for p in whole["products"]["items"]}
    assert {"POSHO-5KG", "SUGAR-1KG", "SALT-1KG"} <= codes, codes
    rates = {p["item_code"]: p["price_list_rate"] for p in whole["prices"]["items"]}
    assert (rates.get("POSHO-5KG"), rates.get("SUGAR-1KG")) == (24000, 5000), rates
    assert "Walk-in Customer" in {c["customer"] for c in whole["customers"]["items"]}
    cursors = {name: whole[name]["cursor"] for name in ("products", "prices")}

    code = new_id("MD").upper()
    erp.insert("Item", {"item_code": code, "item_name": f"Master data {code}", "item_group": "Products",
                        "stock_uom": "Nos", "is_stock_item": 0})
    price = erp.insert("Item Price", {"item_code": code, "price_list": "Standard Selling", "price_list_rate": 700})

    def until(path: str, done: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 60  # the tenant's freshness is 2 s here
        while True:
            body = rest(get(path))
            if done(body):
                return body
            assert time.monotonic() < deadline, body
            time.sleep(2)

    added = until(f"/v1/products?since={cursors['products']}",
                  lambda b: any(p["item_code"] == code for p in b["items"]))
    priced = until(f"/v1/prices?since={cursors['prices']}", lambda b: any(p["item_code"] == code for p in b["items"]))
    assert [p["price_list_rate"] for p in priced["items"] if p["item_code"] == code] == [700]
    erp.call("PUT", f"/api/resource/Item/{code}", json={"disabled": 1})
    gone = until(f"/v1/products?since={added['cursor']}", lambda b: code in b["deleted"])
    assert all(p["item_code"] != code for p in gone["items"])
    erp.call("DELETE", f"/api/resource/Item Price/{price['name']}")
    until(f"/v1/prices?since={priced['cursor']}", lambda b: price["name"] in b["deleted"])
