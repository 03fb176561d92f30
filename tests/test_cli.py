"""`pos-edge check` as an admin runs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import POS_EDGE

ROOT = Path(__file__).parents[1]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([POS_EDGE, *args], capture_output=True, text=True, timeout=30, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_check_accepts_the_example() -> None:
    out = run("check", "tenants.yaml")
    assert out.returncode == 0, out.stderr
    assert "OK (2 tenant(s): shop1, shop2)" in out.stdout
    assert "registration is open" in out.stdout


def test_check_reports_every_error_with_its_path(tmp_path) -> None:
    bad = tmp_path / "tenants.yaml"
    bad.write_text(
        "gateway:\n  jwt: {secret: '${NOPE_SECRET}'}\n  rate_limit_storage: memcached://x\n"
        "tenants:\n  shop1:\n    name: S\n    status: paused\n"
        "    erpnext: {url: 'ftp://erp', api_key: k, api_secret: hunter2-secret}\n"
    )
    out = run("check", str(bad))
    assert out.returncode == 1
    err = out.stderr
    assert "gateway.jwt.secret: environment variable NOPE_SECRET is not set" in err
    assert "gateway.rate_limit_storage:" in err
    assert "tenants.shop1.status:" in err
    assert "tenants.shop1.erpnext.url:" in err
    assert "hunter2-secret" not in err + out.stdout


def test_check_on_a_missing_file(tmp_path) -> None:
    out = run("check", str(tmp_path / "absent.yaml"))
    assert out.returncode == 1 and "cannot read file" in out.stderr


def test_serve_refuses_a_broken_config(tmp_path) -> None:
    bad = tmp_path / "tenants.yaml"
    bad.write_text("gateway: {}\ntenants: {}\n")
    out = run("serve", "--config", str(bad), "--port", "1")
    assert out.returncode == 1 and "gateway.jwt: Field required" in out.stderr


def test_config_path_from_environment(tmp_path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("tenants: {}\n")
    out = run("devices", "list", "--tenant", "shop1", env={"POS_EDGE_CONFIG": str(bad)})
    assert out.returncode == 1 and str(bad) in out.stderr


def test_serve_refuses_a_public_listener_with_default_secrets() -> None:
    out = run("serve", "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 1
    assert "gateway.jwt.secret" in out.stderr and "tenants.shop1.erpnext.api_secret" in out.stderr
    assert "dev-only" not in out.stderr


def test_check_online_finds_what_erpnext_lacks(tmp_path) -> None:
    """`check --online` against the demo stand-in: the example config finds everything; names
    ERPNext does not hold, a Mode of Payment without an account and wrong credentials are each
    one line, and the exit status is 1."""
    from edge.standin import StandInServer
    from edge.standin.demo import demo_standin

    standin = demo_standin()
    site = standin.sites["shop1.erp.local"]
    site.insert("Mode of Payment", {"name": "Voucher", "mode_of_payment": "Voucher", "type": "General",
                                    "accounts": []})
    server = StandInServer(standin)
    server.start()
    try:
        example = (ROOT / "tenants.yaml").read_text().replace("http://127.0.0.1:8001", server.url.rstrip("/"))
        good = tmp_path / "good.yaml"
        good.write_text(example)
        out = run("check", str(good), "--online")
        assert out.returncode == 0, out.stdout + out.stderr
        assert "tenants.shop1: ERPNext at" in out.stdout and "tenants.shop2: ERPNext at" in out.stdout

        bad = tmp_path / "bad.yaml"
        bad.write_text(example.replace("warehouse: Stores - S1", "warehouse: Stores - S9")
                       .replace("card: Credit Card", "card: Voucher")
                       .replace("pos_profile: Shop One Main", "pos_profile: Shop Two Front"))
        out = run("check", "--online", "--config", str(bad))
        assert out.returncode == 1
        lines = out.stderr.splitlines()
        assert "  tenants.shop1.branches.main.warehouse: Warehouse 'Stores - S9' does not exist in ERPNext" in lines
        assert "  tenants.shop1.payment_methods.card: Mode of Payment 'Voucher' has no default account for " \
               "'Shop One Ltd'" in lines
        assert any(ln.startswith("  tenants.shop1.branches.main.pos_profile: POS Profile 'Shop Two Front'")
                   for ln in lines), lines
        assert lines[-1] == "3 problem(s) found in ERPNext"

        out = run("check", str(good), "--online", env={"SHOP2_ERPNEXT_API_SECRET": "wrong-secret"})
        assert out.returncode == 1
        assert "  tenants.shop2.erpnext: ERPNext at" in out.stderr and "API key or secret is wrong" in out.stderr
        assert "wrong-secret" not in out.stdout + out.stderr
    finally:
        server.stop()


def test_version_and_python_dash_m() -> None:
    import sys

    from edge import __version__

    out = run("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"pos-edge {__version__}")
    module = subprocess.run([sys.executable, "-m", "edge", "--version"], capture_output=True, text=True, cwd=ROOT,
                            timeout=30)
    assert (module.returncode, module.stdout) == (0, out.stdout)


def test_check_defaults_to_the_configured_file(tmp_path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("tenants: {}\n")
    out = run("check", env={"POS_EDGE_CONFIG": str(bad)})
    assert out.returncode == 1 and str(bad) in out.stderr
    out = run("check", "--config", str(bad))
    assert out.returncode == 1 and str(bad) in out.stderr
    assert run("check").returncode == 0  # ./tenants.yaml, the example


def test_config_show_prints_the_effective_config_with_secrets_masked(tmp_path) -> None:
    import yaml

    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        "gateway:\n  jwt: {secret: jwt-secret-that-is-long-enough-0123456789}\n"
        "  store: redis://:store-password@127.0.0.1:6379/3\n"
        "defaults:\n  erpnext: {timeout: 7}\n"
        "tenants:\n  shop1:\n    name: S\n"
        "    erpnext: {url: 'http://erp', api_key: the-key, api_secret: hunter2-secret}\n"
        "    registration: {enrollment_key: enrol-me}\n")
    out = run("config", "show", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    for secret in ("jwt-secret-that", "store-password", "the-key", "hunter2", "enrol-me"):
        assert secret not in out.stdout
    shown = yaml.safe_load(out.stdout)
    shop = shown["tenants"]["shop1"]
    assert shop["erpnext"]["timeout"] == 7  # from defaults:
    assert shop["erpnext"]["commit_grace"] == 150  # a model default, filled in
    assert shop["erpnext"]["api_secret"] == "**********"
    assert shown["gateway"]["store"] == "redis://:***@127.0.0.1:6379/3"


def test_devices_commands_parse_in_either_order_and_delete_refuses_a_registered_till(tmp_path) -> None:
    import asyncio
    import time

    from edge.store import open_store

    cfg = tmp_path / "t.yaml"
    cfg.write_text((ROOT / "tenants.yaml").read_text())
    out = run("devices", "block", "--tenant", "shop1", "till-0l", "--config", str(cfg))
    assert out.returncode == 0 and "never registered" in out.stdout, out.stderr
    out = run("devices", "block", "till-02", "--tenant", "shop1", "--config", str(cfg))
    assert out.returncode == 0, out.stderr

    async def register() -> None:  # a till that enrolled (generation 1)
        store = open_store(f"sqlite:///{tmp_path}/pos-edge.db")  # relative to the config file
        await store.open()
        await store.register_device("shop1", "till-01", "Front", "main", time.time())
        await store.close()

    asyncio.run(register())
    listed = run("devices", "list", "--tenant", "shop1", "--config", str(cfg)).stdout
    assert [ln.split()[0] for ln in listed.splitlines()[1:]] == ["till-01", "till-02", "till-0l"]
    out = run("devices", "delete", "--tenant", "shop1", "till-0l", "--config", str(cfg))
    assert (out.returncode, out.stdout.strip()) == (0, "till-0l: deleted")
    refused = run("devices", "delete", "till-01", "--tenant", "shop1", "--config", str(cfg))
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert run("devices", "delete", "till-01", "--tenant", "shop1", "--force", "--config", str(cfg)).returncode == 0
    gone = run("devices", "delete", "till-01", "--tenant", "shop1", "--config", str(cfg))
    assert gone.returncode == 1 and "no device till-01" in gone.stderr
    listed = run("devices", "list", "--tenant", "shop1", "--config", str(cfg)).stdout
    assert [ln.split()[0] for ln in listed.splitlines()[1:]] == ["till-02"]


def test_sync_commands_parse_in_either_order(tmp_path) -> None:
    cfg = tmp_path / "t.yaml"
    cfg.write_text((ROOT / "tenants.yaml").read_text())
    for argv in (["sync", "retry", "--tenant", "shop1", "no-such-job"], ["sync", "retry", "no-such-job", "--tenant", "shop1"],
                 ["sync", "status", "--tenant", "shop1", "no-such-batch"]):
        out = run(*argv, "--config", str(cfg))
        assert out.returncode == 1 and "no job or batch" in out.stderr, (argv, out.stderr)
    assert run("sync", "failed", "--config", str(cfg)).returncode == 2  # --tenant is required there


def test_serve_on_a_port_in_use_fails_before_starting_anything(tmp_path) -> None:
    import socket

    cfg = tmp_path / "t.yaml"
    cfg.write_text((ROOT / "tenants.yaml").read_text())
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        for workers in ("1", "2"):
            out = run("serve", "--config", str(cfg), "--port", str(port), "--workers", workers)
            assert out.returncode == 1, out.stdout + out.stderr
            assert out.stderr.strip().endswith(f"cannot listen on 127.0.0.1:{port}: Address already in use"), out.stderr
            assert '"event":"started"' not in out.stdout + out.stderr  # the lifespan never ran
            assert "startup" not in (out.stdout + out.stderr).lower()
    finally:
        busy.close()
