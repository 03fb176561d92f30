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
