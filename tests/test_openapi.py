"""/openapi.json describes the public endpoints, and real answers conform to it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import jsonschema
import pytest

from edge.problems import CODES
from edge.standin import StandInServer
from tests.conftest import new_standin_server


@pytest.fixture(scope="module")
def standin_server() -> Iterator[StandInServer]:
    """This module's own stand-in (the conftest's sites): the POS data, sales and closures
    posted here (and tests/test_schemathesis.py's fuzzing, which uses it too) stay out of the
    shared stand-in, whose Item lists other modules assert."""
    server = new_standin_server()
    yield server
    server.stop()


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
    assert {"period_start", "period_end", "balances"} <= set(spec["components"]["schemas"]["Closure"]["required"])
    assert "branch_id" not in spec["components"]["schemas"]["Sale"]["required"]  # the device's branch when left out


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


def test_every_status_says_what_it_carries(spec) -> None:
    """Errors are problem+json pinned to the codes of their status; every answer declares
    X-Request-ID; the Host rule and the bearer scheme are described."""
    assert {"/metrics", "/openapi.json"} <= set(spec["paths"])
    assert spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"].keys() == {"text/plain"}
    assert "Host" in spec["info"]["description"] and spec["servers"][0]["url"] == "https://{tenant}.{base_domain}"
    assert spec["components"]["securitySchemes"]["deviceToken"]["scheme"] == "bearer"
    responses = spec["components"]["responses"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert "security" in op, (method, path)
            for status, answer in op["responses"].items():
                answer = responses[answer["$ref"].rsplit("/", 1)[1]] if "$ref" in answer else answer
                assert answer["headers"]["X-Request-ID"] == {"$ref": "#/components/headers/X-Request-ID"}, (path, status)
                if status.isdigit() and int(status) >= 400 and path not in ("/readyz",):
                    problem = answer["content"]["application/problem+json"]["schema"]
                    codes = problem["properties"]["code"]["enum"]
                    assert codes and {CODES[c][0] for c in codes} == {int(status)}, (method, path, status)
    sale = spec["paths"]["/v1/sale"]["post"]["responses"]
    assert sale["429"]["headers"]["Retry-After"]["required"] is True
    assert sale["401"]["headers"]["WWW-Authenticate"] == {"$ref": "#/components/headers/WWW-Authenticate"}
    assert "idempotency_in_progress" in sale["409"]["content"]["application/problem+json"]["schema"]["properties"][
        "code"]["enum"]
    batch = spec["paths"]["/sync/batch"]["post"]["responses"]["202"]
    assert batch["headers"]["Location"] == {"$ref": "#/components/headers/Location"}
    assert batch["links"]["GetSyncStatus"]["operationId"] == "get_sync_status"


def test_request_schemas_match_the_models(spec) -> None:
    """The documented request bodies accept what the models accept and refuse what they refuse,
    for the shapes tills get wrong most (decimal strings, dates)."""
    from tests.routes.test_pos import sale

    for body, ok in [(sale(), True), (sale(posting_date="2026-01-31", posting_time="14:05:00"), True),
                     (sale(items=[{"item_code": "cof", "qty": "", "rate": "1"}]), False),
                     (sale(items=[{"item_code": "cof", "qty": 0, "rate": "1"}]), False),
                     (sale(discount_amount="abc"), False), (sale(additional_discount_percentage=101), False)]:
        if ok:
            validate(spec, "Sale", body)
        else:
            with pytest.raises(jsonschema.ValidationError):
                validate(spec, "Sale", body)
    # the examples in the document are valid requests
    for name in ("Sale", "Return", "Closure", "SyncBatchRequest", "RegisterRequest"):
        for example in spec["components"]["schemas"][name]["examples"]:
            validate(spec, name, example)
