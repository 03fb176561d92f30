"""Start-up and shut-down of `pos-edge serve` and `pos-edge worker` as real processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from edge.standin import StandIn, StandInServer
from edge.standin.server import free_port
from tests.conftest import BASE, POS_EDGE, base_config, start_gateway
from tests.sync.helpers import invoices_for, sale_txn, upload, wait_batch


def test_sigterm_finishes_requests_in_flight_then_exits_0(tmp_path: Path, standin_server: StandInServer,
                                                         standin: StandIn) -> None:
    gw = start_gateway(tmp_path, base_config(tmp_path, standin_server.url))
    token = gw.token("till-t")
    standin.delay = 1.0
    results: list[int] = []

    def call() -> None:
        with httpx.Client(timeout=10) as http:
            r = http.get(f"{gw.url}/erpnext/method/frappe.auth.get_logged_user",
                         headers={"Host": f"shop1.{BASE}", "Authorization": f"Bearer {token}"})
            results.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(0.4)  # all three are waiting on ERPNext now
    gw.proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(OSError):  # no longer accepting
        socket.create_connection(("127.0.0.1", gw.port), timeout=1).close()
    for t in threads:
        t.join(timeout=10)
    assert results == [200, 200, 200]
    assert gw.proc.wait(timeout=10) == 0
    assert any('"event":"stopped"' in ln for ln in gw.log_lines())


@pytest.mark.usefixtures("pos_data")
def test_sigterm_with_postings_in_flight_loses_nothing(tmp_path: Path, standin_server: StandInServer,
                                                      standin: StandIn) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    gw = start_gateway(tmp_path, cfg)
    token = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    standin.delay = 0.5
    txns = [sale_txn() for _ in range(8)]
    batch = upload(gw, token, txns)["batch_uuid"]
    time.sleep(0.3)  # the worker is posting the first jobs
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=15) == 0
    gw.http.close()
    standin.delay = 0
    again = start_gateway(tmp_path, cfg)
    try:
        body = wait_batch(again, token, batch, timeout=30)
    finally:
        again.stop()
    assert body["status"] == "synced", body
    for t in txns:
        assert len(invoices_for(standin, t["client_txn_id"])) == 1


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_an_unreachable_redis_store_fails_fast_with_a_clear_message(tmp_path: Path, command: str) -> None:
    port = free_port()  # nobody listens here
    cfg = base_config(tmp_path, "http://127.0.0.1:9", store="redis")
    cfg["gateway"]["store"] = f"redis://:s3cret@127.0.0.1:{port}/0"
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(cfg))
    args = [POS_EDGE, command, "--config", str(path), "--store-wait", "1.5"]
    if command == "serve":
        args += ["--port", str(free_port())]
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert time.monotonic() - started < 10
    assert f"cannot reach the state store redis://:***@127.0.0.1:{port}/0 (gave up after 1.5 s)" in out.stderr
    assert "s3cret" not in out.stderr + out.stdout


def test_a_bad_config_never_half_starts(tmp_path: Path) -> None:
    path = tmp_path / "tenants.yaml"
    path.write_text("gateway:\n  jwt: {}\ntenants: {}\n")
    port = free_port()
    out = subprocess.run([POS_EDGE, "serve", "--config", str(path), "--port", str(port)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 1 and "gateway.jwt.secret" in out.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_worker_whose_metrics_port_is_taken_exits_1_before_starting_anything(tmp_path: Path) -> None:
    taken = socket.create_server(("127.0.0.1", 0))  # another process's listener, as far as the worker knows
    port = taken.getsockname()[1]
    # a store nobody answers: had the worker waited for it first, it would take --store-wait (30 s)
    cfg = base_config(tmp_path, "http://127.0.0.1:9", store="redis")
    cfg["gateway"]["store"] = f"redis://127.0.0.1:{free_port()}/0"
    path = tmp_path / "tenants.yaml"
    path.write_text(yaml.safe_dump(cfg))
    started = time.monotonic()
    try:
        out = subprocess.run([POS_EDGE, "worker", "--config", str(path), "--metrics-port", str(port)],
                             capture_output=True, text=True, timeout=30)
    finally:
        taken.close()
    assert out.returncode == 1
    assert time.monotonic() - started < 10
    assert out.stderr.splitlines() == [f"cannot serve metrics on 127.0.0.1:{port}: Address already in use"], out.stderr
    assert out.stdout == ""  # no worker_started, no store message: nothing started
