"""Scaled out on one Redis: two pos-edge replicas and two `pos-edge worker` processes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from edge.standin import StandIn, StandInServer
from tests.conftest import REDIS_URL, base_config, start_gateway, tenant_entry
from tests.sync.helpers import invoices_for, sale_txn, upload, wait_batch

pytestmark = pytest.mark.usefixtures("pos_data", "redis_url")


def test_two_replicas_and_two_workers_share_queue_devices_and_rate_limits(
    tmp_path: Path, standin_server: StandInServer, standin: StandIn, spawn_worker
) -> None:
    cfg = base_config(tmp_path, standin_server.url, store="redis", rate_limit_storage=REDIS_URL)
    cfg["gateway"]["sync"]["in_process_workers"] = False
    # a tenant key of this test's own, so the shared Redis counters start at zero
    limited = f"rl{uuid.uuid4().hex[:8]}"
    cfg["tenants"][limited] = tenant_entry("shop2", standin_server.url, rate_limit="6/minute")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = start_gateway(tmp_path / "a", cfg)
    b = start_gateway(tmp_path / "b", cfg)
    workers = [spawn_worker(a.config_path, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        token = a.token(f"till-{uuid.uuid4().hex[:6]}")  # registered through A, known to B
        standin.delay = 0.02
        txns = [sale_txn() for _ in range(30)]
        batch = upload(a, token, txns)["batch_uuid"]
        body = wait_batch(b, token, batch, timeout=60)  # visible through B
        assert body["status"] == "synced" and body["summary"]["synced"] == 30, body
        for t in txns:
            assert len(invoices_for(standin, t["client_txn_id"])) == 1

        # 6 requests a minute per device, counted once across both replicas
        till = f"till-{uuid.uuid4().hex[:6]}"
        reg = b.http.post("/gateway/device/register", headers={"Host": f"{limited}.tillking.test"}, json={
            "device_id": till, "device_name": "x", "tenant_subdomain": limited, "branch_id": "front"})
        assert reg.status_code == 201, reg.text
        shop2_token = reg.json()["token"]
        codes = []
        for i in range(10):
            gw = (a, b)[i % 2]
            r = gw.http.get(f"/sync/status/{uuid.uuid4()}", headers={
                "Host": f"{limited}.tillking.test", "Authorization": f"Bearer {shop2_token}"})
            codes.append(r.status_code)
        assert codes == [404] * 6 + [429] * 4, codes
    finally:
        standin.delay = 0.0
        for w in workers:
            w.stop()
        a.stop()
        b.stop()
    assert sum("sync_job_synced" in (tmp_path / f"worker-{i}.log").read_text() for i in range(2)) >= 1
