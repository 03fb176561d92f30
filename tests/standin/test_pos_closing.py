"""POS Opening and Closing Entries on the stand-in, over real sockets, as recorded on a real
ERPNext 15 site (fixtures/real_erpnext/pos/pos_closing.json); the old test sites' leniency last."""

from __future__ import annotations

from datetime import date

from tests.standin.conftest import COMPANY, Erp, at_local, messages, open_shift, pos_sale

GET_POS_INVOICES = "/api/method/erpnext.accounts.doctype.pos_closing_entry.pos_closing_entry.get_pos_invoices"


def unconsolidated(real: Erp, start: str = "2026-11-28 00:00:00", end: str = "2026-11-28 23:59:59") -> list[str]:
    r = real.http.get(GET_POS_INVOICES, params={"start": start, "end": end, "pos_profile": "Shop One Counter",
                                                "user": "Administrator"})
    assert r.status_code == 200, r.text
    return [d["name"] for d in r.json()["message"]]


def test_opening_entries_open_may_be_duplicated_and_are_listed(real: Erp) -> None:
    first, second = open_shift(real), open_shift(real)  # pinv-d: no refusal of a second open shift
    assert (first["status"], first["docstatus"], first["period_start_date"]) == ("Open", 1, "2026-11-28 08:00:00")
    assert first["name"] == "POS-OPE-2026-00001" and second["name"] == "POS-OPE-2026-00002"
    rows = real.list("POS Opening Entry", [["pos_profile", "=", "Shop One Counter"], ["user", "=", "Administrator"],
                                           ["status", "=", "Open"], ["docstatus", "=", 1]],
                     ["name", "period_start_date", "status"]).json()["data"]
    assert [r["name"] for r in rows] == [first["name"], second["name"]]


def test_a_closing_entry_needs_an_open_opening_entry(real: Erp) -> None:
    for name in (None, "POS-OPE-2099-99999"):  # close-a; an unknown name gets the same answer
        r = real.post("POS Closing Entry", {"pos_opening_entry": name, "company": COMPANY, "docstatus": 1})
        assert r.status_code == 417 and messages(r) == ["Selected POS Opening Entry should be open."]
    shift = open_shift(real)
    assert real.post("POS Closing Entry", {"pos_opening_entry": shift["name"], "company": COMPANY,
                                           "docstatus": 1}).status_code == 200
    again = real.post("POS Closing Entry", {"pos_opening_entry": shift["name"], "company": COMPANY, "docstatus": 1})
    assert again.status_code == 417 and messages(again) == ["Selected POS Opening Entry should be open."]  # close-d


def test_a_minimal_closing_entry_takes_its_shift_from_the_opening_entry(real: Erp) -> None:
    shift = open_shift(real)
    at_local(real.site, "2026-11-28 17:30:00")
    r = real.post("POS Closing Entry", {"pos_opening_entry": shift["name"], "company": COMPANY, "docstatus": 1,
                                        "user": "someone@else", "period_start_date": "2026-11-28 00:00:00"})
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    # fetched from the opening entry, whatever was sent (close-b1, close-e6); end: today's date
    assert (doc["user"], doc["pos_profile"], doc["period_start_date"]) == ("Administrator", "Shop One Counter",
                                                                           "2026-11-28 08:00:00")
    assert (doc["period_end_date"], doc["posting_date"], doc["posting_time"]) == ("2026-11-28", "2026-11-28",
                                                                                  "17:30:00.000000")
    assert (doc["status"], doc["grand_total"], doc["pos_transactions"], doc["payment_reconciliation"]) == (
        "Submitted", 0.0, [], [])
    assert real.get("POS Closing Entry", doc["name"]).json()["data"]["period_end_date"] == "2026-11-28 00:00:00"
    opening = real.get("POS Opening Entry", shift["name"]).json()["data"]
    assert (opening["status"], opening["pos_closing_entry"]) == ("Closed", doc["name"])


def test_submitting_consolidates_only_the_invoices_listed(real: Erp) -> None:
    shift = open_shift(real)
    at_local(real.site, "2026-11-28 12:00:01")
    x = real.post("POS Invoice", pos_sale()).json()["data"]
    at_local(real.site, "2026-11-28 12:05:02.5")
    y = real.post("POS Invoice", pos_sale(items=[{"item_code": "SUGAR-1KG", "qty": 1, "rate": 5000}],
                                          payments=[{"mode_of_payment": "Cash", "amount": 6000}],
                                          paid_amount=6000)).json()["data"]
    assert unconsolidated(real) == [x["name"], y["name"]]
    r = real.post("POS Closing Entry", {
        "pos_opening_entry": shift["name"], "company": COMPANY, "docstatus": 1,
        "pos_transactions": [{"pos_invoice": x["name"]}], "grand_total": 1, "net_total": 2, "total_quantity": 3,
        "payment_reconciliation": [{"mode_of_payment": "Cash", "opening_amount": 20000, "expected_amount": 44000,
                                    "closing_amount": 43500, "difference": -1}]})
    assert r.status_code == 200, r.text
    closing = r.json()["data"]
    # stored as sent, unchecked (close-e6); the row's other fields are fetched
    assert (closing["grand_total"], closing["net_total"], closing["total_quantity"]) == (1.0, 2.0, 3.0)
    assert closing["payment_reconciliation"][0]["difference"] == -1.0
    assert {k: closing["pos_transactions"][0][k] for k in ("pos_invoice", "customer", "grand_total", "is_return")} == {
        "pos_invoice": x["name"], "customer": "Walk-in Customer", "grand_total": 24000.0, "is_return": 0}

    merged = real.get("POS Invoice", x["name"]).json()["data"]
    assert merged["status"] == "Consolidated" and merged["consolidated_invoice"].startswith("ACC-SINV-2026-")
    left = real.get("POS Invoice", y["name"]).json()["data"]
    assert left["status"] == "Paid" and "consolidated_invoice" not in left
    assert unconsolidated(real) == [y["name"]]
    si = real.get("Sales Invoice", merged["consolidated_invoice"]).json()["data"]
    assert (si["is_consolidated"], si["set_posting_time"], si["update_stock"], si["posting_time"]) == (1, 1, 1, "12:00:01")
    assert [(i["item_code"], i["price_list_rate"], i["rate"], i["pos_invoice_item"]) for i in si["items"]] == [
        ("POSHO-5KG", 0.0, 24000.0, x["items"][0]["name"])]
    assert (si["grand_total"], si["paid_amount"], si["status"]) == (24000.0, 24000.0, "Paid")
    logs = real.list("POS Invoice Merge Log", None, ["pos_closing_entry", "consolidated_invoice", "posting_time"]).json()
    # the closing entry's posting time, read back as Frappe writes a Time ("12:05:02.500000" -> "12:05:2.5")
    assert closing["posting_time"] == "12:05:02.500000"
    assert logs["data"] == [{"pos_closing_entry": closing["name"], "consolidated_invoice": si["name"],
                             "posting_time": "12:05:2.5"}]


def test_an_invoice_already_consolidated_is_refused_in_one_list_message(real: Erp) -> None:
    shift = open_shift(real)
    x = real.post("POS Invoice", pos_sale()).json()["data"]
    assert real.post("POS Closing Entry", {"pos_opening_entry": shift["name"], "company": COMPANY, "docstatus": 1,
                                           "pos_transactions": [{"pos_invoice": x["name"]}]}).status_code == 200
    later = open_shift(real)
    z = real.post("POS Invoice", pos_sale()).json()["data"]
    r = real.post("POS Closing Entry", {"pos_opening_entry": later["name"], "company": COMPANY, "docstatus": 1,
                                        "pos_transactions": [{"pos_invoice": z["name"]}, {"pos_invoice": x["name"]}]})
    assert r.status_code == 417 and r.json()["exc_type"] == "ValidationError"
    assert messages(r) == [["Row #2: POS Invoice is already consolidated"]]  # close-e5: a list inside the list
    assert r.json()["exception"] == "frappe.exceptions.ValidationError: ['Row #2: POS Invoice is already consolidated']"


def test_the_invoices_must_be_the_shifts(real: Erp) -> None:
    shift = open_shift(real)
    draft = real.post("POS Invoice", pos_sale(docstatus=0)).json()["data"]
    open_shift(real, "Shop One Main")
    other = real.post("POS Invoice", pos_sale(pos_profile="Shop One Main")).json()["data"]
    r = real.post("POS Closing Entry", {"pos_opening_entry": shift["name"], "company": COMPANY, "docstatus": 1,
                                        "pos_transactions": [{"pos_invoice": draft["name"]}, {"pos_invoice": other["name"]}]})
    assert messages(r) == [["Row #1: POS Invoice is not submitted",
                            "Row #2: POS Profile doesn't match <strong>Shop One Counter</strong>"]]


# --- the old test sites (strict_closing off: the gateway does not open shifts yet) ---------------


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


def test_a_lenient_site_closes_without_an_opening_entry(erp: Erp) -> None:
    first = erp.create("POS Invoice")
    r = erp.post("POS Closing Entry", closing(first["name"], docstatus=1))
    assert r.status_code == 200, r.text
    doc = r.json()["data"]
    assert doc["name"].startswith(f"POS-CLO-{date.today().year}-") and doc["status"] == "Submitted"
    assert (doc["pos_profile"], doc["period_start_date"], doc["user"]) == (
        "Shop One Main", f"{date.today()} 08:00:00", "api@shop1.test")
    assert doc["grand_total"] == 0.0 and doc["payment_reconciliation"][0]["difference"] == 0.0  # as sent: none
    assert erp.get("POS Invoice", first["name"]).json()["data"]["status"] == "Consolidated"
    r = erp.post("POS Closing Entry", {"company": COMPANY})
    assert r.json()["exc_type"] == "MandatoryError"
    assert messages(r) == ["Error: Value missing for POS Closing Entry: Period Start Date",
                           "Error: Value missing for POS Closing Entry: POS Profile"]


def test_closing_entry_links_are_checked(erp: Erp) -> None:
    r = erp.post("POS Closing Entry", closing(pos_profile="Nope", company="Nope Ltd"))
    assert r.status_code == 417 and r.json()["exc_type"] == "LinkValidationError"
    assert messages(r) == ["Could not find Company: Nope Ltd, POS Profile: Nope"]
    r = erp.post("POS Closing Entry", closing("ACC-PSINV-1999-00001"))
    assert messages(r) == ["Could not find Row #1: POS Invoice: ACC-PSINV-1999-00001"]
