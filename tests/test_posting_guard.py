"""Exactly-once without ERPNext's unique index (edge/posting_guard.py): a tenant whose
reference field is `po_no`, which a real ERPNext 15 does not keep unique, on both stores.
One client_txn_id through /v1 and /sync, under two Idempotency-Keys, with another body,
retried while ERPNext commits slowly, and after a gateway crash mid-sale."""

from __future__ import annotations

import subprocess
import time
import uuid
from typing import Any

import pytest

from edge.standin import StandIn
from tests.conftest import POS_EDGE, Gateway, base_config
from tests.routes.test_erpnext import assert_problem
from tests.routes.test_pos import sale
from tests.sync.helpers import status, upload, wait_batch

pytestmark = pytest.mark.usefixtures("pos_data")

GRACE = 7.0  # erpnext.commit_grace here; erpnext.timeout is 2 s in the test config


def po_no_config(tmp, url: str, store: str) -> dict[str, Any]:
    cfg = base_config(tmp, url, store=store, claim_lease=2)
    cfg["tenants"]["shop1"]["reference_field"] = "po_no"
    cfg["tenants"]["shop1"]["erpnext"]["commit_grace"] = GRACE
    return cfg


@pytest.fixture(params=["sqlite", "redis"])
def gw(request, gateway_factory, tmp_path, standin_server) -> Gateway:
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    return gateway_factory(po_no_config(tmp_path, standin_server.url, request.param))


def by_po_no(standin: StandIn, txn: str) -> list[dict[str, Any]]:
    docs = standin.sites["shop1.erp.test"].docs.get("Sales Invoice", {}).values()
    return [d for d in docs if str(d.get("po_no", "")).endswith("/" + txn)]


def posts(standin: StandIn) -> int:
    return sum(1 for r in standin.requests if r.method == "POST" and r.path == "/api/resource/Sales Invoice")


def sync_txn(body: dict[str, Any]) -> dict[str, Any]:
    payload = {k: v for k, v in body.items() if k != "client_txn_id"}
    return {"type": "sale", "client_txn_id": body["client_txn_id"], "payload": payload}


def test_readyz_and_check_say_the_field_is_not_unique(gw: Gateway) -> None:
    deadline = time.monotonic() + 10
    while gw.http.get("/readyz").json().get("reference_fields", {}).get("shop1") != "not_unique":
        assert time.monotonic() < deadline, gw.http.get("/readyz").json()
        time.sleep(0.1)
    out = subprocess.run([POS_EDGE, "check", str(gw.config_path)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "tenants.shop1.reference_field: po_no is not unique" in out.stdout


def test_v1_then_sync_posts_once(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    first = gw.request("POST", "/v1/sale", token=token, json=body)
    assert first.status_code == 201, first.text
    batch = upload(gw, token, [sync_txn(body)])["batch_uuid"]
    job = wait_batch(gw, token, batch)["jobs"][0]
    assert (job["status"], job["invoice_id"]) == ("synced", first.json()["invoice_id"])
    assert len(by_po_no(standin, body["client_txn_id"])) == 1 and posts(standin) == 1


def test_sync_then_v1_posts_once(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    batch = upload(gw, token, [sync_txn(body)])["batch_uuid"]
    invoice = wait_batch(gw, token, batch)["jobs"][0]["invoice_id"]
    again = gw.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": "k-" + uuid.uuid4().hex})
    assert again.status_code == 201, again.text
    assert again.json()["invoice_id"] == invoice and again.json()["grand_total"] is not None
    assert len(by_po_no(standin, body["client_txn_id"])) == 1 and posts(standin) == 1


def test_two_idempotency_keys_post_once_and_another_body_is_409(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    answers = [gw.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": f"key-{i}"})
               for i in range(2)]
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json()["invoice_id"] == answers[1].json()["invoice_id"]
    other = {**body, "items": [{"item_code": "BREAD", "qty": 5, "rate": "1.20"}], "payments": [{"method": "cash", "amount": "6.00"}]}
    r = gw.request("POST", "/v1/sale", token=token, json=other, headers={"Idempotency-Key": "key-2"})
    problem = assert_problem(r, 409, "reference_conflict")
    assert problem["invoice_id"] == answers[0].json()["invoice_id"] and answers[0].json()["invoice_id"] in problem["detail"]
    # the refusal is the key's final answer: replayed, never re-posted
    again = gw.request("POST", "/v1/sale", token=token, json=other, headers={"Idempotency-Key": "key-2"})
    assert again.status_code == 409 and again.headers["idempotent-replayed"] == "true"
    assert len(by_po_no(standin, body["client_txn_id"])) == 1 and posts(standin) == 1


def test_a_retry_while_erpnext_commits_slowly_waits_for_the_grace(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    standin.slow_commit(5.0)  # committed 5 s in, well after the gateway's 2 s timeout (slack for a busy machine)
    t0 = time.monotonic()
    r = gw.request("POST", "/v1/sale", token=token, json=body)
    assert_problem(r, 504, "upstream_timeout")
    assert r.json()["sale_state"] == "unknown"
    # retried at once, under another key too: looked up (not there yet), never posted again
    for key in (None, "other-key"):
        r = gw.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": key} if key else {})
        problem = assert_problem(r, 503, "sale_outcome_unknown")
        assert problem["sale_state"] == "unknown" and 1 <= int(r.headers["retry-after"]) <= GRACE
    assert posts(standin) == 1
    time.sleep(max(0.0, GRACE + 2.5 - (time.monotonic() - t0)))
    r = gw.request("POST", "/v1/sale", token=token, json=body)
    assert r.status_code == 201, r.text
    (doc,) = by_po_no(standin, body["client_txn_id"])
    assert r.json()["invoice_id"] == doc["name"] and posts(standin) == 1


def test_after_the_grace_a_sale_erpnext_never_committed_is_posted(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    standin.slow_commit(3.0, commit=False)  # the worker was killed: rolled back
    assert_problem(gw.request("POST", "/v1/sale", token=token, json=body), 504, "upstream_timeout")
    assert_problem(gw.request("POST", "/v1/sale", token=token, json=body), 503, "sale_outcome_unknown")
    time.sleep(GRACE + 0.5)
    r = gw.request("POST", "/v1/sale", token=token, json=body)
    assert r.status_code == 201, r.text
    assert len(by_po_no(standin, body["client_txn_id"])) == 1 and posts(standin) == 2


def test_a_sync_job_waits_for_the_grace_too(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    standin.slow_commit(5.0)
    assert_problem(gw.request("POST", "/v1/sale", token=token, json=body), 504, "upstream_timeout")
    batch = upload(gw, token, [sync_txn(body)])["batch_uuid"]
    time.sleep(1.0)
    job = status(gw, token, batch)["jobs"][0]
    assert job["status"] in ("pending", "retrying") and job["attempts"] == 0  # waiting is not an attempt
    job = wait_batch(gw, token, batch, timeout=GRACE + 10)["jobs"][0]
    (doc,) = by_po_no(standin, body["client_txn_id"])
    assert (job["status"], job["invoice_id"]) == ("synced", doc["name"]) and posts(standin) == 1


def test_a_sync_upload_of_another_body_fails_with_the_conflict(gw: Gateway, standin: StandIn) -> None:
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    invoice = gw.request("POST", "/v1/sale", token=token, json=body).json()["invoice_id"]
    other = {**body, "customer": None, "items": [{"item_code": "BREAD", "qty": 5, "rate": "1.20"}],
             "payments": [{"method": "cash", "amount": "6.00"}]}
    batch = upload(gw, token, [sync_txn(other)])["batch_uuid"]
    job = wait_batch(gw, token, batch)["jobs"][0]
    assert job["status"] == "failed" and job["attempts"] == 1
    assert "reference_conflict" in job["last_error"] and invoice in job["last_error"]
    assert len(by_po_no(standin, body["client_txn_id"])) == 1


def test_a_second_key_meeting_a_posting_under_way_is_told_to_retry_not_refused_for_good(gw: Gateway,
                                                                                        standin: StandIn) -> None:
    import threading

    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    body = sale()
    standin.delay = 0.6  # each ERPNext call: the first request posts for ~2 s
    first: dict[str, Any] = {}
    t = threading.Thread(target=lambda: first.update(r=gw.request("POST", "/v1/sale", token=token, json=body,
                                                                    headers={"Idempotency-Key": "first"})))
    t.start()
    time.sleep(1.0)
    busy = gw.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": "second"})
    problem = assert_problem(busy, 409, "idempotency_in_progress")
    assert problem["sale_state"] == "in_progress" and busy.headers["retry-after"] == "2"
    t.join()
    standin.delay = 0
    assert first["r"].status_code == 201, first["r"].text
    again = gw.request("POST", "/v1/sale", token=token, json=body, headers={"Idempotency-Key": "second"})
    assert again.status_code == 201 and "idempotent-replayed" not in again.headers
    assert again.json()["invoice_id"] == first["r"].json()["invoice_id"] and posts(standin) == 1


async def test_a_holder_whose_claim_was_taken_over_never_sends(tmp_path, standin_server, standin: StandIn) -> None:
    """The fence before each insert: a holder that stalled past its lease (a paused process,
    a stalled store) finds its claim taken over and sends nothing."""
    import functools

    import yaml

    from edge.config import parse
    from edge.erpnext.client import ErpnextClient
    from edge.erpnext.posting import Poster
    from edge.posting_guard import ClaimLost, PostingGuard
    from edge.sales import Sale
    from edge.store import open_store
    from edge.upstream import Upstreams

    store = open_store(f"sqlite:///{tmp_path}/fence.db")
    await store.open()
    upstreams = Upstreams(pool_size=4)
    try:
        tenant = parse(yaml.safe_dump(po_no_config(tmp_path, standin_server.url, "sqlite"))).tenants["shop1"]
        poster = Poster(ErpnextClient(upstreams, tenant.erpnext), tenant)
        body = sale()
        reference = f"till-fence/{body['client_txn_id']}"
        now = time.time()
        assert (await store.claim_posting("shop1", reference, "fp", "A", now - 10, 2, 3600))[0] == "new"  # A, stalled
        assert (await store.claim_posting("shop1", reference, "fp", "B", now, 10, 3600))[0] == "taken_over"
        fence = functools.partial(PostingGuard._fence, functools.partial(store.renew_posting, "shop1", reference, "A"),
                                  10, reference)
        with pytest.raises(ClaimLost):
            await poster.post(Sale.model_validate(body), reference, "till-fence", before_send=fence)
        assert posts(standin) == 0 and by_po_no(standin, body["client_txn_id"]) == []
        # the holder itself passes its fence, and sends
        ours = functools.partial(PostingGuard._fence, functools.partial(store.renew_posting, "shop1", reference, "B"),
                                 10, reference)
        doc, created = await poster.post(Sale.model_validate(body), reference, "till-fence", before_send=ours)
        assert created and posts(standin) == 1
    finally:
        await upstreams.close()
        await store.close()
