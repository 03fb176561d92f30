"""POS Closing Entry on the stand-in, over real sockets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.standin.conftest import COMPANY, Erp, messages


def closing(*invoices: str, **over: object) -> dict:
    body = {
        "pos_profile": "Shop One Main", "company": COMPANY, "posting_date": date.today().isoformat(),
        "period_start_date": f"{date.today()} 08:00:00", "period_end_date": f"{date.today()} 20:00:00",
        "payment_reconciliation": [{"mode_of_payment": "Cash", "opening_amount": 50, "expected_amount": 62.4,
                                    "closing_amount": 62}],
        "pos_transactions": [{"pos_invoice": name} for name in invoices],
    }
    body.update(over)
    return body


def test_closing_entry_sums_its_pos_invoices(erp: Erp) -> None:
    first = erp.create("POS Invoice")
    second = erp.create("POS Invoice", items=[{"item_code": "MILK", "qty": 3}],
                        payments=[{"mode_of_payment": "Cash", "amount": 2.97}])
    r = erp.post("POS Closing Entry", closing(first["name"], second["name"]))
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    assert doc["name"].startswith(f"POS-CLO-{date.today().year}-") and doc["status"] == "Draft"
    assert Decimal(str(doc["grand_total"])) == Decimal(str(doc["net_total"])) == Decimal("9.17")
    assert doc["total_quantity"] == 6
    assert [t["pos_invoice"] for t in doc["pos_transactions"]] == [first["name"], second["name"]]
    assert [t["idx"] for t in doc["pos_transactions"]] == [1, 2]
    assert doc["payment_reconciliation"][0]["difference"] == -0.4
    read = erp.get("POS Closing Entry", doc["name"]).json()["data"]
    assert {k: v for k, v in read.items() if k != "posting_time"} == {k: v for k, v in doc.items() if k != "posting_time"}
    later = erp.post("POS Closing Entry", closing(first["name"], docstatus=1)).json()["data"]
    assert int(later["name"][-5:]) == int(doc["name"][-5:]) + 1 and later["status"] == "Submitted"


def test_closing_entry_links_and_invoices_are_checked(erp: Erp) -> None:
    r = erp.post("POS Closing Entry", closing(pos_profile="Nope", company="Nope Ltd"))
    assert r.status_code == 417 and r.json()["exc_type"] == "LinkValidationError"
    assert messages(r) == ["Could not find Company: Nope Ltd, POS Profile: Nope"]
    r = erp.post("POS Closing Entry", closing("ACC-PSINV-1999-00001"))
    assert messages(r) == ["Could not find Row #1: POS Invoice: ACC-PSINV-1999-00001"]
    draft = erp.create("POS Invoice", docstatus=0)
    r = erp.post("POS Closing Entry", closing(draft["name"]))
    assert r.status_code == 417 and r.json()["exc_type"] == "ValidationError"
    assert messages(r) == [["Row #1: POS Invoice is not submitted"]]
    r = erp.post("POS Closing Entry", {"company": COMPANY})
    assert r.json()["exc_type"] == "MandatoryError"
    assert messages(r) == ["Error: Value missing for POS Closing Entry: Period Start Date",
                           "Error: Value missing for POS Closing Entry: Period End Date",
                           "Error: Value missing for POS Closing Entry: POS Profile"]
