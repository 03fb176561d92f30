"""Site settings, UGX rounding and site-local time on the real-like stand-in site, over real sockets, as
recorded on a real ERPNext 15 site (fixtures/real_erpnext/pos/site.json, rounding.json, payments_time.json)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.standin.conftest import Erp, pos_sale


def si(rate: float, paid: float, **over: object) -> dict:
    return pos_sale(pos_profile="Shop One Main", update_stock=0, paid_amount=None, ignore_pricing_rule=1,
                    items=[{"item_code": "POSHO-5KG", "qty": 1, "rate": rate}],
                    payments=[{"mode_of_payment": "Cash", "account": "Cash - S1", "amount": paid}], **over)


def test_the_site_documents_the_gateway_reads(real: Erp) -> None:
    settings = real.get("System Settings", "System Settings").json()["data"]
    assert (settings["time_zone"], settings["currency_precision"], settings["float_precision"],
            settings["rounding_method"]) == ("Africa/Kampala", "", "3", "Banker's Rounding")
    ugx = real.get("Currency", "UGX").json()["data"]
    assert (ugx["smallest_currency_fraction_value"], ugx["fraction_units"]) == (0, 100)
    assert real.get("Global Defaults", "Global Defaults").json()["data"]["disable_rounded_total"] == 0
    assert real.get("Company", "Shop One Ltd").json()["data"]["default_currency"] == "UGX"
    assert real.get("POS Profile", "Shop One Counter").json()["data"]["disable_rounded_total"] == 0


@pytest.mark.parametrize(("rate", "paid", "rounded", "adjustment", "outstanding", "change", "status"), [
    (24000.6, 24000.6, 24001, 0.4, 0.4, 0, "Partly Paid"),  # rnd-a
    (24000.4, 24000, 24000, -0.4, 0, 0, "Paid"),  # rnd-b
    (24000.5, 24001, 24000, -0.5, 0, 1, "Paid"),  # rnd-c: half to even
    (24000.6, 24001, 24001, 0.4, 0, 0, "Paid"),  # rnd-d
])
def test_ugx_totals_round_to_whole_shillings(real: Erp, rate, paid, rounded, adjustment, outstanding, change, status) -> None:
    doc = real.post("Sales Invoice", si(rate, paid)).json()["data"]
    assert (doc["grand_total"], doc["rounded_total"], doc["rounding_adjustment"], doc["outstanding_amount"],
            doc["change_amount"], doc["write_off_amount"]) == (rate, rounded, adjustment, outstanding, change, 0)
    assert doc["items"][0]["price_list_rate"] == 24000  # the rate sent is kept
    assert real.get("Sales Invoice", doc["name"]).json()["data"]["status"] == status


def test_rounding_is_disabled_by_the_invoice_or_global_defaults_not_the_pos_profile(real: Erp) -> None:
    assert real.put("POS Profile", "Shop One Main", {"disable_rounded_total": 1}).status_code == 200
    assert real.post("Sales Invoice", si(24000.6, 24000.6)).json()["data"]["rounded_total"] == 24001  # rnd-e2
    doc = real.post("Sales Invoice", si(24000.6, 24000.6, disable_rounded_total=1)).json()["data"]  # rnd-e4
    assert (doc["rounded_total"], doc["rounding_adjustment"], doc["outstanding_amount"]) == (0, 0, 0)
    assert real.get("Sales Invoice", doc["name"]).json()["data"]["status"] == "Paid"
    real.site.docs["Global Defaults"]["Global Defaults"]["disable_rounded_total"] = 1
    assert real.post("Sales Invoice", si(24000.6, 24000.6)).json()["data"]["rounded_total"] == 0


def test_posting_time_is_site_local_and_reads_back_unpadded(real: Erp) -> None:
    real.site.clock = lambda: datetime(2026, 11, 28, 19, 39, 6, 914147, tzinfo=UTC)
    doc = real.post("Sales Invoice", si(24000, 24000)).json()["data"]  # pt-c1: Kampala is UTC+3
    assert (doc["posting_date"], doc["posting_time"], doc["creation"]) == (
        "2026-11-28", "22:39:06.914147", "2026-11-28 22:39:06.914147")
    assert real.get("Sales Invoice", doc["name"]).json()["data"]["posting_time"] == "22:39:6.914147"  # pt-a2
    odd = real.post("Sales Invoice", si(24000, 24000, set_posting_time=1, posting_date="2026-11-28",
                                        posting_time="9:5:7")).json()["data"]
    assert odd["posting_time"] == "9:5:7"  # pt-b6: the insert echoes what was sent
    assert real.get("Sales Invoice", odd["name"]).json()["data"]["posting_time"] == "9:05:07"  # pt-b7
    late = real.post("Sales Invoice", si(24000, 24000, set_posting_time=1, posting_date="2026-11-28",
                                         posting_time="23:30:00")).json()["data"]  # pt-b1: a future time is fine
    assert real.get("Sales Invoice", late["name"]).json()["data"]["posting_time"] == "23:30:00"


def test_posting_time_filters_compare_times(real: Erp) -> None:
    for when in ("9:05:07", "22:39:06.5", "23:30:00"):
        real.post("Sales Invoice", si(24000, 24000, set_posting_time=1, posting_date="2026-11-28", posting_time=when))
    rows = real.list("Sales Invoice", [["posting_time", ">=", "22:00:00"], ["posting_time", "<", "23:00:00"]],
                     ["posting_time"]).json()["data"]
    assert rows == [{"posting_time": "22:39:6.5"}]  # pt-b4b (as text, "9:05:07" would be >= "22:00:00")
    rows = real.list("Sales Invoice", [["posting_time", ">=", "23:00:00"]], ["posting_time"], order_by="posting_time asc")
    assert rows.json()["data"] == [{"posting_time": "23:30:00"}]  # pt-b3
    r = real.list("Sales Invoice", [["posting_time", "between", ["22:00:00", "22:59:59"]]])
    assert r.status_code == 500 and r.json()["exc_type"] == "TypeError"  # pt-b4
    rows = real.list("Sales Invoice", [["creation", "between", ["2026-11-28 11:00:00", "2026-11-28 13:00:00"]]])
    assert len(rows.json()["data"]) == 3  # pt-b4c: between works on a Datetime
