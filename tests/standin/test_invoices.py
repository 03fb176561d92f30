"""The stand-in creates Sales Invoices and POS Invoices the way ERPNext 15 does (a subset), over real sockets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.standin.conftest import Erp, messages, sale, txn

D = Decimal


def money(value: object) -> Decimal:
    return D(str(value))


# --- mandatory fields and links -------------------------------------------------------------


def test_missing_mandatory_fields_are_one_mandatory_error(erp: Erp) -> None:
    r = erp.post("Sales Invoice", {"is_pos": 1, "items": []})
    assert r.status_code == 417 and r.json()["exc_type"] == "MandatoryError"
    assert messages(r) == ["Error: Value missing for Sales Invoice: Customer",
                           "Error: Value missing for Sales Invoice: Company",
                           "Error: Data missing in table: Items"]
    assert r.json()["exception"].endswith("]: customer, company, items")

    r = erp.post("Sales Invoice", sale(items=[{"item_code": "COFFEE"}]))
    assert r.status_code == 417 and r.json()["exc_type"] == "MandatoryError"
    assert messages(r) == ["Error: <strong>Sales Invoice Item</strong> Row #1: Value missing for: Quantity"]


def test_unknown_customer_is_a_500_type_error_in_pos_mode(erp: Erp) -> None:
    r = erp.post("Sales Invoice", sale(customer="Nobody"))
    assert r.status_code == 500
    assert r.json() == {"exc_type": "TypeError", "exception": "TypeError: cannot unpack non-iterable NoneType object"}
    r = erp.post("POS Invoice", sale(customer="Nobody"))
    assert r.status_code == 500 and r.json()["exc_type"] == "TypeError"


def test_unknown_customer_is_a_link_error_without_pos(erp: Erp) -> None:
    r = erp.post("Sales Invoice", sale(customer="Nobody", is_pos=0, payments=[]))
    assert r.status_code == 417 and r.json()["exc_type"] == "LinkValidationError"
    assert messages(r) == ["Could not find Customer: Nobody"]


def test_unknown_item_is_404(erp: Erp) -> None:
    r = erp.post("Sales Invoice", sale(items=[{"item_code": "COFFEE", "qty": 1}, {"item_code": "NOPE", "qty": 1}]))
    assert r.status_code == 404 and r.json()["exc_type"] == "DoesNotExistError"
    assert messages(r) == ["Item NOPE not found"]


@pytest.mark.parametrize(("over", "message"), [
    ({"company": "Nope Ltd"}, "Could not find Company: Nope Ltd"),
    ({"set_warehouse": "Stores - XX"}, "Could not find Source Warehouse: Stores - XX"),
    ({"items": [{"item_code": "MILK", "qty": 1, "warehouse": "Stores - XX"}]},
     "Could not find Row #1: Warehouse: Stores - XX"),
    ({"pos_profile": "Nope Profile"}, "Could not find POS Profile: Nope Profile"),
    ({"cost_center": "Main - XX"}, "Could not find Cost Center: Main - XX"),
    ({"selling_price_list": "Nope Prices"}, "Could not find Price List: Nope Prices"),
])
def test_unknown_links_are_417(erp: Erp, over: dict, message: str) -> None:
    r = erp.post("Sales Invoice", sale(**over))
    assert r.status_code == 417 and r.json()["exc_type"] == "LinkValidationError", r.text
    assert messages(r) == [message]


def test_unknown_fields_in_the_body_are_ignored(erp: Erp) -> None:
    doc = erp.create(no_such_field="x", po_no="PO-7", items=[{"item_code": "MILK", "qty": 1, "colour": "red"}],
                     payments=[{"mode_of_payment": "Cash", "amount": 0.99, "account": "Cash - S1"}])
    assert "no_such_field" not in doc and "colour" not in doc["items"][0]
    assert doc["po_no"] == "PO-7"
    assert erp.get("Sales Invoice", doc["name"]).json()["data"].keys() == doc.keys()


# --- payments ---------------------------------------------------------------------------


def test_unknown_mode_of_payment_is_accepted(erp: Erp) -> None:
    doc = erp.create(payments=[{"mode_of_payment": "Bitcoin", "amount": 6.2, "account": "Cash - S1"}])
    assert doc["payments"][0]["mode_of_payment"] == "Bitcoin" and "type" not in doc["payments"][0]  # null: left out
    assert erp.get("Sales Invoice", doc["name"]).json()["data"]["status"] == "Paid"


def test_submit_on_insert_with_a_payment_without_account_is_account_is_required(erp: Erp) -> None:
    r = erp.post("Sales Invoice", sale(payments=[{"mode_of_payment": "Cash", "amount": 5},
                                                 {"mode_of_payment": "Mobile Money", "amount": 1.2}]))
    assert r.status_code == 417 and r.json()["exc_type"] == "ValidationError"
    assert messages(r) == ["Account is required"]
    r = erp.post("Sales Invoice", sale(payments=[]))
    assert messages(r) == ["At least one mode of payment is required for POS invoice."]


def test_a_draft_gets_its_accounts_from_the_mode_of_payment(erp: Erp) -> None:
    doc = erp.create(docstatus=0, payments=[{"mode_of_payment": "Cash", "amount": 5},
                                            {"mode_of_payment": "Mobile Money", "amount": 1.2}])
    assert doc["docstatus"] == 0 and doc["status"] == "Draft"
    assert [p["account"] for p in doc["payments"]] == ["Cash - S1", "Mobile Money - S1"]
    r = erp.post("Sales Invoice", sale(docstatus=0, payments=[{"mode_of_payment": "Bitcoin", "amount": 6.2}]))
    assert r.status_code == 417
    assert messages(r) == ['Please set default Cash or Bank account in Mode of Payment '
                           '<a href="/app/mode-of-payment/Bitcoin">Bitcoin</a>']


def test_a_pos_invoice_fills_accounts_even_when_submitted(erp: Erp) -> None:
    doc = erp.create("POS Invoice", payments=[{"mode_of_payment": "Cash", "amount": 6.2}])
    assert doc["name"].startswith("ACC-PSINV-") and doc["payments"][0]["account"] == "Cash - S1"
    r = erp.post("POS Invoice", sale(is_pos=0))
    assert messages(r) == ["POS Invoice should have <strong>Include Payment</strong> field checked."]


def test_payment_amounts_must_be_positive(erp: Erp) -> None:
    r = erp.post("Sales Invoice", sale(payments=[{"mode_of_payment": "Cash", "amount": -1, "account": "Cash - S1"}]))
    assert r.status_code == 417 and messages(r) == ["Row #1 (Payment Table): Amount must be positive"]


# --- draft, submit, cancel --------------------------------------------------------------


def test_draft_then_submit_by_put(erp: Erp) -> None:
    draft = erp.create(docstatus=0, payments=[{"mode_of_payment": "Cash", "amount": 6.2}])
    name = draft["name"]
    r = erp.put("Sales Invoice", name, {"docstatus": 1})
    assert r.status_code == 200, r.text
    submitted = r.json()["data"]
    assert submitted["name"] == name and submitted["docstatus"] == 1 and submitted["status"] == "Paid"
    assert submitted["payments"][0]["account"] == "Cash - S1"
    assert {row["docstatus"] for row in submitted["items"]} == {1}
    assert erp.get("Sales Invoice", name).json()["data"]["status"] == "Paid"

    r = erp.put("Sales Invoice", name, {"docstatus": 0})
    assert r.status_code == 417 and r.json()["exc_type"] == "DocstatusTransitionError"
    r = erp.put("Sales Invoice", name, {"customer": "Ama Mensah"})
    assert r.status_code == 417 and r.json()["exc_type"] == "UpdateAfterSubmitError"
    r = erp.put("Sales Invoice", name, {"docstatus": 2})
    assert r.json()["data"]["docstatus"] == 2 and r.json()["data"]["status"] == "Cancelled"


def test_saving_a_draft_recomputes_it(erp: Erp) -> None:
    draft = erp.create(docstatus=0)
    r = erp.put("Sales Invoice", draft["name"], {"items": [{"item_code": "MILK", "qty": 2}]})
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    assert doc["docstatus"] == 0 and money(doc["grand_total"]) == D("1.98")
    assert money(doc["paid_amount"]) == D("6.20") and money(doc["change_amount"]) == D("4.22")
    assert money(doc["outstanding_amount"]) == 0 and doc["status"] == "Draft"


# --- totals -----------------------------------------------------------------------------


def test_totals_with_percentage_discount_and_change(erp: Erp) -> None:
    doc = erp.create(items=[{"item_code": "COFFEE", "qty": 3}, {"item_code": "MILK", "qty": 2}],
                     additional_discount_percentage=10,
                     payments=[{"mode_of_payment": "Cash", "amount": 10, "account": "Cash - S1"}])
    # 3 x 2.50 + 2 x 0.99 (standard_rate, no rate given) = 9.48; 10 % = 0.948 -> 0.95
    assert [money(i["rate"]) for i in doc["items"]] == [D("2.50"), D("0.99")]
    assert money(doc["total"]) == D("9.48") and money(doc["discount_amount"]) == D("0.95")
    assert money(doc["net_total"]) == money(doc["grand_total"]) == money(doc["rounded_total"]) == D("8.53")
    assert sum(money(i["net_amount"]) for i in doc["items"]) == D("8.53")
    assert money(doc["paid_amount"]) == D("10.00") and money(doc["change_amount"]) == D("1.47")
    assert money(doc["outstanding_amount"]) == D("0.00") and doc["total_qty"] == 5


def test_totals_with_discount_amount_and_half_up_rounding(erp: Erp) -> None:
    doc = erp.create(items=[{"item_code": "MILK", "qty": 0.5}, {"item_code": "BREAD", "qty": 1, "rate": 1.255}],
                     discount_amount=0.25, payments=[{"mode_of_payment": "Cash", "amount": 1.51, "account": "Cash - S1"}])
    # 0.5 x 0.99 = 0.495 -> 0.50 (a float round would give 0.49); rate 1.255 -> 1.26
    assert [money(i["amount"]) for i in doc["items"]] == [D("0.50"), D("1.26")]
    assert money(doc["total"]) == D("1.76") and money(doc["grand_total"]) == D("1.51")
    assert money(doc["change_amount"]) == 0 and money(doc["outstanding_amount"]) == 0


def test_change_needs_a_cash_payment_on_a_sales_invoice(erp: Erp) -> None:
    doc = erp.create(payments=[{"mode_of_payment": "Credit Card", "amount": 7, "account": "Card Clearing - S1"}])
    assert money(doc["change_amount"]) == 0 and money(doc["outstanding_amount"]) == D("-0.80")
    pos = erp.create("POS Invoice", payments=[{"mode_of_payment": "Credit Card", "amount": 7}])
    assert money(pos["change_amount"]) == D("0.80") and money(pos["outstanding_amount"]) == 0


# --- status -----------------------------------------------------------------------------


def test_create_answers_a_stale_draft_status_and_get_the_real_one(erp: Erp) -> None:
    paid = erp.create()
    assert paid["docstatus"] == 1 and paid["status"] == "Draft"
    assert erp.get("Sales Invoice", paid["name"]).json()["data"]["status"] == "Paid"

    partly = erp.create(payments=[{"mode_of_payment": "Cash", "amount": 2, "account": "Cash - S1"}])
    assert partly["status"] == "Draft" and money(partly["outstanding_amount"]) == D("4.20")
    assert erp.get("Sales Invoice", partly["name"]).json()["data"]["status"] == "Partly Paid"

    credit = erp.create(is_pos=0, payments=[])
    assert money(credit["paid_amount"]) == 0 and credit["payments"] == []
    assert erp.get("Sales Invoice", credit["name"]).json()["data"]["status"] == "Unpaid"

    listed = erp.list("Sales Invoice", [["name", "in", [paid["name"], partly["name"]]]], ["name", "status"]).json()
    assert sorted(row["status"] for row in listed["data"]) == ["Paid", "Partly Paid"]


def test_an_underpaid_pos_invoice_is_refused(erp: Erp) -> None:
    # recorded pinv-e2: the POS Profile does not allow partial payment
    r = erp.post("POS Invoice", sale(payments=[{"mode_of_payment": "Cash", "amount": 2}]))
    assert r.status_code == 417 and r.json()["exc_type"] == "PartialPaymentValidationError"
    assert messages(r) == ["Partial Payment in POS Invoice is not allowed."]
    # a POS Invoice answers its real status on insert (pinv-e1), a draft too
    assert erp.create("POS Invoice")["status"] == "Paid"
    assert erp.create("POS Invoice", docstatus=0, payments=[{"mode_of_payment": "Cash", "amount": 2}])["status"] == "Draft"


def test_a_back_dated_unpaid_invoice_is_overdue(erp: Erp) -> None:
    doc = erp.create(set_posting_time=1, posting_date="2024-03-01", posting_time="10:00:00",
                     payments=[{"mode_of_payment": "Cash", "amount": 1, "account": "Cash - S1"}])
    assert erp.get("Sales Invoice", doc["name"]).json()["data"]["status"] == "Overdue"


# --- naming and posting date ------------------------------------------------------------


def test_naming_series_per_doctype_and_year(erp: Erp) -> None:
    year = date.today().year
    first, second = erp.create(), erp.create()
    assert first["name"].startswith(f"ACC-SINV-{year}-") and len(first["name"]) == len(f"ACC-SINV-{year}-00001")
    assert int(second["name"][-5:]) == int(first["name"][-5:]) + 1
    failed = erp.post("Sales Invoice", sale(customer="Nobody", is_pos=0))
    assert failed.status_code == 417
    assert int(erp.create()["name"][-5:]) == int(second["name"][-5:]) + 1  # a failed insert takes no number
    assert erp.create("POS Invoice")["name"].startswith(f"ACC-PSINV-{year}-")
    old = [erp.create(set_posting_time=1, posting_date="2019-06-30", posting_time="23:59:59") for _ in range(2)]
    # the series of the posting year, consecutive (the shared site may already hold 2019 invoices)
    assert all(d["name"].startswith("ACC-SINV-2019-") for d in old)
    assert int(old[1]["name"][-5:]) == int(old[0]["name"][-5:]) + 1
    assert (old[0]["posting_date"], old[0]["posting_time"], old[0]["set_posting_time"]) == ("2019-06-30", "23:59:59", 1)


def test_a_posting_time_reads_back_as_frappe_writes_it(erp: Erp) -> None:
    odd = erp.create(set_posting_time=1, posting_date="2018-02-03", posting_time="9:5:7")
    assert odd["posting_time"] == "9:5:7"  # the insert answers what was sent
    assert erp.get("Sales Invoice", odd["name"]).json()["data"]["posting_time"] == "9:05:07"
    late = erp.create(set_posting_time=1, posting_date="2018-02-03", posting_time="23:30:01.5")
    assert erp.get("Sales Invoice", late["name"]).json()["data"]["posting_time"] == "23:30:1.5"
    rows = erp.list("Sales Invoice", [["posting_date", "=", "2018-02-03"], ["posting_time", ">=", "10:00:00"]],
                    ["name", "posting_time"]).json()["data"]  # compared as times, not as text
    assert rows == [{"name": late["name"], "posting_time": "23:30:1.5"}]


def test_posting_date_is_stamped_without_set_posting_time(erp: Erp) -> None:
    doc = erp.create(posting_date="2019-01-01", posting_time="01:02:03")
    assert doc["posting_date"] == date.today().isoformat() and doc["posting_time"] != "01:02:03"
    assert doc["name"].startswith(f"ACC-SINV-{date.today().year}-")


# --- returns ----------------------------------------------------------------------------


def refund(against: str, **over: object) -> dict:
    body = sale(is_return=1, return_against=against, items=[{"item_code": "BREAD", "qty": -1}],
                payments=[{"mode_of_payment": "Cash", "amount": -1.2, "account": "Cash - S1"}])
    body.update(over)
    return body


def test_a_return_against_a_submitted_invoice(erp: Erp) -> None:
    original = erp.create()
    r = erp.post("Sales Invoice", refund(original["name"]))
    assert r.status_code == 200, r.text
    ret = r.json()["data"]
    assert ret["name"].startswith("ACC-SINV-") and ret["is_return"] == 1 and ret["return_against"] == original["name"]
    assert money(ret["grand_total"]) == D("-1.20") and money(ret["paid_amount"]) == D("-1.20")
    assert money(ret["outstanding_amount"]) == 0 and money(ret["change_amount"]) == 0
    # a Sales Invoice credit note keeps the insert's "Draft" although submitted (recorded ret-b-get, ret-h2)
    assert erp.get("Sales Invoice", ret["name"]).json()["data"]["status"] == "Draft"
    assert erp.get("Sales Invoice", original["name"]).json()["data"]["status"] == "Credit Note Issued"


def test_return_against_must_name_a_submitted_invoice(erp: Erp) -> None:
    r = erp.post("Sales Invoice", refund("ACC-SINV-1999-99999"))
    assert r.status_code == 417 and r.json()["exc_type"] == "LinkValidationError"
    assert messages(r) == ["Could not find Return Against: ACC-SINV-1999-99999"]
    draft = erp.create(docstatus=0)
    r = erp.post("Sales Invoice", refund(draft["name"]))
    assert messages(r) == [f"Could not find Return Against: {draft['name']}"]
    pos = erp.create("POS Invoice")
    assert erp.post("Sales Invoice", refund(pos["name"])).status_code == 417  # another doctype
    r = erp.post("Sales Invoice", refund(None))
    assert r.json()["exc_type"] == "MandatoryError"
    assert messages(r) == ["Error: Value missing for Sales Invoice: Return Against"]


def test_return_quantities_and_payments_must_be_negative(erp: Erp) -> None:
    original = erp.create()
    r = erp.post("Sales Invoice", refund(original["name"], items=[{"item_code": "BREAD", "qty": 1}]))
    assert r.status_code == 417 and messages(r) == ["Row #1: Quantity must be negative for return"]
    # a row not linked to the original's row is not checked: accepted, with a message (recorded ret-f1)
    r = erp.post("Sales Invoice", refund(original["name"], items=[{"item_code": "MILK", "qty": -1}],
                                         payments=[{"mode_of_payment": "Cash", "amount": -0.99, "account": "Cash - S1"}]))
    assert r.status_code == 200, r.text
    assert messages(r) == [f"Row # 1: Returned Item MILK does not exist in Sales Invoice {original['name']}"]
    r = erp.post("Sales Invoice", refund(original["name"], payments=[
        {"mode_of_payment": "Cash", "amount": 1.2, "account": "Cash - S1"}]))
    assert messages(r) == ["Row #1 (Payment Table): Amount must be negative"]
    pos = erp.create("POS Invoice")
    r = erp.post("POS Invoice", refund(pos["name"], items=[{"item_code": "BREAD", "qty": 1}]))
    assert messages(r) == ["Row #1: You cannot add postive quantities in a return invoice. "
                           "Please remove item <strong>BREAD</strong> to complete the return."]


# --- custom fields and list queries -------------------------------------------------------


def test_custom_field_create_filter_and_unique(erp: Erp) -> None:
    fieldname = f"custom_ref_{txn()[3:]}"
    r = erp.list("Sales Invoice", [[fieldname, "=", "x"]])
    assert r.status_code == 417 and r.json()["exc_type"] == "DataError"
    assert messages(r) == [f"Field not permitted in query: {fieldname}"]
    # before the field exists, a value for it is dropped like any unknown key
    assert fieldname not in erp.create(**{fieldname: "early"})

    r = erp.post("Custom Field", {"dt": "Sales Invoice", "fieldname": fieldname, "fieldtype": "Data",
                                  "label": "Till reference", "unique": 1, "insert_after": "remarks"})
    assert r.status_code == 200, r.text
    field = r.json()["data"]
    assert field["name"] == f"Sales Invoice-{fieldname}" and field["unique"] == 1
    again = erp.post("Custom Field", {"dt": "Sales Invoice", "fieldname": fieldname, "label": "x"})
    assert again.status_code == 417 and again.json()["exc_type"] == "ValidationError"
    assert messages(again) == [f"A field with the name <strong>{fieldname}</strong> already exists in Sales Invoice"]
    listed = erp.list("Custom Field", [["dt", "=", "Sales Invoice"], ["fieldname", "=", fieldname]], ["name", "unique"])
    assert listed.json() == {"data": [{"name": f"Sales Invoice-{fieldname}", "unique": 1}]}

    doc = erp.create(**{fieldname: "R-1"})
    assert doc[fieldname] == "R-1"
    found = erp.list("Sales Invoice", [[fieldname, "=", "R-1"]], ["name", fieldname]).json()
    assert found == {"data": [{"name": doc["name"], fieldname: "R-1"}]}
    dup = erp.post("Sales Invoice", sale(**{fieldname: "R-1"}))
    assert dup.status_code == 417 and dup.json()["exc_type"] == "UniqueValidationError"
    assert messages(dup) == ["Till reference must be unique"]
    assert "Duplicate entry 'R-1'" in dup.json()["exception"]
    assert len(erp.list("Sales Invoice", {fieldname: "R-1"}).json()["data"]) == 1


def test_custom_field_name_from_label_and_checks(erp: Erp) -> None:
    label = f"Shift {txn()[3:]}"
    r = erp.post("Custom Field", {"dt": "POS Invoice", "label": label})
    assert r.status_code == 200 and r.json()["data"]["fieldname"] == "custom_" + label.lower().replace(" ", "_")
    assert erp.post("Custom Field", {"label": "x"}).json()["exc_type"] == "MandatoryError"
    r = erp.post("Custom Field", {"dt": "No Such DocType", "fieldname": "custom_x"})
    assert r.json()["exc_type"] == "LinkValidationError"
    r = erp.post("Custom Field", {"dt": "Sales Invoice", "fieldname": "customer"})
    assert messages(r) == ["A field with the name <strong>customer</strong> already exists in Sales Invoice"]


@pytest.mark.parametrize(("filters", "fields", "bad"), [
    ([["no_such_field", "=", 1]], None, "no_such_field"),
    ({"no_such_field": 1}, None, "no_such_field"),
    ([["Sales Invoice", "no_such_field", "=", 1]], None, "no_such_field"),
    ([["Sales Invoice Item", "colour", "=", "red"]], None, "colour"),
    (None, ["name", "no_such_field"], "no_such_field"),
])
def test_unknown_query_fields_are_data_errors(erp: Erp, filters: object, fields: object, bad: str) -> None:
    r = erp.list("Sales Invoice", filters, fields)
    assert r.status_code == 417 and r.json()["exc_type"] == "DataError"
    assert messages(r) == [f"Field not permitted in query: {bad}"]


def test_list_queries_on_standard_and_child_fields(erp: Erp) -> None:
    ref = txn()
    doc = erp.create(custom_pos_edge_txn_id=ref, items=[{"item_code": "MILK", "qty": 4}],
                     payments=[{"mode_of_payment": "Cash", "amount": 3.96, "account": "Cash - S1"}])
    rows = erp.list("Sales Invoice", [["Sales Invoice Item", "item_code", "=", "MILK"], ["docstatus", "=", 1],
                                      ["custom_pos_edge_txn_id", "like", f"%{ref[3:]}"]],
                    ["name", "grand_total", "creation", "owner"]).json()["data"]
    assert [r["name"] for r in rows] == [doc["name"]] and rows[0]["owner"] == "api@shop1.test"
    star = erp.list("Sales Invoice", [["name", "=", doc["name"]]], "*").json()["data"]
    assert star[0]["customer"] == "Walk-in Customer" and "items" not in star[0]
    page = erp.list("Sales Invoice", None, ["name"], limit_page_length=2, order_by="creation asc").json()["data"]
    assert len(page) == 2
