"""SaleFlex GATE's route family on pos-edge's handlers: a SaleFlex/PyPOS terminal's paths,
with and without the trailing slash, answer as their pos-edge originals."""

from __future__ import annotations

import time
import uuid

import pytest

from edge.openapi import SALEFLEX_ALIASES, spec
from edge.standin import StandInServer
from tests.conftest import Gateway
from tests.routes.md_shop import Shop
from tests.routes.test_erpnext import assert_problem


@pytest.mark.parametrize("slash", ["/", ""])
def test_saleflex_paths_answer_as_the_originals(md_gw: Gateway, md_server: StandInServer, slash: str) -> None:
    shop = Shop(md_gw, md_server)
    device = f"sf-{uuid.uuid4().hex[:6]}"
    reg = md_gw.http.post(f"/pos/register{slash}", headers={"Host": f"{shop.key}.tillking.test"}, json={
        "device_id": device, "device_name": "SaleFlex till", "tenant_subdomain": shop.key, "branch_id": "main"})
    assert reg.status_code == 201, reg.text
    token = reg.json()["token"]

    def get(path: str) -> dict:
        r = md_gw.request("GET", path, tenant=shop.key, token=token)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert get(f"/pos/init{slash}") == get("/v1/init")
    for name in ("products", "campaigns"):
        assert get(f"/pos/{name}{slash}?limit=20") == get(f"/v1/{name}?limit=20")

    closure = {"till_id": "sf-1", "client_txn_id": f"close-{uuid.uuid4().hex[:8]}",
               "period_start": "2026-11-01T08:00:00", "period_end": "2026-11-01T20:00:00",
               "balances": [{"method": "cash", "closing_amount": "0"}]}
    r = md_gw.request("POST", f"/pos/closures{slash}", tenant=shop.key, token=token, json=closure)
    assert r.status_code == 201, r.text
    assert r.json()["invoice_count"] == 0 and r.json()["closure_id"].endswith(closure["client_txn_id"])

    batch = {"transactions": [{"type": "closure", "client_txn_id": f"c-{uuid.uuid4().hex[:8]}", "payload": {
        "till_id": "sf-1", "period_start": "2026-11-02T08:00:00", "period_end": "2026-11-02T20:00:00",
        "balances": [{"method": "cash", "closing_amount": "0"}]}}]}
    r = md_gw.request("POST", f"/pos/transactions{slash}", tenant=shop.key, token=token, json=batch)
    assert r.status_code == 202, r.text
    batch_uuid = r.json()["batch_uuid"]
    assert r.headers["location"] == f"/sync/status/{batch_uuid}"
    deadline = time.monotonic() + 15
    while (status := md_gw.request("GET", f"/sync/status/{batch_uuid}", tenant=shop.key, token=token).json())[
            "status"] != "synced":
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert_problem(md_gw.request("POST", f"/pos/transactions{slash}", tenant=shop.key, token=token,
                                 json={"transactions": []}), 422, "validation_failed")
    assert_problem(md_gw.request("GET", f"/pos/products{slash}", tenant=shop.key, token=None), 401, "unauthorized")


def test_the_aliases_are_documented() -> None:
    paths = spec()["paths"]
    for alias, original in SALEFLEX_ALIASES.items():
        for path in (alias, alias + "/"):
            assert set(paths[path]) == set(paths[original]), path
            for method, op in paths[path].items():
                assert op["summary"].startswith(f"SaleFlex GATE alias of {method.upper()} {original}")
                assert op["responses"].keys() == paths[original][method]["responses"].keys()
