"""Returns checked against the original's rows, over real sockets, as recorded on a real ERPNext 15 site
(fixtures/real_erpnext/pos/returns.json). The rules are the same on every stand-in site."""

from __future__ import annotations

from tests.standin.conftest import Erp, messages, sale


def credit_note(against: str, qty: float, rate: float, **row: object) -> dict:
    return sale(is_return=1, return_against=against, items=[{"item_code": "COFFEE", "qty": qty, "rate": rate, **row}],
                payments=[{"mode_of_payment": "Cash", "amount": qty * rate, "account": "Cash - S1"}])


def test_a_return_row_linked_to_the_sale_is_checked(erp: Erp) -> None:
    original = erp.create(items=[{"item_code": "COFFEE", "qty": 2, "rate": 2.5}],
                          payments=[{"mode_of_payment": "Cash", "amount": 5, "account": "Cash - S1"}])
    row = original["items"][0]["name"]
    name = original["name"]
    r = erp.post("Sales Invoice", credit_note(name, -5, 2.5, sales_invoice_item=row))
    assert r.status_code == 417 and r.json()["exc_type"] == "StockOverReturnError"  # ret-d
    assert messages(r) == ["Row # 1: Cannot return more than 2.0 for Item COFFEE"]
    r = erp.post("Sales Invoice", credit_note(name, -1, 3, sales_invoice_item=row))
    assert messages(r) == [f"Row # 1: Rate cannot be greater than the rate used in Sales Invoice {name}"]  # ret-g1
    r = erp.post("Sales Invoice", credit_note(name, -1, 2.5, sales_invoice_item="nosuchrow1"))
    assert messages(r) == [f"Row # 1: Returned Item COFFEE does not exist in Sales Invoice {name}"]  # ret-f3
    for rate in (2.5, 2):  # a lower rate is fine (ret-g2)
        r = erp.post("Sales Invoice", credit_note(name, -1, rate, sales_invoice_item=row))
        assert r.status_code == 200 and "_server_messages" not in r.json(), r.text
        assert r.json()["data"]["items"][0]["sales_invoice_item"] == row
    r = erp.post("Sales Invoice", credit_note(name, -1, 2.5, sales_invoice_item=row))
    assert messages(r) == ["Row # 1: Cannot return more than 0.0 for Item COFFEE"]  # ret-g4


def test_a_return_row_without_the_link_is_not_checked(erp: Erp) -> None:
    original = erp.create(items=[{"item_code": "COFFEE", "qty": 2, "rate": 2.5}],
                          payments=[{"mode_of_payment": "Cash", "amount": 5, "account": "Cash - S1"}])
    name = original["name"]
    for qty, rate in ((-5, 2.5), (-1, 9)):  # more than sold, dearer than sold: accepted (ret-c, ret-g3)
        r = erp.post("Sales Invoice", credit_note(name, qty, rate))
        assert r.status_code == 200, r.text
        assert messages(r) == [f"Row # 1: Returned Item COFFEE does not exist in Sales Invoice {name}"]
        note = erp.get("Sales Invoice", r.json()["data"]["name"]).json()["data"]
        assert (note["docstatus"], note["status"]) == (1, "Draft")  # ret-h2
    # unlinked returns do not count against the linked ones (ret-d after ret-b/ret-c)
    r = erp.post("Sales Invoice", credit_note(name, -2, 2.5, sales_invoice_item=original["items"][0]["name"]))
    assert r.status_code == 200, r.text
    assert erp.get("Sales Invoice", name).json()["data"]["status"] == "Credit Note Issued"  # ret-h1


def test_a_pos_invoice_return_links_with_pos_invoice_item(erp: Erp) -> None:
    original = erp.create("POS Invoice", items=[{"item_code": "COFFEE", "qty": 2, "rate": 2.5}],
                          payments=[{"mode_of_payment": "Cash", "amount": 5}])
    body = credit_note(original["name"], -3, 2.5, pos_invoice_item=original["items"][0]["name"])
    r = erp.post("POS Invoice", body)
    assert r.status_code == 417 and messages(r) == ["Row # 1: Cannot return more than 2.0 for Item COFFEE"]
    r = erp.post("POS Invoice", credit_note(original["name"], -1, 2.5))
    assert r.status_code == 200, r.text
    assert messages(r) == [f"Row # 1: Returned Item COFFEE does not exist in POS Invoice {original['name']}"]
