"""Liveness and readiness: /readyz tells the truth about each tenant's ERPNext as it changes."""

from __future__ import annotations

import time

from edge.standin import StandIn, StandInServer, StandInSite, seed_pos
from tests.conftest import CREDS, base_config


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
    # a probe is quiet (debug) while it passes, but a failing one is logged at info
    rid = r.headers["x-request-id"]
    (line,) = [ln for ln in gw.wait_log(rid) if rid in ln]
    assert '"path":"/readyz","status":503' in line and '"level":"info"' in line
    r = gw.request("GET", "/erpnext/Item", token=token)
    assert r.status_code == 503 and r.json()["code"] == "store_unavailable"
    r = gw.register("till-2")
    assert r.status_code == 503 and r.json()["code"] == "store_unavailable"
    assert gw.http.get("/healthz").status_code == 200


def wait_field(gw, tenant: str, state: str, timeout: float = 20.0) -> dict:
    """/readyz's body once it reports `state` for the tenant's reference field."""
    deadline = time.monotonic() + timeout
    while True:
        r = gw.http.get("/readyz")
        body = r.json()
        if body.get("reference_fields", {}).get(tenant) == state or time.monotonic() > deadline:
            assert body.get("reference_fields", {}).get(tenant) == state, body
            return body
        time.sleep(0.1)


def test_a_refused_api_key_is_an_auth_failure_not_unreachable(gateway_factory, tmp_path, standin_server) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["erpnext"]["api_secret"] = "not-the-secret"  # the stand-in answers 401, as Frappe does
    gw = gateway_factory(cfg)
    body = wait_field(gw, "shop1", "auth_failed")
    assert body["status"] == "ready"  # reported per tenant, not gating: the other tenants work
    assert body["reference_fields"]["shop2"] != "auth_failed"
    (line,) = [ln for ln in gw.wait_log("reference_field_auth_failed") if "reference_field_auth_failed" in ln]
    assert '"tenant":"shop1"' in line and '"level":"warning"' in line and "not-the-secret" not in line


def test_erpnext_down_at_start_up_is_reported_unknown_then_ok_once_it_answers(gateway_factory, tmp_path) -> None:
    key, secret = CREDS["shop1"]
    site = StandInSite("shop1.erp.test", users={key: (secret, "api@shop1.test")})
    seed_pos(site, "Shop One Ltd", suffix="S1", pos_profile="Shop One Main", invoice_doctype="Sales Invoice")
    erpnext = StandInServer(StandIn([site]))  # its port is chosen, nobody listens there yet
    cfg = base_config(tmp_path, erpnext.url)
    del cfg["tenants"]["shop2"]
    gw = gateway_factory(cfg)
    try:
        body = wait_field(gw, "shop1", "unknown")
        assert body["status"] == "ready"
        time.sleep(1.5)  # a background look or two finds it still down
        assert gw.http.get("/readyz").json()["reference_fields"]["shop1"] == "unknown"
        erpnext.start()  # ERPNext comes up; the gateway is not restarted
        wait_field(gw, "shop1", "ok")
        lines = gw.wait_log("reference_field_ok")
        assert any('"event":"reference_field_ok"' in ln and '"previously":"unknown"' in ln for ln in lines)
        # not per request: nothing asked ERPNext between /readyz calls once the field was known
        asked = len(erpnext.standin.requests)
        for _ in range(5):
            gw.http.get("/readyz")
        assert len(erpnext.standin.requests) == asked
    finally:
        erpnext.stop()
