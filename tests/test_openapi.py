"""/openapi.json describes the public endpoints, and real answers conform to it."""

from __future__ import annotations

import uuid

import jsonschema
import pytest

from edge.problems import CODES


def validate(spec: dict, ref: str, instance: object) -> None:
    schema = {"$ref": f"#/components/schemas/{ref}", "components": spec["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


@pytest.fixture
def spec(gateway) -> dict:
    r = gateway.http.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def test_every_public_endpoint_is_described(spec) -> None:
    assert spec["openapi"] == "3.1.0"
    assert {"/gateway/device/register", "/v1/sale", "/v1/return", "/v1/closure", "/sync/batch", "/sync/status/{batch_uuid}",
            "/erpnext/{path}", "/healthz", "/readyz"} <= set(spec["paths"])
    closure = spec["paths"]["/v1/closure"]["post"]
    assert closure["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Closure"}
    assert set(spec["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]) == set(CODES)
    assert {"period_start", "period_end", "balances", "branch_id"} <= set(spec["components"]["schemas"]["Closure"]["required"])


@pytest.mark.usefixtures("pos_data")
def test_real_answers_conform(gateway, spec, standin) -> None:
    from tests.routes.test_pos import sale

    reg = gateway.register(f"till-{uuid.uuid4().hex[:6]}")
    validate(spec, "RegisterResponse", reg.json())
    token = reg.json()["token"]
    sold = gateway.request("POST", "/v1/sale", token=token, json=sale())
    assert sold.status_code == 201
    validate(spec, "InvoiceView", sold.json())
    closed = gateway.request("POST", "/v1/closure", token=token, json={
        "branch_id": "main", "till_id": "t1", "period_start": "2001-01-01T00:00:00", "period_end": "2001-01-02T00:00:00",
        "balances": [{"method": "cash", "closing_amount": 0}]})
    assert closed.status_code == 201, closed.text
    validate(spec, "ClosureView", closed.json())
    bad = gateway.request("POST", "/v1/sale", token=token, json=sale(branch_id="moon"))
    validate(spec, "Problem", bad.json())
    # and the request schemas accept what the tills send
    validate(spec, "Sale", sale())
    with pytest.raises(jsonschema.ValidationError):
        validate(spec, "Sale", {"items": []})


@pytest.mark.usefixtures("pos_data")
def test_sync_answers_conform(gateway, spec, standin) -> None:
    from tests.sync.helpers import sale_txn, wait_batch

    token = gateway.token(f"till-{uuid.uuid4().hex[:6]}")
    body = {"transactions": [sale_txn(), sale_txn()]}
    validate(spec, "SyncBatchRequest", body)
    accepted = gateway.request("POST", "/sync/batch", token=token, json=body)
    assert accepted.status_code == 202
    validate(spec, "SyncAccepted", accepted.json())
    validate(spec, "SyncStatus", gateway.request("GET", f"/sync/status/{accepted.json()['batch_uuid']}", token=token).json())
    validate(spec, "SyncStatus", wait_batch(gateway, token, accepted.json()["batch_uuid"]))
    with pytest.raises(jsonschema.ValidationError):
        validate(spec, "SyncBatchRequest", {"transactions": [{"type": "refund", "client_txn_id": "x", "payload": {}}]})
