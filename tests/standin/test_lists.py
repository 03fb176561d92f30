"""List queries joining a child table, aggregates and the default order, on the real-like stand-in site,
over real sockets, as recorded on a real ERPNext 15 site (fixtures/real_erpnext/pos/lists.json)."""

from __future__ import annotations

from tests.standin.conftest import Erp, messages, open_shift, pos_sale

PAYMENT = "`tabSales Invoice Payment`"


def sell(real: Erp, *payments: tuple[str, float, str | None]) -> str:
    rows = [{"mode_of_payment": m, "account": f"{m} - S1", "amount": a, **({"reference_no": ref} if ref else {})}
            for m, a, ref in payments]
    r = real.post("Sales Invoice", pos_sale(pos_profile="Shop One Main", update_stock=0, paid_amount=None, payments=rows))
    assert r.status_code == 200, r.text
    return str(r.json()["data"]["name"])


def test_child_fields_give_one_row_per_child_row(real: Erp) -> None:
    one = sell(real, ("Cash", 24000, None))
    two = sell(real, ("Cash", 14000, None), ("Mobile Money", 10000, "MM-REF-2"))
    expected = [{"name": one, "mode_of_payment": "Cash", "amount": 24000.0},
                {"name": two, "mode_of_payment": "Cash", "amount": 14000.0},
                {"name": two, "mode_of_payment": "Mobile Money", "amount": 10000.0}]
    for fields in (["name", f"{PAYMENT}.mode_of_payment", f"{PAYMENT}.amount"],  # lst-a2
                   ["name", "payments.mode_of_payment", "payments.amount"]):  # lst-b2
        assert real.list("Sales Invoice", None, fields).json()["data"] == expected
    # paging counts joined rows (lst-d1/lst-d2); `limit` is limit_page_length (lst-d5)
    fields = ["name", f"{PAYMENT}.mode_of_payment", f"{PAYMENT}.amount"]
    assert real.list("Sales Invoice", None, fields, limit_start=1, limit=2).json()["data"] == expected[1:]
    # a child filter (pt-a3)
    found = real.list("Sales Invoice", [["Sales Invoice Payment", "reference_no", "=", "MM-REF-2"]],
                      ["name", f"{PAYMENT}.reference_no"]).json()["data"]
    assert found == [{"name": two, "reference_no": "MM-REF-2"}]
    assert real.list("Sales Invoice", None, ["name"]).json()["data"] == [{"name": one}, {"name": two}]


def test_aggregates_over_child_rows(real: Erp) -> None:
    sell(real, ("Cash", 24000, None))
    sell(real, ("Cash", 14000, None), ("Mobile Money", 10000, None))
    totals = real.list("Sales Invoice", None, [f"{PAYMENT}.mode_of_payment", f"sum({PAYMENT}.amount) as total",
                                               "count(`tabSales Invoice`.name) as n"],
                       group_by=f"{PAYMENT}.mode_of_payment").json()["data"]  # lst-e1, lst-e3
    assert totals == [{"mode_of_payment": "Cash", "total": 38000.0, "n": 2},
                      {"mode_of_payment": "Mobile Money", "total": 10000.0, "n": 1}]
    whole = real.list("Sales Invoice", None, ["sum(grand_total) as g", "count(name) as n"]).json()["data"]
    assert whole == [{"g": 48000.0, "n": 2}]  # lst-e4
    r = real.list("Sales Invoice", None, ["payments.mode_of_payment", "sum(payments.amount) as total"],
                  group_by="payments.mode_of_payment")
    assert (r.status_code, r.json()) == (403, {"exc_type": "PermissionError",  # lst-e2
                                               "exception": "frappe.exceptions.PermissionError: payments"})
    r = real.list("Sales Invoice", None, [f"{PAYMENT}.mode_of_payment", "count(name) as n"],
                  group_by=f"{PAYMENT}.mode_of_payment")
    assert r.status_code == 500 and r.json()["exc_type"] == "OperationalError"  # lst-e3b
    assert "Column 'name' in SELECT is ambiguous" in r.json()["exception"] and messages(r) == []


def test_without_order_by_names_come_in_ascending_order(real: Erp) -> None:
    open_shift(real)
    names = [real.post("POS Invoice", pos_sale()).json()["data"]["name"] for _ in range(3)]
    real.put("POS Invoice", names[0], {"docstatus": 2})  # the latest modified: still first by name (lst-f2)
    assert [r["name"] for r in real.list("POS Invoice", None, ["name"]).json()["data"]] == names
