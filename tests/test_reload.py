"""Hot reload of tenants.yaml under load: every change applies atomically, a broken file is
refused and the running config stays, and no request fails because of a swap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edge.standin import StandIn, StandInServer, StandInSite
from tests.conftest import BASE, CREDS, POS_EDGE, Gateway, base_config, start_gateway, tenant_entry
from tests.test_metrics import sample


def write(path: Path, cfg: dict[str, Any] | str) -> None:
    """Replace the file the way editors and config tools do: write aside, rename over."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    tmp.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False))
    os.replace(tmp, path)


def reloads(gw: Gateway, result: str) -> float:
    return sample(gw.metrics(), "pos_edge_config_reloads_total", result=result)


def wait_reloads(gw: Gateway, result: str, at_least: float, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while reloads(gw, result) < at_least:
        assert time.monotonic() < deadline, f"no {result} reload seen:\n" + "\n".join(gw.log_lines()[-20:])
        time.sleep(0.05)


class Load:
    """Tills calling through the proxy without pause, recording every status."""

    def __init__(self, gw: Gateway, token: str, threads: int = 2) -> None:
        self.statuses: list[int] = []
        self.bodies: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(gw.url, token), daemon=True) for _ in range(threads)]

    def _run(self, url: str, token: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as http:
            while not self._stop.is_set():
                r = http.get("/erpnext/method/frappe.auth.get_logged_user",
                             headers={"Host": f"shop1.{BASE}", "Authorization": f"Bearer {token}"})
                self.statuses.append(r.status_code)
                self.bodies.append(r.text)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


@pytest.fixture
def second_erpnext() -> Any:
    """Another ERPNext origin serving shop1's site (its API user is named differently)."""
    key, secret = CREDS["shop1"]
    server = StandInServer(StandIn([StandInSite("shop1.erp.test", users={key: (secret, "api@shop1-moved.test")})]))
    server.start()
    yield server
    server.stop()


def test_changes_apply_atomically_under_load(tmp_path: Path, standin_server: StandInServer, second_erpnext) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["rate_limit"] = "1000000/minute"  # the load must not hit the limiter
    gw = start_gateway(tmp_path, cfg)
    try:
        token = gw.token("till-load")
        shop2 = gw.token("till-2", "shop2")
        with Load(gw, token) as load:
            time.sleep(0.3)
            # 1. add a tenant
            cfg["tenants"]["shop3"] = tenant_entry("shop3", standin_server.url)
            write(gw.config_path, cfg)
            wait_reloads(gw, "ok", 1)
            assert gw.register("till-3", "shop3").status_code == 201
            # 2. change a rate limit
            cfg["tenants"]["shop2"]["rate_limit"] = "2/minute"
            write(gw.config_path, cfg)
            wait_reloads(gw, "ok", 2)
            codes = [gw.request("GET", f"/sync/status/{uuid.uuid4()}", tenant="shop2", token=shop2).status_code
                     for _ in range(3)]
            assert codes == [404, 404, 429]
            # 3. suspend a tenant
            cfg["tenants"]["shop2"]["status"] = "suspended"
            write(gw.config_path, cfg)
            wait_reloads(gw, "ok", 3)
            r = gw.request("GET", "/erpnext/method/frappe.auth.get_logged_user", tenant="shop2", token=shop2)
            assert r.status_code == 403 and r.json()["code"] == "tenant_suspended"
            # 4. move shop1 to another ERPNext, while the load runs against shop1
            cfg["tenants"]["shop1"]["erpnext"]["url"] = second_erpnext.url
            write(gw.config_path, cfg)
            wait_reloads(gw, "ok", 4)
            time.sleep(0.3)
            assert "api@shop1-moved.test" in load.bodies[-1]
            # 5. break the file three ways: each refused, the running config stays
            for failed, broken in enumerate([
                "gateway: [unclosed\n",
                yaml.safe_dump({**cfg, "tenants": {**cfg["tenants"], "shop1": {**cfg["tenants"]["shop1"], "rate_limit": "lots"}}}),
                yaml.safe_dump(cfg).replace("secret-shop1", "${POS_EDGE_TEST_UNSET_VARIABLE}"),
            ], start=1):
                write(gw.config_path, broken)
                wait_reloads(gw, "failed", failed)
                ready = gw.http.get("/readyz")
                assert ready.status_code == 200 and ready.json()["last_reload"]["ok"] is False
                check = subprocess.run([POS_EDGE, "check", str(gw.config_path)], capture_output=True, text=True)
                assert check.returncode == 1
                logged = [ln for ln in gw.wait_log("config_reload_failed") if "config_reload_failed" in ln][-1]
                for line in check.stderr.splitlines()[1:]:  # pos-edge check's errors, exactly as the reloader logged them
                    assert line.strip().replace('"', '\\"') in logged, (line, logged)
                assert gw.register("till-3b", "shop3").status_code == 201  # still the last good config
            # 6. fixed again
            del cfg["tenants"]["shop3"]
            write(gw.config_path, cfg)
            wait_reloads(gw, "ok", 5)
            assert gw.register("till-3c", "shop3").status_code == 404
            time.sleep(0.3)
        assert len(load.statuses) > 50
        assert set(load.statuses) == {200}, {s: load.statuses.count(s) for s in set(load.statuses)}
        assert reloads(gw, "ok") == 5 and reloads(gw, "failed") == 3
    finally:
        gw.stop()


def test_configmap_symlink_swap_and_sighup(tmp_path: Path, standin_server: StandInServer) -> None:
    """Kubernetes mounts a ConfigMap as <dir>/tenants.yaml -> ..data/tenants.yaml, ..data -> ..<version>,
    and updates it by pointing ..data at a new version directory in one rename."""
    cfg = base_config(tmp_path, standin_server.url)
    conf = tmp_path / "etc"
    (conf / "..v1").mkdir(parents=True)
    (conf / "..v1" / "tenants.yaml").write_text(yaml.safe_dump(cfg))
    (conf / "..data").symlink_to("..v1")
    (conf / "tenants.yaml").symlink_to("..data/tenants.yaml")
    gw = start_gateway(tmp_path, cfg, config_path=conf / "tenants.yaml")
    try:
        assert gw.register("till-x", "shop3").status_code == 404
        cfg["tenants"]["shop3"] = tenant_entry("shop3", standin_server.url)
        (conf / "..v2").mkdir()
        (conf / "..v2" / "tenants.yaml").write_text(yaml.safe_dump(cfg))
        (conf / "..data_tmp").symlink_to("..v2")
        os.replace(conf / "..data_tmp", conf / "..data")
        wait_reloads(gw, "ok", 1)
        assert gw.register("till-x", "shop3").status_code == 201
        # SIGHUP reloads even when nothing changed
        gw.proc.send_signal(signal.SIGHUP)
        wait_reloads(gw, "ok", 2)
        assert any('"reason":"SIGHUP"' in ln for ln in gw.wait_log('"reason":"SIGHUP"'))
    finally:
        gw.stop()


def test_sighup_to_serve_with_workers_reloads_each_process_without_restarting_it(
        tmp_path: Path, standin_server: StandInServer) -> None:
    """uvicorn's own supervisor would replace every process on SIGHUP; pos-edge's passes the
    signal on, and each server process reloads tenants.yaml in place."""
    cfg = base_config(tmp_path, standin_server.url)
    gw = start_gateway(tmp_path, cfg, args=("--workers", "2"))
    try:
        def events(name: str) -> list[dict[str, Any]]:
            return [e for e in (json.loads(ln) for ln in gw.log_lines() if ln.startswith("{")) if e.get("event") == name]

        deadline = time.monotonic() + 20
        while len({e["pid"] for e in events("started")}) < 2:
            assert time.monotonic() < deadline, gw.log_lines()
            time.sleep(0.05)
        servers = {e["pid"] for e in events("started")}
        gw.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while {e["pid"] for e in events("config_reloaded") if e["reason"] == "SIGHUP"} != servers:
            assert time.monotonic() < deadline, gw.log_lines()
            time.sleep(0.05)
        assert {e["pid"] for e in events("started")} == servers  # no process was replaced
        assert gw.http.get("/healthz").status_code == 200
    finally:
        gw.stop()


def test_store_changes_need_a_restart(tmp_path: Path, standin_server: StandInServer) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    gw = start_gateway(tmp_path, cfg)
    store = cfg["gateway"]["store"]
    try:
        cfg["gateway"]["store"] = f"sqlite:///{tmp_path}/other.db"
        write(gw.config_path, cfg)
        wait_reloads(gw, "failed", 1)
        assert any("gateway.store: cannot change while running" in ln for ln in gw.log_lines())
        cfg["gateway"]["store"] = store
        cfg["gateway"]["server"] = {"max_header_bytes": 8192}  # the listener's limits are set at start-up
        write(gw.config_path, cfg)
        wait_reloads(gw, "failed", 2)
        lines = gw.log_lines()
        assert any("gateway.server: cannot change while running" in ln and "gateway.store" not in ln for ln in lines)
    finally:
        gw.stop()


def test_a_worker_process_reloads_too(tmp_path: Path, standin_server: StandInServer) -> None:
    from tests.sync.helpers import Worker

    cfg = base_config(tmp_path, standin_server.url)
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(cfg))
    worker = Worker(path, tmp_path / "worker.log")
    try:
        worker.wait_started()
        cfg["tenants"]["shop3"] = tenant_entry("shop3", standin_server.url)
        write(path, cfg)
        deadline = time.monotonic() + 10
        while '"event":"config_reloaded"' not in worker.log.read_text():
            assert time.monotonic() < deadline, worker.log.read_text()
            time.sleep(0.05)
        assert '"added":["shop3"]' in worker.log.read_text()
    finally:
        assert worker.stop() == 0


def test_a_file_rewritten_in_place_is_read_only_once_it_settles(tmp_path: Path, standin_server: StandInServer) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["defaults"]["rate_limit"] = "1000000/minute"  # the tills below call without pause
    gw = start_gateway(tmp_path, cfg)
    try:
        token = gw.token("till-2", "shop2")
        statuses: list[int] = []
        stop = threading.Event()

        def shop2_tills() -> None:
            with httpx.Client(base_url=gw.url, timeout=10) as http:
                while not stop.is_set():
                    statuses.append(http.get("/erpnext/Item", headers={
                        "Host": f"shop2.{BASE}", "Authorization": f"Bearer {token}"}).status_code)

        cfg["tenants"]["shop1"]["rate_limit"] = "777/minute"  # the change this rewrite makes
        text = yaml.safe_dump(cfg, sort_keys=False)
        cut = text.index("  shop2:")  # the part before shop2 is a valid config with one tenant
        worker = threading.Thread(target=shop2_tills, daemon=True)
        worker.start()
        with gw.config_path.open("w") as f:  # in place: truncated, then written in two steps
            f.write(text[:cut])
            f.flush()
            time.sleep(1.2)  # longer than the watcher's quiet period: the half file is seen
            f.write(text[cut:])
        wait_reloads(gw, "ok", 1)
        time.sleep(0.5)
        stop.set()
        worker.join(timeout=10)
        assert statuses and set(statuses) == {200}, sorted(set(statuses))
        assert gw.request("GET", "/sync/status/x", token=gw.token("till-1")).headers["ratelimit-policy"] == \
            '"default";q=777;w=60'
        assert reloads(gw, "failed") == 0

        # a file that stays cut short, long enough to settle twice, does remove the tenant
        with gw.config_path.open("w") as f:
            f.write(text[:cut])
        wait_reloads(gw, "ok", 2)
        assert gw.request("GET", "/erpnext/Item", tenant="shop2", token=token).status_code == 404
    finally:
        gw.stop()
