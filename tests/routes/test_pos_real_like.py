"""POS end to end against a stand-in site shaped like the real ERPNext 15 the POS facts were
recorded on (edge/standin/seed_real.py: UGX without minor units, Africa/Kampala, stock, POS
Profiles, and the real site's strict rules: a POS Invoice needs paid_amount and an open
POS Opening Entry; a POS Closing Entry closes by opening entry). What failed for a real shop
before: shifts, returns bound to the sale, rounding, the site's time zone, stock."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from edge.standin import StandIn, StandInServer
from edge.standin.custom_fields import ensure_custom_field
from edge.standin.seed_real import real_like_site
from tests.conftest import Gateway, base_config, start_gateway
from tests.routes.test_erpnext import assert_problem

SITE = "pos.uganda.test"
KEY, SECRET = "key-ug", "secret-ug"


@pytest.fixture(scope="module")
def uganda() -> Iterator[StandInServer]:
    site = real_like_site(SITE, KEY, SECRET)
    for doctype in ("Sales Invoice", "POS Invoice"):
        ensure_custom_field(site, doctype, "custom_pos_edge_txn_id", unique=True)
    server = StandInServer(StandIn([site]))
    server.start()
    yield server
    server.stop()


def tenant(doctype: str, profile: str, url: str, **over: Any) -> dict[str, Any]:
    return {
        "name": f"Uganda {doctype}",
        "erpnext": {"url": url, "site_name": SITE, "api_key": KEY, "api_secret": SECRET},
        "company": "Shop One Ltd", "invoice_doctype": doctype, "default_customer": "Walk-in Customer",
        "payment_methods": {"cash": "Cash", "momo": "Mobile Money"},
        "branches": {"main": {"pos_profile": profile, "warehouse": "Stores - S1", "cost_center": "Main - S1"}},
        **over,
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, uganda: StandInServer) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gw-uganda")
    cfg = base_config(tmp, uganda.url)
    cfg["tenants"] = {
        "shop1": tenant("Sales Invoice", "Shop One Main", uganda.url),
        "shop2": tenant("POS Invoice", "Shop One Counter", uganda.url),
        "shop3": tenant("POS Invoice", "Shop One Main", uganda.url, auto_open_shift=False),
    }
    gateway = start_gateway(tmp, cfg)
    yield gateway
    gateway.stop()


@pytest.fixture
def site(uganda: StandInServer) -> Any:
    uganda.standin.reset()
    return uganda.standin.sites[SITE]


def sale(rate: str = "24000", paid: str | None = None, qty: int = 1, item: str = "POSHO-5KG", **over: Any) -> dict[str, Any]:
    total = Decimal(rate) * qty
    return {"items": [{"item_code": item, "qty": qty, "rate": rate}],
            "payments": [{"method": "cash", "amount": paid if paid is not None else str(total)}],
            "till_id": "till-ug", "client_txn_id": f"ug-{uuid.uuid4().hex[:10]}", **over}


def till(gw: Gateway, tenant: str = "shop1") -> str:
    """A new till's token (its branch: main, every tenant's here)."""
    r = gw.register(f"till-{uuid.uuid4().hex[:6]}", tenant=tenant, branch_id="main")
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def post(gw: Gateway, token: str, body: dict[str, Any], tenant: str = "shop1", kind: str = "sale") -> Any:
    return gw.request("POST", f"/v1/{kind}", tenant=tenant, token=token, json=body)


def doc(site: Any, doctype: str, name: str) -> dict[str, Any]:
    return site.docs[doctype][name]


def test_a_sale_is_paid_against_erpnexts_rounded_total(gw: Gateway, site: Any) -> None:
    token = till(gw)
    # 24,000.60 paid 24,000.60: ERPNext would book 0.40 outstanding ("Partly Paid"), a credit sale
    problem = assert_problem(post(gw, token, sale("24000.60")), 422, "validation_failed")
    assert "rounds to 24001" in problem["errors"][0]["msg"]
    # 24,000.40 paid 24,000: ERPNext rounds down and calls it Paid
    r = post(gw, token, sale("24000.40", paid="24000"))
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["rounded_total"], out["outstanding_amount"], out["status"]) == (24000, 0, "Paid")
    r = post(gw, token, sale("24000.60", paid="24001"))
    assert r.status_code == 201 and r.json()["status"] == "Paid" and r.json()["warnings"] == []


def test_a_mobile_money_reference_is_the_payment_rows_reference_no(gw: Gateway, site: Any) -> None:
    token = till(gw)
    body = sale(payments=[{"method": "momo", "amount": "24000", "reference": "MM-REF-77"}])
    r = post(gw, token, body)
    assert r.status_code == 201, r.text
    stored = doc(site, "Sales Invoice", r.json()["invoice_id"])
    assert [p.get("reference_no") for p in stored["payments"]] == ["MM-REF-77"]


def test_returns_are_bound_to_the_sale(gw: Gateway, site: Any) -> None:
    token = till(gw)
    sold = post(gw, token, sale(qty=2)).json()
    row = doc(site, "Sales Invoice", sold["invoice_id"])["items"][0]["name"]

    def ret(qty: int, item: str = "POSHO-5KG", rate: str = "24000") -> Any:
        body = sale(rate=rate, qty=qty, item=item, return_against=sold["invoice_id"])
        return post(gw, token, body, kind="return")

    first = ret(1)
    assert first.status_code == 201, first.text
    note = first.json()
    assert note["status"] == "Return" and note["messages"] == []  # never the stale "Draft"; nothing unchecked
    assert [i["sales_invoice_item"] for i in doc(site, "Sales Invoice", note["invoice_id"])["items"]] == [row]
    before = len(site.docs["Sales Invoice"])
    over = assert_problem(ret(5), 422, "erpnext_rejected")
    assert "cannot return 5 of POSHO-5KG at 24000: 1 of it remain to return" in over["detail"]
    assert_problem(ret(1, item="SUGAR-1KG", rate="5000"), 422, "erpnext_rejected")
    assert_problem(ret(1, rate="30000"), 422, "erpnext_rejected")  # dearer than it was sold
    assert len(site.docs["Sales Invoice"]) == before
    assert ret(1).status_code == 201
    assert "0 of it remain" in assert_problem(ret(1), 422, "erpnext_rejected")["detail"]


def test_stock_ERPNext_lacks_is_its_refusal(gw: Gateway, site: Any) -> None:
    token = till(gw)
    problem = assert_problem(post(gw, token, sale("1500", item="SALT-1KG")), 422, "erpnext_rejected")
    assert problem["erpnext"]["exc_type"] == "NegativeStockError"


def test_a_closure_window_with_an_offset_is_read_in_the_sites_time_zone(gw: Gateway, site: Any) -> None:
    token = till(gw)
    day = "2026-03-14"  # a day no other test posts on
    r = post(gw, token, sale(posting_date=day, posting_time="02:00:00"))  # 02:00 in Kampala = 23:00 UTC the day before
    assert r.status_code == 201, r.text

    def close(start: str, end: str) -> dict[str, Any]:
        body = {"till_id": "till-ug", "client_txn_id": f"c-{uuid.uuid4().hex[:8]}", "period_start": start,
                "period_end": end, "balances": [{"method": "cash", "closing_amount": "24000"}]}
        out = post(gw, token, body, kind="closure")
        assert out.status_code == 201, out.text
        return out.json()

    utc = close("2026-03-13T22:00:00+00:00", "2026-03-13T23:30:00+00:00")
    assert (utc["invoice_count"], utc["period_start"], utc["period_end"]) == (1, "2026-03-14T01:00:00",
                                                                              "2026-03-14T02:30:00")
    assert close("2026-03-14T01:00:00", "2026-03-14T02:30:00")["invoice_count"] == 1  # naive: site time
    assert close("2026-03-14T00:00:00+00:00", "2026-03-14T01:00:00+00:00")["invoice_count"] == 0


def test_a_pos_invoice_shift_opens_sells_and_closes_by_its_opening_entry(gw: Gateway, site: Any) -> None:
    token = till(gw, "shop2")
    open_entries = lambda: [e for e in site.docs.get("POS Opening Entry", {}).values()  # noqa: E731
                            if e["pos_profile"] == "Shop One Counter" and e["status"] == "Open"]
    assert open_entries() == []
    # a till that knows nothing of shifts: its first sale opens one (and carries paid_amount)
    first = post(gw, token, sale(), tenant="shop2")
    assert first.status_code == 201, first.text
    assert len(open_entries()) == 1
    opened = gw.request("POST", "/v1/opening", tenant="shop2", token=token,
                        json={"till_id": "till-ug", "balances": [{"method": "cash", "opening_amount": "50000"}]})
    assert opened.status_code == 201 and opened.json()["created"] is False  # the shift was open: it is answered
    entry = opened.json()["opening_entry"]
    second = post(gw, token, sale("5000", item="SUGAR-1KG"), tenant="shop2")
    assert second.status_code == 201
    body = {"till_id": "till-ug", "client_txn_id": f"c-{uuid.uuid4().hex[:8]}",
            "period_start": "2026-01-01T00:00:00+03:00", "period_end": "2099-01-01T00:00:00+03:00",
            "balances": [{"method": "cash", "opening_amount": "50000", "closing_amount": "29000"}]}
    closed = post(gw, token, body, tenant="shop2", kind="closure")
    assert closed.status_code == 201, closed.text
    out = closed.json()
    closing = doc(site, "POS Closing Entry", out["closing_entry"])
    assert out["opening_entry"] == entry == closing["pos_opening_entry"]
    assert sorted(t["pos_invoice"] for t in closing["pos_transactions"]) == sorted(
        [first.json()["invoice_id"], second.json()["invoice_id"]])
    assert out["invoice_count"] == 2 and out["grand_total"] == 29000 == closing["grand_total"]
    assert out["methods"][0]["expected_amount"] == 29000  # the shift opened at 0 (auto-opened)
    assert {"field": "opening_amount", "method": "cash", "till": "50000", "erpnext": "0"} in out["differences"]
    assert doc(site, "POS Opening Entry", entry)["status"] == "Closed"
    assert {doc(site, "POS Invoice", n)["status"] for n in (first.json()["invoice_id"], second.json()["invoice_id"])} \
        == {"Consolidated"}
    # the same closure again (its answer was lost): the entry it made, not a second one
    again = post(gw, token, {**body, "client_txn_id": f"c-{uuid.uuid4().hex[:8]}"}, tenant="shop2", kind="closure")
    assert again.status_code == 201 and again.json()["closing_entry"] == out["closing_entry"]
    # the next shift closes only its own sales
    third = post(gw, token, sale(), tenant="shop2")
    assert third.status_code == 201 and len(open_entries()) == 1
    body2 = {**body, "client_txn_id": f"c-{uuid.uuid4().hex[:8]}", "period_end": "2099-01-02T00:00:00+03:00"}
    closed2 = post(gw, token, body2, tenant="shop2", kind="closure").json()
    assert closed2["opening_entry"] != entry and closed2["invoice_count"] == 1
    # no shift open: nothing to close
    body3 = {**body, "client_txn_id": f"c-{uuid.uuid4().hex[:8]}", "period_end": "2099-01-03T00:00:00+03:00"}
    problem = assert_problem(post(gw, token, body3, tenant="shop2", kind="closure"), 422, "erpnext_rejected")
    assert "no open POS Opening Entry" in problem["detail"]


def test_without_auto_open_a_sale_needs_an_opened_shift(gw: Gateway, site: Any) -> None:
    token = till(gw, "shop3")
    problem = assert_problem(post(gw, token, sale(), tenant="shop3"), 422, "erpnext_rejected")
    assert "POST /v1/opening" in problem["detail"]
    opened = gw.request("POST", "/v1/opening", tenant="shop3", token=token,
                        json={"till_id": "till-ug", "balances": [{"method": "cash", "opening_amount": "20000"}]})
    assert opened.status_code == 201 and opened.json()["created"] is True, opened.text
    assert opened.json()["balances"] == [{"mode_of_payment": "Cash", "opening_amount": 20000}]
    assert post(gw, token, sale(), tenant="shop3").status_code == 201
