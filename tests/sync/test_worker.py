"""Crash and outage recovery of the sync workers, over real processes and sockets:
every transaction ends up in ERPNext exactly once."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from edge.standin import StandIn, StandInServer
from tests.conftest import base_config, start_gateway
from tests.sync.helpers import (
    invoices_for,
    sale_txn,
    status,
    upload,
    wait_batch,
)

pytestmark = pytest.mark.usefixtures("pos_data")
STORES = ["sqlite", "redis"]


def config(tmp: Path, erp_url: str, store: str, **sync: object) -> dict:
    cfg = base_config(tmp, erp_url, store=store)
    cfg["gateway"]["sync"] = {**cfg["gateway"]["sync"], **sync}
    return cfg


def exactly_once(standin: StandIn, txns: list[dict]) -> None:
    for t in txns:
        found = invoices_for(standin, t["client_txn_id"])
        assert len(found) == 1, (t["client_txn_id"], [d["name"] for d in found])


@pytest.mark.parametrize("store", STORES)
def test_erpnext_down_for_a_while(store: str, tmp_path: Path, gateway_factory, standin_server: StandInServer,
                                  standin: StandIn) -> None:
    cfg = config(tmp_path, standin_server.url, store, max_attempts=100)
    # retries and back-off are the point here: the breaker (tests/shield) stays out of the way
    cfg["gateway"]["breaker"] = {"failures": 1000}
    gw = gateway_factory(cfg)
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    txns = [sale_txn() for _ in range(6)]
    standin_server.stop()
    try:
        batch = upload(gw, token, txns)["batch_uuid"]  # the queue takes it while ERPNext is away
        deadline = time.monotonic() + 10
        body = status(gw, token, batch)
        while not all(j["status"] == "retrying" and j["attempts"] >= 2 for j in body["jobs"]):
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
            body = status(gw, token, batch)
        assert body["status"] == "processing" and body["summary"]["retrying"] == 6
        assert all("unreachable" in j["last_error"] and j["next_attempt_at"] for j in body["jobs"])
    finally:
        standin_server.start()
    body = wait_batch(gw, token, batch, timeout=30)
    assert body["status"] == "synced", body
    exactly_once(standin, txns)


@pytest.mark.parametrize("store", STORES)
def test_a_killed_worker_s_jobs_are_finished_by_another(store: str, tmp_path: Path, gateway_factory, spawn_worker,
                                                       standin_server: StandInServer, standin: StandIn) -> None:
    gw = gateway_factory(config(tmp_path, standin_server.url, store, in_process_workers=False))
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    standin.delay = 0.05
    first = spawn_worker(gw.config_path, tmp_path / "worker-a.log")
    first.wait_started()
    txns = [sale_txn() for _ in range(40)]
    batch = upload(gw, token, txns)["batch_uuid"]
    deadline = time.monotonic() + 20
    while status(gw, token, batch)["summary"]["synced"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    first.kill()  # mid-batch, with postings in flight
    assert status(gw, token, batch)["summary"]["synced"] < 40
    second = spawn_worker(gw.config_path, tmp_path / "worker-b.log")
    try:
        body = wait_batch(gw, token, batch, timeout=60)
    finally:
        assert second.stop() == 0
    assert body["status"] == "synced", body
    assert "sync_job_synced" in (tmp_path / "worker-b.log").read_text()
    exactly_once(standin, txns)


@pytest.mark.parametrize("store", STORES)
def test_gateway_killed_right_after_the_202(store: str, tmp_path: Path, standin_server: StandInServer,
                                            standin: StandIn) -> None:
    cfg = config(tmp_path, standin_server.url, store)
    gw = start_gateway(tmp_path, cfg)
    try:
        token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
        standin.delay = 0.2
        txns = [sale_txn() for _ in range(20)]
        batch = upload(gw, token, txns)["batch_uuid"]
    finally:
        gw.proc.kill()  # SIGKILL: no shut-down of any kind
        gw.proc.wait()
        gw.http.close()
    standin.delay = 0.0
    again = start_gateway(tmp_path, cfg)  # same config, same store
    try:
        body = wait_batch(again, token, batch, timeout=30)
    finally:
        again.stop()
    assert body["status"] == "synced" and len(body["jobs"]) == 20, body
    exactly_once(standin, txns)


@pytest.mark.parametrize("store", STORES)
def test_leases_are_renewed_through_the_shutdown_grace(store: str, tmp_path: Path, gateway_factory, spawn_worker,
                                                        standin_server: StandInServer, standin: StandIn) -> None:
    # A 1 s lease and a 4 s posting: the job is only safe if the stopping worker keeps renewing
    # while its grace lets the posting finish; a second worker stands ready to take a lapsed lease.
    cfg = config(tmp_path, standin_server.url, store, in_process_workers=False, lease=1)
    cfg["defaults"]["erpnext"]["timeout"] = 10
    gw = gateway_factory(cfg)
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    first = spawn_worker(gw.config_path, tmp_path / "worker-a.log", grace=10)
    first.wait_started()
    txn = sale_txn()
    standin.fail_after_commit(1, mode="hang", hang_seconds=4)  # ERPNext answers the insert after 4 s
    batch = upload(gw, token, [txn])["batch_uuid"]
    deadline = time.monotonic() + 10
    while not any(r.method == "POST" and txn["client_txn_id"].encode() in r.body for r in standin.requests):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    second = spawn_worker(gw.config_path, tmp_path / "worker-b.log")
    try:
        second.wait_started()
        first.proc.send_signal(15)  # SIGTERM with the posting in flight
        assert first.proc.wait(timeout=20) == 0
        body = wait_batch(gw, token, batch, timeout=20)
    finally:
        second.stop()
    (job,) = body["jobs"]
    assert (body["status"], job["attempts"]) == ("synced", 1), body
    assert "sync_lease_lost" not in (tmp_path / "worker-a.log").read_text()
    posts = [r for r in standin.requests if r.method == "POST" and txn["client_txn_id"].encode() in r.body]
    assert len(posts) == 1 and len(invoices_for(standin, txn["client_txn_id"])) == 1
