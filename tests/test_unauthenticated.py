"""Requests refused before a device is known are limited per client address
(edge/unauthenticated.py), over real sockets, with in-process and Redis counters."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import REDIS_URL, base_config
from tests.routes.test_erpnext import assert_problem


@pytest.mark.parametrize("counters", ["memory://", "redis"])
def test_failures_from_one_address_are_429_past_the_limit(gateway_factory, tmp_path, standin_server, counters) -> None:
    storage = counters if counters == "memory://" else REDIS_URL
    cfg = base_config(tmp_path, standin_server.url, rate_limit_storage=storage, unauthenticated_rate_limit="6/minute",
                      trusted_proxies=["127.0.0.0/8"])
    gw = gateway_factory(cfg)
    good = gw.token(f"till-{uuid.uuid4().hex[:6]}")  # a till of this address, registered before the flood
    client = {"X-Forwarded-For": f"198.51.100.{uuid.uuid4().int % 250}"}  # one attacker address per run
    codes = [gw.request("GET", "/erpnext/Item", token="not.a.token", headers=client).status_code for _ in range(3)]
    codes += [gw.request("GET", "/erpnext/Item", tenant="nobody", headers=client).status_code for _ in range(2)]
    codes += [gw.register(f"till-{uuid.uuid4().hex[:6]}", enrollment_key="wrong", headers=client).status_code]
    assert codes == [401, 401, 401, 404, 404, 401]
    for attempt in (lambda: gw.request("GET", "/erpnext/Item", token="not.a.token", headers=client),
                    # an ERPNext webhook for no tenant's secret: counted per caller behind the proxy too
                    lambda: gw.request("POST", "/hooks/erpnext/shop1", headers=client, content=b"{}"),
                    lambda: gw.request("POST", "/v1/sale", tenant="nobody", headers=client, json={}),
                    lambda: gw.register(f"till-{uuid.uuid4().hex[:6]}", enrollment_key="wrong", headers=client)):
        r = attempt()
        assert_problem(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
    # a till with a valid token behind the same address is not refused for them
    r = gw.request("GET", "/erpnext/Item", token=good, headers=client)
    assert r.status_code == 200, r.text
    # another address is counted on its own
    assert gw.request("GET", "/erpnext/Item", token="not.a.token",
                      headers={"X-Forwarded-For": "203.0.113.77"}).status_code == 401
    assert gw.request("POST", "/hooks/erpnext/shop1", content=b"{}",
                      headers={"X-Forwarded-For": "203.0.113.78"}).status_code == 404
