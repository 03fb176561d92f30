"""The README walk-through, as written: the example tenants.yaml in front of
`pos-edge demo-erpnext`, both started through the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx

from edge.standin.server import free_port
from tests.conftest import POS_EDGE

ROOT = Path(__file__).parents[1]


def wait_for(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "process exited"
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_readme_walkthrough(tmp_path: Path) -> None:
    erp_port, gw_port = free_port(), free_port()
    config = (ROOT / "tenants.yaml").read_text().replace("127.0.0.1:8001", f"127.0.0.1:{erp_port}")
    (tmp_path / "tenants.yaml").write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHOP1_", "SHOP2_", "POS_EDGE_"))}
    procs = [
        subprocess.Popen([POS_EDGE, "demo-erpnext", "--port", str(erp_port)], cwd=tmp_path, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([POS_EDGE, "serve", "--port", str(gw_port)], cwd=tmp_path, env=env,
                         stdout=(tmp_path / "gw.log").open("wb"), stderr=subprocess.STDOUT),
    ]
    try:
        wait_for(f"http://127.0.0.1:{erp_port}/api/method/frappe.ping", procs[0])
        wait_for(f"http://127.0.0.1:{gw_port}/healthz", procs[1])
        gw = httpx.Client(base_url=f"http://127.0.0.1:{gw_port}", headers={"Host": "shop1.tillking.local"})
        r = gw.post("/gateway/device/register", json={
            "device_id": "till-01", "device_name": "Front till", "tenant_subdomain": "shop1",
            "branch_id": "main", "enrollment_key": "shop1-enrol-demo"})
        assert r.status_code == 201, r.text
        assert r.json()["tenant_name"] == "Shop One"
        token = r.json()["token"]
        r = gw.get("/erpnext/Item", params={"fields": '["name","item_name"]'}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        assert {"name": "MILK", "item_name": "Milk 1L"} in r.json()["data"]
        r = gw.get("/erpnext/method/frappe.auth.get_logged_user", headers={"Authorization": f"Bearer {token}"})
        assert r.json() == {"message": "pos-edge@shop1.example"}
        r = gw.get("/erpnext/Item", headers={"Host": "shop2.tillking.local", "Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        assert (tmp_path / "pos-edge.db").exists()  # the embedded SQLite default
        log = (tmp_path / "gw.log").read_text()
        assert '"tenant":"shop2"' in log and '"event":"registration_open"' in log
        assert "demo-shop1-secret" not in log
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=15)


def test_memory_limits_with_several_workers_are_announced(tmp_path: Path) -> None:
    shutil.copy(ROOT / "tenants.yaml", tmp_path / "tenants.yaml")
    port = free_port()
    proc = subprocess.Popen([POS_EDGE, "serve", "--port", str(port), "--workers", "2"], cwd=tmp_path,
                            stdout=(tmp_path / "gw.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        deadline = time.monotonic() + 10
        while (tmp_path / "gw.log").read_text().count("rate_limits_per_process") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "gw.log").read_text().count("rate_limits_per_process") == 2  # once per worker
    finally:
        proc.terminate()
        proc.wait(timeout=20)
