"""`pos-edge sync status|failed|retry` against a running gateway's store (both backends)."""

from __future__ import annotations

import uuid

import pytest

from edge.standin import StandIn
from tests.sync.helpers import invoices_for, sale_txn, upload, wait_batch

pytestmark = pytest.mark.usefixtures("pos_data")


def test_an_admin_sees_failed_jobs_and_retries_them(gateway, standin: StandIn) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    ok, refused = sale_txn(), sale_txn()
    standin.fail_invoices(refused["client_txn_id"], times=1, status=417, exc_type="ValidationError",
                          message="Item COFFEE is disabled")
    batch = upload(gateway, token, [ok, refused])["batch_uuid"]
    assert wait_batch(gateway, token, batch)["status"] == "partial"
    # a job given up on is a warning (someone must act), not an info line among the synced ones
    txn = f'"txn":"{refused["client_txn_id"]}"'
    failed = [ln for ln in gateway.wait_log(txn) if txn in ln and '"event":"sync_job_failed"' in ln]
    assert len(failed) == 1 and '"level":"warning"' in failed[0], failed

    out = gateway.cli("sync", "status", batch)
    assert out.returncode == 0, out.stderr
    assert f"batch {batch}  tenant shop1" in out.stdout and "status partial" in out.stdout
    assert "failed" in out.stdout and "Item COFFEE is disabled" in out.stdout

    out = gateway.cli("sync", "failed", "--tenant", "shop1")
    assert out.returncode == 0, out.stderr
    (line,) = [ln for ln in out.stdout.splitlines() if refused["client_txn_id"] in ln]
    job_id = line.split()[0]
    assert batch in line and "disabled" in line

    # the admin fixed the item in ERPNext (the fault is used up); retry that one job
    out = gateway.cli("sync", "retry", job_id)
    assert out.returncode == 0 and "requeued 1 failed job(s) of tenant shop1" in out.stdout, out
    body = wait_batch(gateway, token, batch)
    assert body["status"] == "synced", body
    job = next(j for j in body["jobs"] if j["job_id"] == job_id)
    assert (job["status"], job["attempts"]) == ("synced", 1)
    assert len(invoices_for(standin, refused["client_txn_id"])) == 1
    assert refused["client_txn_id"] not in gateway.cli("sync", "failed", "--tenant", "shop1").stdout

    # retrying a whole batch requeues only its failed jobs: none now
    out = gateway.cli("sync", "retry", batch)
    assert out.returncode == 0 and "requeued 0" in out.stdout
    assert len(invoices_for(standin, ok["client_txn_id"])) == 1

    missing = gateway.cli("sync", "retry", uuid.uuid4().hex)
    assert missing.returncode == 1 and "no job or batch" in missing.stderr
    assert gateway.cli("sync", "failed").returncode == 2  # --tenant is required
    assert gateway.cli("sync", "status", batch, "--tenant", "nope").returncode == 1
