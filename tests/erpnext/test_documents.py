"""Property tests: any valid sale or return maps to an invoice whose items and payments survive."""

from __future__ import annotations

import json
from datetime import date, time
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.erpnext.client import to_json
from edge.erpnext.documents import invoice
from edge.sales import Return, Sale
from plugins.normalise import NormalisePlugin

CFG = NormalisePlugin.Config(
    company="Shop One Ltd",
    default_customer="Walk-in Customer",
    payment_methods={"cash": "Cash", "momo": "Mobile Money", "card": "Credit Card"},
    branches={"main": {"pos_profile": "Main", "warehouse": "Stores - S1", "cost_center": "Main - S1", "price_list": "Std"},
              "north": {"pos_profile": "North", "warehouse": "Stores - N"}},
    item_codes={"cof": "COFFEE"},
    reference_field="custom_pos_edge_txn_id",
)
ACCOUNTS = {"Cash": "Cash - S1", "Mobile Money": "MoMo - S1", "Credit Card": "Card - S1"}

money = st.decimals(min_value=Decimal("0"), max_value=Decimal("99999.99"), places=2, allow_nan=False)
qty = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("9999"), places=3, allow_nan=False)
items = st.lists(
    st.fixed_dictionaries({"item_code": st.sampled_from(["cof", "BREAD", "MILK", "X-1"]), "qty": qty, "rate": money}),
    min_size=1, max_size=20,
)
payments = st.lists(st.fixed_dictionaries({"method": st.sampled_from(["cash", "momo", "card"]), "amount": money}), max_size=5)


def sales(model=Sale):
    extra = {"return_against": st.just("ACC-SINV-2026-00001")} if model is Return else {}
    return st.builds(
        lambda d: model.model_validate(d),
        st.fixed_dictionaries(
            {"items": items, "payments": payments, "branch_id": st.sampled_from(["main", "north"]), "till_id": st.just("t1"),
             **extra},
            optional={
                "customer": st.sampled_from(["Ama Mensah", "Kofi"]),
                "posting_date": st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31)),
                "discount_amount": money,
                "client_txn_id": st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,20}\Z"),
            },
        ),
    )


def wire(doc: dict) -> dict:
    # What ERPNext receives: the JSON bytes, parsed back (Decimal for fractions, as we read).
    return json.loads(to_json(doc), parse_float=Decimal)


@settings(max_examples=200, deadline=None)
@given(sales())
def test_sale_items_and_payments_survive(sale: Sale) -> None:
    doc = wire(invoice(sale, CFG, "ref-1", ACCOUNTS, sale.customer or "Walk-in Customer"))
    branch = CFG.branches[sale.branch_id]
    assert doc["docstatus"] == 1 and doc["is_pos"] == 1 and doc["company"] == "Shop One Ltd"
    assert doc["custom_pos_edge_txn_id"] == "ref-1" and doc["pos_profile"] == branch.pos_profile
    assert [(i["item_code"], Decimal(str(i["qty"])), Decimal(str(i["rate"]))) for i in doc["items"]] == [
        (CFG.item_codes.get(i.item_code, i.item_code), i.qty, i.rate) for i in sale.items
    ]
    assert all(i["warehouse"] == branch.warehouse for i in doc["items"])
    assert [(p["mode_of_payment"], Decimal(str(p["amount"])), p["account"]) for p in doc["payments"]] == [
        (CFG.payment_methods[p.method], p.amount, ACCOUNTS[CFG.payment_methods[p.method]]) for p in sale.payments
    ]
    if sale.posting_date:
        assert doc["set_posting_time"] == 1 and doc["posting_date"] == sale.posting_date.isoformat()
    else:
        assert "set_posting_time" not in doc
    assert "is_return" not in doc


@settings(max_examples=100, deadline=None)
@given(sales(Return))
def test_returns_negate_quantities_and_payments(ret: Return) -> None:
    doc = wire(invoice(ret, CFG, "ref-2", ACCOUNTS, "Walk-in Customer"))
    assert doc["is_return"] == 1 and doc["return_against"] == "ACC-SINV-2026-00001"
    assert [Decimal(str(i["qty"])) for i in doc["items"]] == [-i.qty for i in ret.items]
    assert [Decimal(str(p["amount"])) for p in doc["payments"]] == [-p.amount for p in ret.payments]


def test_offline_sale_keeps_its_time() -> None:
    sale = Sale.model_validate({"items": [{"item_code": "BREAD", "qty": 1, "rate": "1.20"}], "branch_id": "main",
                                "till_id": "t1", "posting_date": "2026-11-20", "posting_time": "18:45:10"})
    doc = invoice(sale, CFG, "r", ACCOUNTS, "Walk-in Customer")
    assert (doc["posting_date"], doc["posting_time"], doc["set_posting_time"]) == ("2026-11-20", "18:45:10", 1)
    assert sale.posting_time == time(18, 45, 10)


def test_a_pos_invoice_carries_paid_amount_and_payment_references() -> None:
    # A real ERPNext 15 answers 500 (TypeError in validate_full_payment) for a POS Invoice
    # without paid_amount (tests/fixtures/real_erpnext/pos/pos_invoice.json, pinv-e3).
    cfg = CFG.model_copy(update={"invoice_doctype": "POS Invoice"})
    sale = Sale.model_validate({"items": [{"item_code": "cof", "qty": 2, "rate": "2.50"}], "branch_id": "main",
                                "till_id": "t", "payments": [{"method": "cash", "amount": "3"},
                                                             {"method": "momo", "amount": "2", "reference": "MM-REF-1"}]})
    doc = invoice(sale, cfg, "t/1", ACCOUNTS, "Walk-in Customer")
    assert doc["paid_amount"] == Decimal("5")
    assert [p.get("reference_no") for p in doc["payments"]] == [None, "MM-REF-1"]
    ret = Return.model_validate({**sale.model_dump(), "return_against": "X"})
    assert invoice(ret, cfg, "t/2", ACCOUNTS, "Walk-in Customer")["paid_amount"] == Decimal("-5")
    assert "paid_amount" not in invoice(sale, CFG, "t/3", ACCOUNTS, "Walk-in Customer")  # Sales Invoice totals itself


def test_the_booked_state_is_never_the_stale_draft_of_a_submitted_invoice() -> None:
    from edge.erpnext.documents import booked_status, till_view, unpaid_warning

    note = {"name": "CN-1", "docstatus": 1, "status": "Draft", "is_return": 1, "outstanding_amount": 0}
    assert booked_status(note) == "Return"
    partly = {"name": "INV-2", "docstatus": 1, "status": "Draft", "outstanding_amount": 0.4, "rounded_total": 24001}
    assert booked_status(partly) == "Partly Paid" and booked_status({**partly, "outstanding_amount": 0}) == "Paid"
    assert booked_status({"docstatus": 0, "status": "Draft"}) == "Draft"
    assert booked_status({"docstatus": 1, "status": "Consolidated"}) == "Consolidated"
    assert "0.4 outstanding" in unpaid_warning(partly, CFG) and unpaid_warning(note, CFG) is None
    assert unpaid_warning(partly, CFG.model_copy(update={"allow_credit_sales": True})) is None
    view = till_view({**note, "items": [], "payments": [],
                      "_server_messages": ["Row # 1: Returned Item <strong>X</strong> does not exist"]})
    assert view.status == "Return" and view.messages == ["Row # 1: Returned Item X does not exist"]
