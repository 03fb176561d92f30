"""POS end to end: till -> pos-edge (uvicorn subprocess) -> the ERPNext stand-in."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from edge.standin import StandIn
from tests.conftest import base_config
from tests.routes.test_erpnext import assert_problem

pytestmark = pytest.mark.usefixtures("pos_data")


def txn() -> str:
    return f"tx-{uuid.uuid4().hex[:12]}"


def sale(**over):
    body = {
        "items": [{"item_code": "cof", "item_name": "Coffee", "qty": 2, "rate": "2.50"},
                  {"item_code": "BREAD", "qty": 1, "rate": "1.20"}],
        "payments": [{"method": "cash", "amount": "5.00"}, {"method": "momo", "amount": "1.20"}],
        "branch_id": "main", "till_id": "till-01", "client_txn_id": txn(),
    }
    body.update(over)
    return body


def invoices(standin: StandIn, site: str = "shop1.erp.test", doctype: str = "Sales Invoice") -> dict:
    return standin.sites[site].docs.get(doctype, {})


def by_reference(standin: StandIn, ref: str, site: str = "shop1.erp.test", doctype: str = "Sales Invoice") -> list:
    # the reference is scoped by device: "<device>/<client_txn_id>"
    return [d for d in invoices(standin, site, doctype).values() if str(d.get("custom_pos_edge_txn_id", "")).endswith("/" + ref)]


def test_sale_with_split_payment(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    r = gateway.request("POST", "/v1/sale", token=token, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["invoice_id"].startswith("ACC-SINV-") and out["docstatus"] == 1
    assert Decimal(str(out["total"])) == Decimal("6.20") == Decimal(str(out["grand_total"]))
    assert [p["mode_of_payment"] for p in out["payments"]] == ["Cash", "Mobile Money"]
    (doc,) = by_reference(standin, body["client_txn_id"])
    assert doc["name"] == out["invoice_id"] and doc["docstatus"] == 1 and doc["is_pos"] == 1
    assert [i["item_code"] for i in doc["items"]] == ["COFFEE", "BREAD"]  # the tenant's alias applied
    assert {i["warehouse"] for i in doc["items"]} == {"Stores - S1"}
    assert [p["account"] for p in doc["payments"]] == ["Cash - S1", "Mobile Money - S1"]
    assert doc["company"] == "Shop One Ltd" and doc["pos_profile"] == "Shop One Main"


def test_change_is_erpnexts(gateway, standin: StandIn) -> None:
    r = gateway.request("POST", "/v1/sale", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"),
                        json=sale(payments=[{"method": "cash", "amount": "10.00"}]))
    assert r.status_code == 201, r.text
    assert Decimal(str(r.json()["change_amount"])) == Decimal("3.80")


def test_offline_sale_keeps_its_posting_date(gateway, standin: StandIn) -> None:
    body = sale(posting_date="2026-11-20", posting_time="18:45:10")
    r = gateway.request("POST", "/v1/sale", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["posting_date"] == "2026-11-20"
    (doc,) = by_reference(standin, body["client_txn_id"])
    assert (doc["posting_date"], str(doc["posting_time"])[:8], doc["set_posting_time"]) == ("2026-11-20", "18:45:10", 1)


@pytest.mark.parametrize("against", ["name", "client_txn_id"])
def test_return_against_invoice_name_or_txn_id(gateway, standin: StandIn, against: str) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    original = sale()
    first = gateway.request("POST", "/v1/sale", token=token, json=original).json()
    ref = first["invoice_id"] if against == "name" else original["client_txn_id"]
    r = gateway.request("POST", "/v1/return", token=token, json={
        "return_against": ref, "items": [{"item_code": "BREAD", "qty": 1, "rate": "1.20"}],
        "payments": [{"method": "cash", "amount": "1.20"}], "branch_id": "main", "till_id": "till-01",
        "client_txn_id": txn()})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["is_return"] is True and out["return_against"] == first["invoice_id"]
    assert [Decimal(str(i["qty"])) for i in out["items"]] == [Decimal(-1)]
    doc = invoices(standin)[out["invoice_id"]]
    assert doc["is_return"] == 1 and Decimal(str(doc["payments"][0]["amount"])) == Decimal("-1.20")


def test_return_against_nothing_is_422(gateway, standin: StandIn) -> None:
    r = gateway.request("POST", "/v1/return", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"), json={
        "return_against": "NO-SUCH", "items": [{"item_code": "BREAD", "qty": 1, "rate": "1.20"}],
        "payments": [], "branch_id": "main", "till_id": "t"})
    body = assert_problem(r, 422, "erpnext_rejected")
    assert "NO-SUCH" in body["detail"]


def test_replayed_key_posts_nothing_again(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    first = gateway.request("POST", "/v1/sale", token=token, json=body)
    again = gateway.request("POST", "/v1/sale", token=token, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.json() == first.json()
    assert len(by_reference(standin, body["client_txn_id"])) == 1


def test_key_reused_with_another_payload_is_422(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    key = txn()
    assert gateway.request("POST", "/v1/sale", token=token, json=sale(), headers={"Idempotency-Key": key}).status_code == 201
    r = gateway.request("POST", "/v1/sale", token=token, json=sale(till_id="till-02"), headers={"Idempotency-Key": key})
    assert_problem(r, 422, "idempotency_key_reused")


def test_concurrent_duplicate_is_409(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    standin.delay = 1.0
    results: list[httpx.Response] = []

    def send() -> None:
        with httpx.Client(base_url=gateway.url, timeout=15) as c:
            results.append(c.post("/v1/sale", json=body, headers={"Host": "shop1.tillking.test", "Authorization": f"Bearer {token}"}))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201, 409]
    loser = next(r for r in results if r.status_code == 409)
    assert loser.json()["code"] == "idempotency_in_progress" and loser.headers["retry-after"]
    assert len(by_reference(standin, body["client_txn_id"])) == 1


@pytest.mark.parametrize("mode", ["drop", "hang"])
def test_committed_then_lost_answer_is_found_not_reposted(gateway, standin: StandIn, mode: str) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    standin.fail_after_commit(times=1, mode=mode, hang_seconds=5)  # the test gateway's ERPNext timeout is 2 s
    r = gateway.request("POST", "/v1/sale", token=token, json=body)
    assert r.status_code == 201, r.text
    (doc,) = by_reference(standin, body["client_txn_id"])
    assert r.json()["invoice_id"] == doc["name"]


def test_unknown_item_is_erpnexts_422(gateway, standin: StandIn) -> None:
    r = gateway.request("POST", "/v1/sale", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"),
                        json=sale(items=[{"item_code": "NOPE", "qty": 1, "rate": "1"}], payments=[{"method": "cash", "amount": 1}]))
    body = assert_problem(r, 422, "erpnext_rejected")
    assert body["erpnext"]["exc_type"] == "DoesNotExistError" and "NOPE" in body["detail"]
    assert body["sale_state"] == "not_posted"


def test_erpnext_validation_message_is_surfaced(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    gateway.request("POST", "/v1/sale", token=token, json=sale())  # warm the master-data caches
    standin.fail_next(status=417, exc_type="ValidationError", message="Row #1: Stock not available for Item BREAD")
    r = gateway.request("POST", "/v1/sale", token=token, json=sale())
    body = assert_problem(r, 422, "erpnext_rejected")
    assert body["erpnext"]["messages"] == ["Row #1: Stock not available for Item BREAD"]


def test_unknown_customer_is_refused_before_erpnext_500s(gateway, standin: StandIn) -> None:
    r = gateway.request("POST", "/v1/sale", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"), json=sale(customer="Nobody"))
    body = assert_problem(r, 422, "erpnext_rejected")
    assert "Customer Nobody does not exist" in body["detail"]


def test_erpnext_down_says_the_sale_is_not_posted(gateway_factory, tmp_path, standin) -> None:
    from edge.standin.server import free_port
    from tests.conftest import base_config

    # the breaker stays out of the way (the start-up's own calls fail too): tests/shield tests it
    gw = gateway_factory(base_config(tmp_path, f"http://127.0.0.1:{free_port()}", breaker={"failures": 1000}))
    r = gw.request("POST", "/v1/sale", token=gw.token("till-x"), json=sale())
    body = assert_problem(r, 502, "upstream_unreachable")
    assert body["sale_state"] == "not_posted"


def test_tenant_on_pos_invoice(gateway, standin: StandIn) -> None:
    body = sale(branch_id="front", items=[{"item_code": "MILK", "qty": 3, "rate": "0.99"}],
                payments=[{"method": "cash", "amount": "3.00"}])
    r = gateway.request("POST", "/v1/sale", tenant="shop2", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}", tenant="shop2"), json=body)
    assert r.status_code == 201, r.text
    assert r.json()["invoice_id"].startswith("ACC-PSINV-")
    (doc,) = by_reference(standin, body["client_txn_id"], site="shop2.erp.test", doctype="POS Invoice")
    assert doc["company"] == "Shop Two Ltd" and doc["payments"][0]["account"] == "Cash - S2"


def test_a_sale_erpnext_already_has_is_answered_not_duplicated(gateway, standin: StandIn) -> None:
    # The invoice reached ERPNext by an earlier, unanswered attempt: its unique
    # reference field makes ERPNext refuse the repost (417 UniqueValidationError).
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    first = gateway.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": txn()})
    again = gateway.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": txn()})
    assert first.status_code == again.status_code == 201, again.text
    assert again.json()["invoice_id"] == first.json()["invoice_id"]
    assert len(by_reference(standin, body["client_txn_id"])) == 1


def test_erpnext_setup_creates_the_reference_field(gateway_factory, tmp_path, standin_server, standin) -> None:
    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url)
    field = f"custom_txn_{uuid.uuid4().hex[:6]}"
    cfg["tenants"]["shop1"]["reference_field"] = field
    gw = gateway_factory(cfg)
    missing = gw.wait_log("reference_field_missing")
    assert any("reference_field_missing" in line and field in line for line in missing)
    assert gw.http.get("/readyz").json()["reference_fields"]["shop1"] == "missing"
    out = gw.cli("erpnext", "setup", "--tenant", "shop1")
    assert out.returncode == 0 and "created Sales Invoice." + field in out.stdout, out.stderr
    assert gw.cli("erpnext", "setup", "--tenant", "shop1").stdout.startswith(f"Sales Invoice.{field} already exists")
    fields = standin.sites["shop1.erp.test"].docs["Custom Field"]
    assert fields[f"Sales Invoice-{field}"]["unique"] == 1
    r = gw.request("POST", "/v1/sale", token=gw.token("till-setup"), json=sale())
    assert r.status_code == 201, r.text  # and the field is used: the reference is stored in it
    assert standin.sites["shop1.erp.test"].docs["Sales Invoice"][r.json()["invoice_id"]][field]


_DAYS_USED: set[str] = set()


def _quiet_day() -> str:
    """A day no other test of this session sells on (closures total whole days of the shared stand-in)."""
    import random
    from datetime import date, timedelta

    while True:
        day = (date(2001, 1, 1) + timedelta(days=random.randrange(3000))).isoformat()
        if day not in _DAYS_USED:
            _DAYS_USED.add(day)
            return day


def _close(gateway, token, tenant, branch, day, balances, **over):
    body = {"branch_id": branch, "till_id": "till-01", "client_txn_id": txn(),
            "period_start": f"{day}T08:00:00", "period_end": f"{day}T20:00:00", "balances": balances, **over}
    return gateway.request("POST", "/v1/closure", tenant=tenant, token=token, json=body)


def test_closure_on_sales_invoices_is_recorded_with_erpnexts_totals(gateway, standin: StandIn) -> None:
    import asyncio

    from edge.config import load
    from edge.store import open_store

    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    day = _quiet_day()
    for at, pay in (("09:00:00", [{"method": "cash", "amount": "10.00"}]),  # 6.20, 3.80 change
                    ("12:30:00", [{"method": "cash", "amount": "5.00"}, {"method": "momo", "amount": "1.20"}]),
                    ("21:00:00", [{"method": "cash", "amount": "6.20"}])):  # after the period
        r = gateway.request("POST", "/v1/sale", token=token, json=sale(posting_date=day, posting_time=at, payments=pay))
        assert r.status_code == 201, r.text
    r = _close(gateway, token, "shop1", "main", day, [
        {"method": "cash", "opening_amount": "100", "closing_amount": "111.00"},
        {"method": "momo", "closing_amount": "1.20"}])
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["invoice_count"] == 2 and out["closing_entry"] is None
    cash, momo = out["methods"]
    assert Decimal(str(cash["erpnext_amount"])) == Decimal("11.20")  # 6.20 + 5.00
    assert Decimal(str(cash["expected_amount"])) == Decimal("111.20")
    assert Decimal(str(cash["difference"])) == Decimal("-0.20")
    assert Decimal(str(momo["expected_amount"])) == Decimal("1.20") == Decimal(str(momo["closing_amount"]))

    async def recorded() -> bytes | None:
        store = open_store(load(gateway.config_path).gateway.store)
        await store.open()
        try:
            return await store.get_closure("shop1", out["closure_id"])
        finally:
            await store.close()

    import json
    assert json.loads(asyncio.run(recorded()))["invoice_count"] == 2


def test_closure_on_pos_invoices_posts_a_closing_entry(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}", tenant="shop2")
    day = _quiet_day()
    body = sale(branch_id="front", posting_date=day, posting_time="10:00:00",
                items=[{"item_code": "MILK", "qty": 2, "rate": "0.99"}], payments=[{"method": "cash", "amount": "1.98"}])
    sold = gateway.request("POST", "/v1/sale", tenant="shop2", token=token, json=body).json()
    r = _close(gateway, token, "shop2", "front", day, [{"method": "cash", "opening_amount": "50", "closing_amount": "51.98"}])
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["closing_entry"].startswith("POS-CLO-") and out["closure_id"] == out["closing_entry"]
    entry = standin.sites["shop2.erp.test"].docs["POS Closing Entry"][out["closing_entry"]]
    assert [t["pos_invoice"] for t in entry["pos_transactions"]] == [sold["invoice_id"]]
    assert entry["pos_profile"] == "Shop Two Front" and entry["docstatus"] == 1
    assert entry["pos_opening_entry"] == out["opening_entry"] and out["opening_entry"]
    # the opening amount is the shift's (ERPNext's POS Opening Entry: 0), and the till's 50 is reported
    assert Decimal(str(entry["payment_reconciliation"][0]["expected_amount"])) == Decimal("1.98")
    assert {"field": "opening_amount", "method": "cash", "till": "50", "erpnext": "0"} in out["differences"]
    assert out["methods"][0]["difference"] == 50
    # the same period closed again (a retry with a new key): the existing entry, not a second one
    again = _close(gateway, token, "shop2", "front", day, [{"method": "cash", "opening_amount": "50", "closing_amount": "51.98"}])
    assert again.status_code == 201 and again.json()["closing_entry"] == out["closing_entry"]
    same_shift = [e for e in standin.sites["shop2.erp.test"].docs["POS Closing Entry"].values()
                  if e["pos_opening_entry"] == out["opening_entry"]]
    assert len(same_shift) == 1


@pytest.mark.parametrize(
    ("over", "loc"),
    [({"balances": [{"method": "bitcoin", "closing_amount": 1}]}, ["balances", "0", "method"]),
     ({"period_end": "2020-01-01T07:00:00"}, [])],
)
def test_closure_validation(gateway, standin: StandIn, over, loc) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    over = dict(over)  # parameters are shared between the two store backends
    balances = over.pop("balances", [{"method": "cash", "closing_amount": 1}])
    r = _close(gateway, token, "shop1", "main", "2020-01-01", balances, **over)
    body = assert_problem(r, 422, "validation_failed")
    assert any(e["loc"] == loc for e in body["errors"]), body["errors"]


@pytest.mark.parametrize("body", ["[" * 100_000 + "]" * 100_000, '{"a":' * 5_000 + "1" + "}" * 5_000])
def test_deeply_nested_json_is_422_not_500(gateway, standin: StandIn, body: str) -> None:
    # Well under the size limit, but past the JSON decoder's recursion limit: it was an
    # unhandled RecursionError: a 500, or a dropped connection.
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    for path, auth in (("/v1/sale", token), ("/sync/batch", token), ("/gateway/device/register", None)):
        r = gateway.request("POST", path, token=auth, content=body, headers={"Content-Type": "application/json"})
        problem = assert_problem(r, 422, "validation_failed")
        assert problem["errors"] == [{"loc": ["body"], "msg": "nested too deeply"}], path
    assert gateway.request("GET", "/erpnext/Item", token=token).status_code == 200  # still serving


def test_every_answer_after_the_limiter_carries_its_headers(gateway, standin: StandIn) -> None:
    """/v1 and /sync answers (created, replayed, refused by validation, queued, status) carry
    RateLimit-Policy and RateLimit like the proxy's: the README says every response does, and
    only registration's 201 and problems raised in routes did."""
    from tests.sync.helpers import sale_txn

    token = gateway.token(f"till-{uuid.uuid4().hex[:8]}")
    body = sale()
    answers = {
        "sale 201": gateway.request("POST", "/v1/sale", token=token, json=body),
        "sale replayed": gateway.request("POST", "/v1/sale", token=token, json=body),
        "sale 422": gateway.request("POST", "/v1/sale", token=token, json=sale(branch_id="moon")),
        "closure 422": gateway.request("POST", "/v1/closure", token=token, json={}),
        "batch 202": (queued := gateway.request("POST", "/sync/batch", token=token, json={"transactions": [sale_txn()]})),
        "batch 422": gateway.request("POST", "/sync/batch", token=token, json={"transactions": []}),
        "status 200": gateway.request("GET", queued.headers["location"], token=token),
        "status 404": gateway.request("GET", f"/sync/status/{uuid.uuid4()}", token=token),
    }
    assert [a.status_code for a in answers.values()] == [201, 201, 422, 422, 202, 422, 200, 404]
    assert answers["sale replayed"].headers["idempotent-replayed"] == "true"
    for name, r in answers.items():
        assert r.headers.get("ratelimit-policy") == '"default";q=1000;w=60', name
        assert r.headers.get("ratelimit", "").startswith('"default";r='), name


def test_two_tills_may_reuse_a_transaction_id(gateway, standin: StandIn) -> None:
    # Transaction ids are scoped per device: till B's sale "1" is not till A's sale "1".
    txid = txn()
    a = gateway.request("POST", "/v1/sale", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"), json=sale(client_txn_id=txid))
    b = gateway.request("POST", "/v1/sale", token=gateway.token(f"till-{uuid.uuid4().hex[:6]}"),
                        json=sale(client_txn_id=txid, payments=[{"method": "cash", "amount": "20.00"}]))
    assert a.status_code == b.status_code == 201, b.text
    assert a.json()["invoice_id"] != b.json()["invoice_id"]
    assert len(by_reference(standin, txid)) == 2


def test_retry_after_an_unknown_outcome_looks_first(gateway_factory, tmp_path, standin_server, standin) -> None:
    import time as _time

    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["reference_field"] = "po_no"  # not unique: only the look-up prevents a duplicate
    gw = gateway_factory(cfg)
    token = gw.token("till-unknown")
    body = sale()
    gw.request("POST", "/v1/sale", token=token, json=sale())  # warm the master-data caches
    standin.delay = 2.5  # ERPNext slower than the gateway's 2 s timeout: it commits after the gateway gave up
    r = gw.request("POST", "/v1/sale", token=token, json=body)
    problem = assert_problem(r, 504, "upstream_timeout")
    assert problem["sale_state"] == "unknown"  # the look-up timed out too: never "not_posted"
    _time.sleep(2.0)  # the first insert completes in the stand-in meanwhile
    standin.delay = 0
    again = gw.request("POST", "/v1/sale", token=token, json=body)
    assert again.status_code == 201, again.text
    refs = [d for d in invoices(standin).values() if str(d.get("po_no", "")).endswith("/" + body["client_txn_id"])]
    assert len(refs) == 1 and again.json()["invoice_id"] == refs[0]["name"]


def test_a_missing_reference_field_refuses_sales(gateway_factory, tmp_path, standin_server, standin) -> None:
    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["reference_field"] = f"custom_absent_{uuid.uuid4().hex[:6]}"
    gw = gateway_factory(cfg)
    gw.wait_log("reference_field_missing")
    before = len(invoices(standin))
    r = gw.request("POST", "/v1/sale", token=gw.token("till-m"), json=sale())
    body = assert_problem(r, 503, "reference_field_missing")
    assert "pos-edge erpnext setup --tenant shop1" in body["detail"]
    assert len(invoices(standin)) == before


def test_a_store_outage_is_503_not_500(gateway_factory, tmp_path, standin_server, standin, private_redis) -> None:
    # The device's status is still cached when the store goes away: the idempotency claim
    # (/v1) or the batch look-up (/sync/status) is the first store call, and its failure
    # was an unhandled 500.
    cfg = base_config(tmp_path, standin_server.url, device_cache_ttl=5)
    cfg["gateway"]["store"] = private_redis.url
    gw = gateway_factory(cfg)
    token = gw.token("till-1")
    assert gw.request("POST", "/v1/sale", token=token, json=sale()).status_code == 201
    batch = gw.request("POST", "/sync/batch", token=token, json={"transactions": [
        {"type": "sale", "client_txn_id": txn(), "payload": {k: v for k, v in sale().items() if k != "client_txn_id"}}]})
    assert batch.status_code == 202, batch.text
    private_redis.stop()
    r = gw.request("POST", "/v1/sale", token=token, json=sale())
    problem = assert_problem(r, 503, "store_unavailable")
    assert r.headers["retry-after"] == "5" and problem["sale_state"] == "not_posted"
    r = gw.request("GET", batch.headers["location"], token=token)
    assert_problem(r, 503, "store_unavailable")
    assert r.headers["retry-after"] == "5"


@pytest.mark.parametrize("amount", ["１２", "١٢", "1_000", "1.2.3", "0x10"])
def test_money_in_other_digits_or_spellings_is_422(gateway, standin: StandIn, amount: str) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale(items=[{"item_code": "BREAD", "qty": 1, "rate": amount}], payments=[{"method": "cash", "amount": "1000"}])
    problem = assert_problem(gateway.request("POST", "/v1/sale", token=token, json=body), 422, "validation_failed")
    assert any(e["loc"] == ["items", "0", "rate"] and "ASCII" in e["msg"] for e in problem["errors"]), problem["errors"]
    assert by_reference(standin, body["client_txn_id"]) == []


def test_a_live_request_keeps_its_claim_and_a_crashed_ones_expires_in_seconds(gateway_factory, tmp_path,
                                                                             standin_server, standin: StandIn) -> None:
    from tests.conftest import start_gateway

    cfg = base_config(tmp_path, standin_server.url, claim_lease=2)
    gw = gateway_factory(cfg)
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    # A live sale slower than the lease (ERPNext answers each call in 0.8 s): a second request
    # with the key 2.5 s in still finds it in progress, because the first one renews its claim.
    body = sale()
    standin.delay = 0.8
    first: dict = {}
    slow = threading.Thread(target=lambda: first.update(r=gw.request("POST", "/v1/sale", token=token, json=body)))
    slow.start()
    time.sleep(2.5)
    assert_problem(gw.request("POST", "/v1/sale", token=token, json=body), 409, "idempotency_in_progress")
    slow.join()
    standin.delay = 0
    assert first["r"].status_code == 201, first["r"].text
    # A gateway killed mid-sale: its claim lapses within the 2 s lease, and the retry is answered.
    body = sale()
    standin.slow_commit(1.2)
    crash = threading.Thread(target=lambda: _quietly(gw.request, "POST", "/v1/sale", token=token, json=body))
    crash.start()
    time.sleep(0.5)
    gw.proc.kill()
    gw.proc.wait()
    crash.join()
    again = start_gateway(tmp_path / "gw0", cfg, config_path=gw.config_path)
    try:
        started = time.monotonic()
        while (r := again.request("POST", "/v1/sale", token=token, json=body)).status_code == 409:
            assert time.monotonic() - started < 6, "the dead request's claim held"
            time.sleep(0.25)
        assert r.status_code == 201, r.text
        assert len(by_reference(standin, body["client_txn_id"])) == 1
    finally:
        again.stop()


def _quietly(call, *args, **kwargs) -> None:
    try:
        call(*args, **kwargs)
    except httpx.HTTPError:
        pass


def test_a_sale_for_another_branch_than_the_tokens_is_403(gateway_factory, tmp_path, standin_server,
                                                           standin: StandIn) -> None:
    from tests.sync.helpers import sale_txn

    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["branches"]["north"] = {"pos_profile": "Shop One Main", "warehouse": "Stores - S1"}
    gw = gateway_factory(cfg)
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")  # registered for branch "main"
    body = sale(branch_id="north")
    problem = assert_problem(gw.request("POST", "/v1/sale", token=token, json=body), 403, "branch_not_allowed")
    assert problem["errors"] == [{"loc": ["branch_id"], "msg": "not this device's branch"}]
    assert by_reference(standin, body["client_txn_id"]) == []
    r = gw.request("POST", "/sync/batch", token=token, json={"transactions": [sale_txn(), sale_txn(branch_id="north")]})
    problem = assert_problem(r, 403, "branch_not_allowed")
    assert [e["loc"] for e in problem["errors"]] == [["transactions", "1", "payload", "branch_id"]]
    assert gw.request("POST", "/v1/sale", token=token, json=sale()).status_code == 201


def test_till_king_registrations_with_a_null_or_integer_branch(gateway_factory, tmp_path, standin_server,
                                                                standin: StandIn) -> None:
    import yaml

    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["branches"] = {1: {"pos_profile": "Shop One Main", "warehouse": "Stores - S1"},
                                           "main": cfg["tenants"]["shop1"]["branches"]["main"]}
    gw = gateway_factory(cfg)
    assert "1:" in gw.config_path.read_text() and 1 in yaml.safe_load(gw.config_path.read_text())["tenants"]["shop1"][
        "branches"]  # an integer key, as an admin writes it
    # the contract's registration bodies, literally: branch_id null, and branch_id 1
    none = gw.register(f"till-{uuid.uuid4().hex[:6]}", branch_id=None, device_name="Till 1 Front")
    one = gw.register(f"till-{uuid.uuid4().hex[:6]}", branch_id=1)
    assert (none.status_code, one.status_code) == (201, 201), (none.text, one.text)
    assert none.json()["branch_id"] is None and one.json()["branch_id"] == "1"
    # a till registered with a branch need not repeat it; an integer names the same branch
    body = sale()
    del body["branch_id"]
    r = gw.request("POST", "/v1/sale", token=one.json()["token"], json=body)
    assert r.status_code == 201, r.text
    assert gw.request("POST", "/v1/sale", token=one.json()["token"], json=sale(branch_id=1)).status_code == 201
    assert_problem(gw.request("POST", "/v1/sale", token=one.json()["token"], json=sale(branch_id="main")),
                   403, "branch_not_allowed")
    # a till with no branch names one on each sale
    problem = assert_problem(gw.request("POST", "/v1/sale", token=none.json()["token"], json=body),
                             422, "validation_failed")
    assert problem["errors"] == [{"loc": ["branch_id"], "msg": "required: this device was registered without a branch"}]
    assert gw.request("POST", "/v1/sale", token=none.json()["token"], json=sale(branch_id="main")).status_code == 201
