"""Liveness and readiness."""

from __future__ import annotations

import time

from tests.conftest import base_config


def test_healthz_and_readyz(gateway) -> None:
    assert gateway.http.get("/healthz").json() == {"status": "ok"}
    r = gateway.http.get("/readyz")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ready" and body["checks"] == {"config": "ok", "store": "ok"}
    # POS tenants' reference fields are reported (not gating readiness)
    assert set(body.get("reference_fields", {})) <= {"shop1", "shop2"}
    assert set(body.get("reference_fields", {}).values()) <= {"ok", "missing"}


def test_unknown_route_is_problem_json(gateway) -> None:
    r = gateway.http.get("/nope")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "not_found"
    r = gateway.http.get("/gateway/device/register")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_store_outage_fails_closed(gateway_factory, tmp_path, standin_server, private_redis) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["gateway"]["store"] = private_redis.url
    gw = gateway_factory(cfg)
    token = gw.token("till-1")
    assert gw.http.get("/readyz").status_code == 200
    private_redis.stop()
    time.sleep(0.3)  # past the 0.2 s device-status cache of the test config
    r = gw.http.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["store"].startswith("failed")
    r = gw.request("GET", "/erpnext/Item", token=token)
    assert r.status_code == 503 and r.json()["code"] == "store_unavailable"
    r = gw.register("till-2")
    assert r.status_code == 503 and r.json()["code"] == "store_unavailable"
    assert gw.http.get("/healthz").status_code == 200
