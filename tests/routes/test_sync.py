"""/sync/batch and /sync/status end to end: till -> pos-edge (in-process workers) -> the ERPNext stand-in,
on both store backends."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from edge.standin import StandIn
from tests.routes.test_erpnext import assert_problem
from tests.sync.helpers import (
    invoices_for,
    return_txn,
    sale_txn,
    status,
    upload,
    wait_batch,
)

pytestmark = pytest.mark.usefixtures("pos_data")


def till(gateway, tenant: str = "shop1") -> str:
    return gateway.token(f"till-{uuid.uuid4().hex[:6]}", tenant)


def test_a_batch_is_queued_then_posted_once_each(gateway, standin: StandIn) -> None:
    token = till(gateway)
    sales = [sale_txn() for _ in range(4)]
    ret = return_txn(against=sales[0]["client_txn_id"])
    r = gateway.request("POST", "/sync/batch", token=token, json={"transactions": [*sales, ret]})
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert set(accepted) == {"batch_uuid", "job_count", "enqueued", "redis_ok"}
    assert (accepted["job_count"], accepted["enqueued"], accepted["redis_ok"]) == (5, 5, True)
    assert r.headers["location"] == f"/sync/status/{accepted['batch_uuid']}"
    body = wait_batch(gateway, token, accepted["batch_uuid"])
    assert body["status"] == "synced", body
    assert body["summary"] == {"pending": 0, "retrying": 0, "synced": 5, "failed": 0}
    jobs = body["jobs"]
    assert [j["client_txn_id"] for j in jobs] == [t["client_txn_id"] for t in [*sales, ret]]
    for job in jobs:
        (doc,) = invoices_for(standin, job["client_txn_id"])
        assert doc["name"] == job["invoice_id"] and doc["docstatus"] == 1
        assert (job["attempts"], job["last_error"], job["next_attempt_at"]) == (1, None, None)
    # the return waited for its sale and was posted against the sale's real invoice
    (ret_doc,) = invoices_for(standin, ret["client_txn_id"])
    assert ret_doc["is_return"] == 1 and ret_doc["return_against"] == jobs[0]["invoice_id"]
    assert Decimal(str(ret_doc["grand_total"])) == Decimal("-2.50")


def test_batch_limits_and_invalid_transactions_store_nothing(gateway, standin: StandIn) -> None:
    token = till(gateway)
    too_many = [sale_txn() for _ in range(501)]
    body = assert_problem(gateway.request("POST", "/sync/batch", token=token, json={"transactions": too_many}),
                          422, "validation_failed")
    assert "500" in body["detail"] and body["errors"][0]["loc"] == ["transactions"]
    assert_problem(gateway.request("POST", "/sync/batch", token=token, json={"transactions": []}), 422, "validation_failed")
    assert_problem(gateway.request("POST", "/sync/batch", token=token, json=[sale_txn()]), 422, "validation_failed")

    good = sale_txn()
    bad_item = sale_txn(items=[])
    bad_method = sale_txn(payments=[{"method": "bitcoin", "amount": "6.20"}])
    bad_type = {**sale_txn(), "type": "refund"}
    mismatch = sale_txn()
    mismatch["payload"]["client_txn_id"] = "something-else"
    r = gateway.request("POST", "/sync/batch", token=token,
                        json={"transactions": [good, bad_item, bad_method, bad_type, mismatch]})
    body = assert_problem(r, 422, "validation_failed")
    locs = [e["loc"] for e in body["errors"]]
    assert ["transactions", "1", "payload", "items"] in locs
    assert ["transactions", "2", "payload", "payments", "0", "method"] in locs
    assert ["transactions", "3", "type"] in locs
    assert ["transactions", "4", "payload", "client_txn_id"] in locs
    assert not any(loc[1] == "0" for loc in locs)
    # nothing of the refused batch was stored: the good transaction is new when uploaded alone
    assert upload(gateway, token, [good])["enqueued"] == 1


def test_status_is_private_to_the_uploading_device_and_tenant(gateway, standin: StandIn) -> None:
    token = till(gateway)
    batch = upload(gateway, token, [sale_txn()])["batch_uuid"]
    assert status(gateway, token, batch)["batch_uuid"] == batch
    assert_problem(gateway.request("GET", f"/sync/status/{batch}", token=till(gateway)), 404, "batch_not_found")
    other_tenant = till(gateway, "shop2")
    assert_problem(gateway.request("GET", f"/sync/status/{batch}", tenant="shop2", token=other_tenant), 404, "batch_not_found")
    assert_problem(gateway.request("GET", f"/sync/status/{uuid.uuid4()}", token=token), 404, "batch_not_found")
    assert_problem(gateway.request("GET", "/sync/status/not-a-uuid", token=token), 404, "batch_not_found")
    assert_problem(gateway.request("GET", f"/sync/status/{batch}"), 401, "unauthorized")
    assert_problem(gateway.request("POST", "/sync/batch", json={"transactions": [sale_txn()]}), 401, "unauthorized")


def test_the_same_batch_twice_posts_nothing_twice(gateway, standin: StandIn) -> None:
    token = till(gateway)
    txns = [sale_txn() for _ in range(3)]
    first = upload(gateway, token, txns)
    second = upload(gateway, token, txns)  # possibly while the first is still being posted
    assert (second["job_count"], second["enqueued"]) == (3, 0)
    one = wait_batch(gateway, token, first["batch_uuid"])
    two = wait_batch(gateway, token, second["batch_uuid"])
    assert one["status"] == two["status"] == "synced"
    assert [j["invoice_id"] for j in one["jobs"]] == [j["invoice_id"] for j in two["jobs"]]
    for t in txns:
        assert len(invoices_for(standin, t["client_txn_id"])) == 1
    # a repeat inside one upload is queued once; a changed payload under a known id is refused
    third = upload(gateway, token, [txns[0], txns[0]])
    assert (third["job_count"], third["enqueued"]) == (1, 0)
    changed = {**txns[1], "payload": {**txns[1]["payload"], "till_id": "till-99"}}
    body = assert_problem(gateway.request("POST", "/sync/batch", token=token, json={"transactions": [sale_txn(), changed]}),
                          422, "validation_failed")
    assert body["errors"][0]["loc"] == ["transactions", "1", "client_txn_id"]


def test_transient_failures_retry_and_validation_errors_fail_at_once(gateway, standin: StandIn) -> None:
    token = till(gateway)
    flaky, refused, fine, throttled = sale_txn(), sale_txn(), sale_txn(), sale_txn()
    standin.fail_invoices(flaky["client_txn_id"], times=2, status=500, exc_type="InternalServerError")
    standin.fail_invoices(throttled["client_txn_id"], times=1, status=429, exc_type="TooManyRequestsError")
    standin.fail_invoices(refused["client_txn_id"], times=1, status=417, exc_type="ValidationError",
                          message="Posting date is in a closed accounting period")
    batch = upload(gateway, token, [flaky, refused, fine, throttled])["batch_uuid"]
    body = wait_batch(gateway, token, batch)
    assert body["status"] == "partial", body
    jobs = {j["client_txn_id"]: j for j in body["jobs"]}
    assert (jobs[flaky["client_txn_id"]]["status"], jobs[flaky["client_txn_id"]]["attempts"]) == ("synced", 3)
    assert (jobs[fine["client_txn_id"]]["status"], jobs[fine["client_txn_id"]]["attempts"]) == ("synced", 1)
    assert (jobs[throttled["client_txn_id"]]["status"], jobs[throttled["client_txn_id"]]["attempts"]) == ("synced", 2)
    failed = jobs[refused["client_txn_id"]]
    assert (failed["status"], failed["attempts"], failed["invoice_id"]) == ("failed", 1, None)
    assert "closed accounting period" in failed["last_error"]
    assert body["summary"] == {"pending": 0, "retrying": 0, "synced": 3, "failed": 1}
    assert len(invoices_for(standin, flaky["client_txn_id"])) == 1
    assert invoices_for(standin, refused["client_txn_id"]) == []


def test_a_return_of_a_failed_sale_fails_too(gateway, standin: StandIn) -> None:
    token = till(gateway)
    doomed = sale_txn()
    standin.fail_invoices(doomed["client_txn_id"], times=1, status=417, exc_type="ValidationError", message="no")
    ret = return_txn(against=doomed["client_txn_id"])
    body = wait_batch(gateway, token, upload(gateway, token, [doomed, ret])["batch_uuid"])
    assert body["status"] == "failed"
    assert "original sale" in body["jobs"][1]["last_error"]
    assert invoices_for(standin, ret["client_txn_id"]) == []


def test_commit_then_drop_is_found_by_the_retry(gateway, standin: StandIn) -> None:
    token = till(gateway)
    txn = sale_txn()
    standin.fail_after_commit(1, mode="drop")
    body = wait_batch(gateway, token, upload(gateway, token, [txn])["batch_uuid"])
    (job,) = body["jobs"]
    assert body["status"] == "synced", body
    (doc,) = invoices_for(standin, txn["client_txn_id"])
    assert doc["name"] == job["invoice_id"]
    # posted once; the lost answer was recovered by looking the reference up, not by posting again
    posts = [r for r in standin.requests if r.method == "POST" and txn["client_txn_id"].encode() in r.body]
    lookups = [r for r in standin.requests if r.method == "GET" and txn["client_txn_id"] in r.query]
    assert len(posts) == 1 and lookups


def test_five_hundred_transactions_drain_to_five_hundred_invoices(gateway, standin: StandIn) -> None:
    token = till(gateway)
    txns = [sale_txn() for _ in range(500)]
    before = len(standin.sites["shop1.erp.test"].docs.get("Sales Invoice", {}))
    accepted = upload(gateway, token, txns)
    assert (accepted["job_count"], accepted["enqueued"]) == (500, 500)
    body = wait_batch(gateway, token, accepted["batch_uuid"], timeout=120)
    assert body["status"] == "synced" and body["summary"]["synced"] == 500
    assert len({j["invoice_id"] for j in body["jobs"]}) == 500
    assert len(standin.sites["shop1.erp.test"].docs["Sales Invoice"]) - before == 500
    for t in txns:
        assert len(invoices_for(standin, t["client_txn_id"])) == 1


def test_a_closure_waits_for_the_sales_uploaded_before_it(gateway, standin: StandIn) -> None:
    from tests.routes.test_pos import _quiet_day

    token = till(gateway)
    day = _quiet_day()
    flaky, steady = sale_txn(posting_date=day, posting_time="10:00:00"), sale_txn(posting_date=day, posting_time="11:00:00")
    standin.fail_invoices(flaky["client_txn_id"], times=2, status=503, exc_type="InternalServerError")
    closure = {"type": "closure", "client_txn_id": f"c-{uuid.uuid4().hex[:10]}", "payload": {
        "branch_id": "main", "till_id": "till-01", "period_start": f"{day}T00:00:00", "period_end": f"{day}T23:59:59",
        "balances": [{"method": "cash", "opening_amount": "0", "closing_amount": "10.00"}]}}
    body = wait_batch(gateway, token, upload(gateway, token, [flaky, steady, closure])["batch_uuid"])
    assert body["status"] == "synced", body
    sale_job, _, closure_job = body["jobs"]
    assert sale_job["attempts"] == 3 and closure_job["attempts"] == 1
    assert closure_job["invoice_id"].startswith("CLS-")
    # ERPNext was asked for the period's invoices only after the flaky sale's third (successful) post
    posts = [i for i, r in enumerate(standin.requests) if r.method == "POST" and flaky["client_txn_id"].encode() in r.body]
    reads = [i for i, r in enumerate(standin.requests) if r.method == "GET" and day in r.query and "between" in r.query]
    assert len(posts) == 3 and reads and min(reads) > posts[-1]


def test_five_transient_failures_make_a_job_failed_and_it_stays_visible(gateway, standin: StandIn) -> None:
    token = till(gateway)
    hopeless = sale_txn()
    standin.fail_invoices(hopeless["client_txn_id"], times=50, status=503, exc_type="InternalServerError")
    batch = upload(gateway, token, [hopeless])["batch_uuid"]
    body = wait_batch(gateway, token, batch)
    (job,) = body["jobs"]
    assert (body["status"], job["status"], job["attempts"]) == ("failed", "failed", 5), body
    assert "gave up after 5 attempts" in job["last_error"] and "503" in job["last_error"]
    assert status(gateway, token, batch)["jobs"][0]["status"] == "failed"  # kept, not dropped
    assert invoices_for(standin, hopeless["client_txn_id"]) == []


def test_serve_memory_stays_flat_as_the_queue_grows(tmp_path, gateway_factory, standin_server) -> None:
    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url)
    cfg["gateway"]["sync"]["in_process_workers"] = False  # the queue only grows: nothing posts it
    gw = gateway_factory(cfg)
    token = gw.token("till-mem")

    def rss_mb() -> float:
        line = next(ln for ln in open(f"/proc/{gw.proc.pid}/status") if ln.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    def upload_batches(n: int) -> None:
        for _ in range(n):
            upload(gw, token, [sale_txn() for _ in range(500)])

    upload_batches(4)  # warm up: pools, caches, first allocations
    before = rss_mb()
    upload_batches(20)  # 10,000 more jobs queued
    grown = rss_mb() - before
    # A request's objects must go when it ends: a leak of even 1 KB per queued job is 10 MB here.
    assert grown < 4, f"pos-edge serve grew {grown:.1f} MB for 10,000 queued jobs"


@pytest.mark.parametrize("store", ["sqlite", "redis"])
def test_synced_jobs_are_forgotten_after_the_retention_and_never_posted_twice(
    store: str, tmp_path, gateway_factory, standin_server, standin: StandIn
) -> None:
    import time

    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url, store=store)
    cfg["gateway"]["sync"]["retention"] = 1
    gw = gateway_factory(cfg)
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    txn = sale_txn()
    batch = upload(gw, token, [txn])["batch_uuid"]
    assert wait_batch(gw, token, batch)["status"] == "synced"
    deadline = time.monotonic() + 10
    while gw.request("GET", f"/sync/status/{batch}", token=token).status_code != 404:
        assert time.monotonic() < deadline, "the synced batch was never purged"
        time.sleep(0.1)
    assert any("sync_purged" in ln for ln in gw.wait_log("sync_purged"))
    # uploaded again after its job is gone: a new job, which finds the invoice instead of posting it again
    again = upload(gw, token, [txn])
    assert again["enqueued"] == 1
    assert wait_batch(gw, token, again["batch_uuid"])["status"] == "synced"
    assert len(invoices_for(standin, txn["client_txn_id"])) == 1
