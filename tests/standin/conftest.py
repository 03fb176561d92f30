"""POS reference data on the session's stand-in (shop1.erp.test) and a small Frappe REST client for tests."""

from __future__ import annotations

import json
import uuid

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from edge.standin import StandInServer
from edge.standin.seed import seed_pos

SITE = "shop1.erp.test"
COMPANY = "Shop One Ltd"
AUTH = {"Authorization": "token key-shop1:secret-shop1", "Host": SITE}


def seed(standin_server: StandInServer) -> None:
    """Idempotent: the server is shared by the whole session."""
    seed_pos(standin_server.standin.sites[SITE], COMPANY, suffix="S1", pos_profile="Shop One Main",
             invoice_doctype="Sales Invoice")


def messages(r: httpx.Response) -> list[Any]:
    """The `message`s of Frappe's `_server_messages`."""
    raw = r.json().get("_server_messages")
    return [json.loads(m)["message"] for m in json.loads(raw)] if raw else []


def txn() -> str:
    """A fresh value for the unique reference field."""
    return f"tx-{uuid.uuid4().hex[:12]}"


class Erp:
    """Frappe v1 REST calls against the stand-in, as the site's API user."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers=AUTH, timeout=10)

    def post(self, doctype: str, body: dict[str, Any]) -> httpx.Response:
        """POST /api/resource/<doctype>."""
        return self.http.post(f"/api/resource/{doctype}", json=body)

    def get(self, doctype: str, name: str) -> httpx.Response:
        """GET /api/resource/<doctype>/<name>."""
        return self.http.get(f"/api/resource/{doctype}/{name}")

    def put(self, doctype: str, name: str, body: dict[str, Any]) -> httpx.Response:
        """PUT /api/resource/<doctype>/<name>."""
        return self.http.put(f"/api/resource/{doctype}/{name}", json=body)

    def list(self, doctype: str, filters: Any = None, fields: Any = None, **params: Any) -> httpx.Response:
        """GET /api/resource/<doctype> with JSON filters/fields."""
        if filters is not None:
            params["filters"] = json.dumps(filters)
        if fields is not None:
            params["fields"] = json.dumps(fields)
        return self.http.get(f"/api/resource/{doctype}", params=params)

    def create(self, doctype: str = "Sales Invoice", **over: Any) -> dict[str, Any]:
        """A valid POS sale (COFFEE x2 + BREAD, paid 6.20 in cash), created; returns the response doc."""
        r = self.post(doctype, sale(**over))
        assert r.status_code == 200, r.text
        return r.json()["data"]


def sale(**over: Any) -> dict[str, Any]:
    """A POS invoice body for shop1, submitted on insert, with accounts set as pos-edge sends it."""
    body: dict[str, Any] = {
        "customer": "Walk-in Customer",
        "company": COMPANY,
        "is_pos": 1,
        "docstatus": 1,
        "pos_profile": "Shop One Main",
        "items": [{"item_code": "COFFEE", "qty": 2, "rate": 2.5}, {"item_code": "BREAD", "qty": 1}],
        "payments": [{"mode_of_payment": "Cash", "amount": 6.2, "account": "Cash - S1"}],
    }
    body.update(over)
    return body


@pytest.fixture
def erp(standin_server: StandInServer, standin: Any) -> Iterator[Erp]:
    """A client on shop1.erp.test, whose POS reference data is seeded."""
    seed(standin_server)
    client = Erp(standin_server.url)
    yield client
    client.http.close()
