"""POS Invoice rules and stock on the real-like stand-in site, over real sockets, as recorded on a real
ERPNext 15 site (fixtures/real_erpnext/pos/pos_invoice.json, stock.json)."""

from __future__ import annotations

from edge.standin.stock import actual_qty, set_stock
from tests.standin.conftest import Erp, messages, open_shift, pos_sale


def test_a_pos_invoice_needs_an_open_shift_before_anything_else(real: Erp) -> None:
    for body in (pos_sale(), {k: v for k, v in pos_sale().items() if k != "paid_amount"}):  # pinv-a, pinv-b
        r = real.post("POS Invoice", body)
        assert r.status_code == 417 and r.json()["exc_type"] == "ValidationError"
        assert messages(r) == ["No open POS Opening Entry found for POS Profile <strong>Shop One Counter</strong>."]
    shift = open_shift(real, "Shop One Main")  # another profile's shift does not count
    assert real.post("POS Invoice", pos_sale()).status_code == 417 and shift["status"] == "Open"


def test_paid_amount_must_be_sent_and_cover_the_total(real: Erp) -> None:
    open_shift(real)
    r = real.post("POS Invoice", {k: v for k, v in pos_sale().items() if k != "paid_amount"})
    assert r.status_code == 500  # pinv-e3, a site made with strict_paid_amount
    assert r.json() == {"exc_type": "TypeError",
                        "exception": "TypeError: '<' not supported between instances of 'NoneType' and 'float'"}
    r = real.post("POS Invoice", pos_sale(payments=[{"mode_of_payment": "Cash", "amount": 20000}], paid_amount=20000))
    assert r.status_code == 417 and r.json()["exc_type"] == "PartialPaymentValidationError"
    assert messages(r) == ["Partial Payment in POS Invoice is not allowed."]
    assert r.json()["exception"].startswith("erpnext.accounts.doctype.pos_invoice.pos_invoice.PartialPaymentValidationError")


def test_an_overpaid_pos_invoice_gives_change(real: Erp) -> None:
    open_shift(real)
    r = real.post("POS Invoice", pos_sale(payments=[{"mode_of_payment": "Cash", "amount": 30000}], paid_amount=30000))
    assert r.status_code == 200, r.text
    doc = r.json()["data"]  # pinv-e4: the real status on insert, and the base amounts ERPNext leaves unset
    assert (doc["status"], doc["paid_amount"], doc["change_amount"], doc["outstanding_amount"]) == ("Paid", 30000.0,
                                                                                                   6000.0, 0.0)
    assert (doc["base_paid_amount"], doc["payments"][0]["base_amount"], doc["base_change_amount"]) == (0.0, 0.0, -24000.0)
    stored = real.get("POS Invoice", doc["name"]).json()["data"]
    assert stored["account_for_change_amount"] == "Cash - S1" and "consolidated_invoice" not in stored


def test_a_pos_invoice_needs_stock_left_after_the_open_invoices(real: Erp) -> None:
    open_shift(real)
    r = real.post("POS Invoice", pos_sale(items=[{"item_code": "SALT-1KG", "qty": 1, "rate": 1500}],
                                          payments=[{"mode_of_payment": "Cash", "amount": 1500}], paid_amount=1500))
    assert r.status_code == 417 and r.json()["exc_type"] == "ValidationError"  # stk-d
    assert messages(r) == ["Row #1: Item <strong>SALT-1KG</strong> has no stock in warehouse <strong>Stores - S1</strong>."]
    set_stock(real.site, "SALT-1KG", "Stores - S1", 3)
    two = pos_sale(items=[{"item_code": "SALT-1KG", "qty": 2, "rate": 1500}],
                   payments=[{"mode_of_payment": "Cash", "amount": 3000}], paid_amount=3000)
    assert real.post("POS Invoice", two).status_code == 200
    r = real.post("POS Invoice", two)  # 1 left: an unconsolidated POS Invoice reserves its units
    assert messages(r) == ["Row #1: Item <strong>SALT-1KG</strong> in warehouse <strong>Stores - S1</strong>: "
                           "Available <strong>1.0</strong>, Needed <strong>2.0</strong>."]
    assert actual_qty(real.site, "SALT-1KG", "Stores - S1") == 3  # a POS Invoice moves no stock itself


def test_a_sales_invoice_that_updates_stock_cannot_sell_what_is_not_there(real: Erp) -> None:
    body = pos_sale(pos_profile="Shop One Main", items=[{"item_code": "SALT-1KG", "qty": 1, "rate": 1500}],
                    payments=[{"mode_of_payment": "Cash", "account": "Cash - S1", "amount": 1500}])
    r = real.post("Sales Invoice", body)
    assert r.status_code == 417 and r.json()["exc_type"] == "NegativeStockError"  # stk-a
    (message,) = messages(r)
    assert message == (
        '<strong>1.0</strong> units of <a href="/app/Form/Item/SALT-1KG" style="font-weight: bold;">Item SALT-1KG: '
        'Salt 1kg (never stocked)</a> needed in <a href="/app/Form/Warehouse/Stores%20-%20S1" style="font-weight: '
        'bold;">Warehouse Stores - S1</a> on 2026-11-28 12:00:00 for <a href="/app/Form/Sales Invoice/'
        'ACC-SINV-2026-00001" style="font-weight: bold;">Sales Invoice Walk-in Customer</a> to complete this transaction.')
    sold = real.post("Sales Invoice", {**body, "update_stock": 0})  # stk-b: no stock check, the name was not used up
    assert sold.status_code == 200 and sold.json()["data"]["name"] == "ACC-SINV-2026-00001"
    before = actual_qty(real.site, "POSHO-5KG", "Stores - S1")
    assert real.post("Sales Invoice", pos_sale(pos_profile="Shop One Main", paid_amount=None)).status_code == 200
    assert actual_qty(real.site, "POSHO-5KG", "Stores - S1") == before - 1
