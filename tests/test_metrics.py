"""/metrics over a real socket: what is counted, with which labels, and what never becomes a label;
the standard process and runtime series; `pos-edge worker --metrics-port`."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
import yaml

from edge.standin.server import free_port
from tests.conftest import POS_EDGE, base_config, terminate
from tests.sync.helpers import sale_txn, upload, wait_batch


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.usefixtures("pos_data")
def test_metrics_count_requests_rate_limits_upstream_errors_and_the_sync_queue(gateway, standin) -> None:
    before = gateway.metrics()
    device = f"till-{uuid.uuid4().hex[:6]}"
    token = gateway.token(device)
    ok = sample(before, "pos_edge_requests_total", tenant="shop1", route_group="erpnext", status_class="2xx")
    for _ in range(3):
        r = gateway.request("GET", "/erpnext/method/frappe.auth.get_logged_user", token=token)
        assert r.status_code == 200
    standin.delay = 2.5  # over the tenant's 2 s ERPNext timeout
    assert gateway.request("GET", "/erpnext/method/frappe.auth.get_logged_user", token=token).status_code == 504
    standin.delay = 0
    gateway.request("GET", "/v1/nothing-here", token=token)
    gateway.http.get("/erpnext/method/x", headers={"Host": "nobody.tillking.test"})
    batch = upload(gateway, token, [sale_txn()])["batch_uuid"]
    wait_batch(gateway, token, batch)

    text = gateway.metrics()
    assert sample(text, "pos_edge_requests_total", tenant="shop1", route_group="erpnext", status_class="2xx") >= ok + 3
    assert sample(text, "pos_edge_requests_total", tenant="shop1", route_group="sync", status_class="2xx") >= 1
    assert sample(text, "pos_edge_requests_total", tenant="-", route_group="erpnext", status_class="4xx") >= 1
    assert sample(text, "pos_edge_request_duration_seconds_count", tenant="shop1", route_group="erpnext") >= 4
    assert sample(text, "pos_edge_upstream_duration_seconds_count", tenant="shop1") >= 4
    assert sample(text, "pos_edge_upstream_errors_total", tenant="shop1", kind="timeout") >= 1
    assert sample(text, "pos_edge_sync_attempts_total", tenant="shop1", outcome="synced") >= 1
    assert sample(text, "pos_edge_sync_queue_depth", scope="store", tenant="shop1") >= 0
    assert 'pos_edge_sync_jobs{scope="store",state="failed",tenant="shop1"}' in text
    assert "pos_edge_sync_oldest_pending_age_seconds" in text
    assert sample(text, "pos_edge_store_up") == 1
    assert sample(text, "pos_edge_config_reloads_total", result="failed") == 0
    # bounded labels: never a device id or a path
    assert device not in text and "get_logged_user" not in text and "nothing-here" not in text


def test_rate_limit_rejections_are_counted(gateway_factory, tmp_path, standin_server) -> None:
    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["rate_limit"] = "2/minute"
    gw = gateway_factory(cfg)
    token = gw.token("till-rl")
    codes = [gw.request("GET", f"/sync/status/{uuid.uuid4()}", token=token).status_code for _ in range(4)]
    assert codes == [404, 404, 429, 429]
    text = gw.metrics()
    assert sample(text, "pos_edge_rate_limited_total", tenant="shop1") == 2
    assert sample(text, "pos_edge_requests_total", tenant="shop1", route_group="sync_status", status_class="4xx") == 4


def test_the_main_listener_serves_metrics_only_to_the_token(gateway_factory, tmp_path, standin_server) -> None:
    import httpx

    from tests.conftest import base_config

    gw = gateway_factory(base_config(tmp_path, standin_server.url))
    r = gw.http.get("/metrics")  # no token configured: only the metrics listener serves them
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert "pos_edge_requests_total" in gw.metrics()
    listen = gw.metrics_listen()
    r = httpx.get(f"http://{listen}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert httpx.get(f"http://{listen}/healthz").status_code == 404  # nothing else there

    cfg = base_config(tmp_path / "t", standin_server.url, metrics={"listen": None, "token": "metrics-token-1234"})
    gw = gateway_factory(cfg)
    assert gw.http.get("/metrics").status_code == 401
    r = gw.http.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = gw.http.get("/metrics", headers={"Authorization": "Bearer metrics-token-1234"})
    assert r.status_code == 200 and "pos_edge_requests_total" in r.text
    assert all("metrics-token-1234" not in line for line in gw.log_lines())


def test_by_default_metrics_listen_on_loopback_only() -> None:
    from edge.config import MetricsConfig

    assert MetricsConfig().address() == ("127.0.0.1", 9464) and MetricsConfig().token is None


def series_names(text: str) -> set[str]:
    """The name of every sample in a Prometheus text exposition."""
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


def assert_standard_series(text: str) -> None:
    """Process, platform and GC collectors, the build info, and no `_created` series at all."""
    names = series_names(text)
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds",
            "python_info", "python_gc_collections_total"} <= names, sorted(names)
    assert sample(text, "pos_edge_build_info", version=version("pos-edge"), python=platform.python_version()) == 1
    assert sample(text, "python_info", implementation=platform.python_implementation()) == 1
    assert not [n for n in names if n.endswith("_created")], sorted(n for n in names if n.endswith("_created"))


def test_serve_exports_process_runtime_and_build_series_and_no_created_series(gateway) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    assert gateway.request("GET", "/erpnext/method/frappe.auth.get_logged_user", token=token).status_code == 200
    text = gateway.metrics()
    assert sample(text, "pos_edge_requests_total", tenant="shop1", route_group="erpnext", status_class="2xx") >= 1
    assert 'pos_edge_config_reloads_total{result="ok"}' in text  # a Counter child: it had a _created series
    assert_standard_series(text)


def test_a_worker_exports_the_store_it_reaches_and_the_standard_series(tmp_path: Path, standin_server) -> None:
    cfg = base_config(tmp_path, standin_server.url)  # a store of its own: this worker takes no other test's jobs
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(cfg))
    port = free_port()
    log = tmp_path / "worker.log"
    proc = subprocess.Popen([POS_EDGE, "worker", "--config", str(path), "--grace", "1", "--metrics-port", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert sample(text, "pos_edge_store_up") == 1
        # store-wide figures, labelled as such (aggregate with max, not sum)
        assert 'pos_edge_sync_jobs{scope="store",state="queued",tenant="shop1"}' in text
        assert 'pos_edge_sync_queue_depth{scope="store",tenant="shop2"}' in text
        assert "pos_edge_sync_attempts_total" in text
        assert_standard_series(text)
    finally:
        assert terminate(proc) == 0
    for line in log.read_text().splitlines():  # the worker's lines are JSON too
        assert {"event", "level", "timestamp", "logger"} <= set(json.loads(line)), line
