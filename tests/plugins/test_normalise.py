"""The normalise plugin end to end: what is refused before anything reaches ERPNext."""

from __future__ import annotations

import uuid

import pytest

from edge.config import ConfigError, parse
from edge.standin import StandIn
from tests.routes.test_erpnext import assert_problem


def sale(**over):
    body = {"items": [{"item_code": "COFFEE", "qty": 2, "rate": 2.5}], "payments": [{"method": "cash", "amount": 5}],
            "branch_id": "main", "till_id": "t1", "client_txn_id": f"tx-{uuid.uuid4().hex[:10]}"}
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("over", "loc", "msg"),
    [
        ({"branch_id": "moon"}, ["branch_id"], "unknown branch 'moon'"),
        ({"payments": [{"method": "bitcoin", "amount": 5}]}, ["payments", "0", "method"], "unknown payment method 'bitcoin'"),
        # more than a whole unit short: refused whatever ERPNext's rounding (unknown here: this
        # module's site has no POS Profile to read it from)
        ({"payments": [{"method": "cash", "amount": 3.99}]}, ["payments"], "do not cover the total (5"),
        ({"items": [{"item_code": "COFFEE", "qty": 0, "rate": 2.5}]}, ["items", "0", "qty"], "greater than 0"),
        ({"items": [{"item_code": "COFFEE", "qty": 1, "rate": -1}]}, ["items", "0", "rate"], "greater than or equal to 0"),
        ({"items": []}, ["items"], "at least 1"),
        ({"discount_amount": 1, "additional_discount_percentage": 5}, [], "not both"),
        ({"client_txn_id": "has space"}, ["client_txn_id"], "pattern"),
    ],
)
def test_refused_before_erpnext(gateway, standin: StandIn, over, loc, msg) -> None:
    token = gateway.token(f"till-{uuid.uuid4().hex[:8]}")
    before = len(standin.requests)
    r = gateway.request("POST", "/v1/sale", token=token, json=sale(**over))
    body = assert_problem(r, 422, "validation_failed")
    assert any(e["loc"] == loc and msg in e["msg"] for e in body["errors"]), body["errors"]
    # nothing was sent for it (the gateway's own start-up reads, GETs, may still arrive meanwhile)
    assert [r.path for r in list(standin.requests)[before:] if r.method != "GET"] == []


def test_pos_needs_a_token(gateway) -> None:
    assert_problem(gateway.request("POST", "/v1/sale", json=sale()), 401, "unauthorized")


def test_mapping_is_validated_at_load() -> None:
    text = """
gateway: {jwt: {secret: "%s"}}
tenants:
  shop1:
    name: S
    erpnext: {url: "http://127.0.0.1:1", api_key: k, api_secret: s}
    payment_methods: {cash: Cash}
    branches: {main: {pos_profile: P}}
    invoice_doctype: Journal Entry
    reference_field: "Bad Field"
""" % ("x" * 40)
    with pytest.raises(ConfigError) as info:
        parse(text)
    errs = dict(info.value.errors)
    assert "tenants.shop1.branches.main.warehouse" in errs
    assert "tenants.shop1.invoice_doctype" in errs
    assert "tenants.shop1.reference_field" in errs


def test_fingerprints_ignore_key_order_and_number_formatting() -> None:
    from edge.sales import Sale
    from plugins.normalise import fingerprint

    a = Sale.model_validate({"items": [{"item_code": "X", "qty": 1, "rate": "2.5"}], "branch_id": "b", "till_id": "t",
                             "posting_date": "2026-11-24"})
    b = Sale.model_validate({"till_id": "t", "posting_date": "2026-11-24", "branch_id": "b",
                             "items": [{"rate": "2.50", "qty": "1.0", "item_code": "X"}]})
    c = Sale.model_validate({"items": [{"item_code": "X", "qty": 1, "rate": "2.51"}], "branch_id": "b", "till_id": "t",
                             "posting_date": "2026-11-24"})
    assert fingerprint(a.model_dump()) == fingerprint(b.model_dump()) != fingerprint(c.model_dump())
