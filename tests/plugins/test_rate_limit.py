"""Rate limiting end to end: headers, 429 + Retry-After, shared Redis counters, fail-open."""

from __future__ import annotations

import json
import uuid

from edge.standin.server import free_port
from tests.conftest import base_config
from tests.routes.test_erpnext import assert_problem


def limited_config(tmp_path, url, **gateway):
    cfg = base_config(tmp_path, url, **gateway)
    cfg["tenants"]["shop1"]["rate_limit"] = "5/minute"
    return cfg


def test_limit_then_429_with_retry_after(gateway_factory, tmp_path, standin_server) -> None:
    gw = gateway_factory(limited_config(tmp_path, standin_server.url))
    token = gw.token("till-a")  # registration is limited by client address, not the device key
    seen = []
    for _ in range(5):
        r = gw.request("GET", "/erpnext/Item", token=token)
        assert r.status_code == 200
        seen.append(r.headers["ratelimit"])
        assert r.headers["ratelimit-policy"] == '"default";q=5;w=60'
    assert [s.split(";")[1] for s in seen] == ["r=4", "r=3", "r=2", "r=1", "r=0"]
    r = gw.request("GET", "/erpnext/Item", token=token)
    body = assert_problem(r, 429, "rate_limited")
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert r.headers["ratelimit"].startswith('"default";r=0;t=')
    assert "5 requests" in body["detail"]
    # Another device of the same tenant has its own budget; shop2 has its own limit.
    assert gw.request("GET", "/erpnext/Item", token=gw.token("till-b")).status_code == 200
    assert gw.request("GET", "/erpnext/Item", tenant="shop2", token=gw.token("till-c", tenant="shop2")).headers[
        "ratelimit-policy"] == '"default";q=1000;w=60'


def test_redis_counters_are_shared_between_replicas(gateway_factory, tmp_path, standin_server, redis_url) -> None:
    prefix_db = redis_url  # same database for the store and the counters
    cfg = limited_config(tmp_path, standin_server.url, rate_limit_storage=prefix_db)
    cfg["gateway"]["store"] = redis_url
    a = gateway_factory(cfg)
    b = gateway_factory(cfg)
    device = f"till-{uuid.uuid4().hex[:8]}"
    token = a.token(device)
    codes = [(a if i % 2 else b).request("GET", "/erpnext/Item", token=token).status_code for i in range(6)]
    assert codes == [200] * 5 + [429]


def test_unreachable_limit_store_fails_open_and_logs(gateway_factory, tmp_path, standin_server) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    gw = gateway_factory(limited_config(tmp_path, standin_server.url, rate_limit_storage=dead))
    token = gw.token("till-a")
    for _ in range(8):  # beyond the 5/minute limit: nothing counts, nothing blocks
        assert gw.request("GET", "/erpnext/Item", token=token).status_code == 200
    events = [json.loads(line) for line in gw.log_lines() if line.startswith("{")]
    assert any(e["event"] == "rate_limit_store_unavailable" and e["fail_open"] for e in events)
