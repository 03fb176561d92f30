"""POS reference data on the session's stand-in (shop1.erp.test) and a small Frappe REST client for tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from edge.standin import StandIn, StandInServer, StandInSite
from edge.standin.seed import seed_pos
from edge.standin.seed_real import real_like_site

SITE = "shop1.erp.test"
COMPANY = "Shop One Ltd"
AUTH = {"Authorization": "token key-shop1:secret-shop1", "Host": SITE}


def seed(standin_server: StandInServer) -> None:
    """Idempotent: the server is shared by the whole session."""
    seed_pos(standin_server.standin.sites[SITE], COMPANY, suffix="S1", pos_profile="Shop One Main",
             invoice_doctype="Sales Invoice", open_shift=True)


def messages(r: httpx.Response) -> list[Any]:
    """The `message`s of Frappe's `_server_messages`."""
    raw = r.json().get("_server_messages")
    return [json.loads(m)["message"] for m in json.loads(raw)] if raw else []


def txn() -> str:
    """A fresh value for the unique reference field."""
    return f"tx-{uuid.uuid4().hex[:12]}"


class Erp:
    """Frappe v1 REST calls against the stand-in, as the site's API user."""

    def __init__(self, url: str, headers: dict[str, str] = AUTH, site: StandInSite | None = None) -> None:
        self.http = httpx.Client(base_url=url, headers=headers, timeout=10)
        self.site = site  # the served site, where a test owns it

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


REAL_HOST = "pos.localhost"


@pytest.fixture
def real() -> Iterator[Erp]:
    """A client on a fresh stand-in site shaped like the recorded real site (seed_real: UGX,
    Africa/Kampala, strict rules), served on its own port; `real.site` is the site."""
    site = real_like_site(REAL_HOST, "real-key", "real-secret")
    at_local(site, "2026-11-28 12:00:00")
    server = StandInServer(StandIn([site]))
    server.start()
    client = Erp(server.url, {"Authorization": "token real-key:real-secret", "Host": REAL_HOST}, site)
    yield client
    client.http.close()
    server.stop()


def at_local(site: StandInSite, when: str) -> None:
    """Pin the site's clock to `when`, Africa/Kampala time (the real-like site's zone)."""
    instant = datetime.fromisoformat(when).replace(tzinfo=ZoneInfo("Africa/Kampala")).astimezone(UTC)
    site.clock = lambda: instant


def pos_sale(**over: Any) -> dict[str, Any]:
    """A POS Invoice for the real-like site's "Shop One Counter": one POSHO-5KG at 24000, paid in cash."""
    body: dict[str, Any] = {
        "docstatus": 1, "is_pos": 1, "pos_profile": "Shop One Counter", "customer": "Walk-in Customer",
        "company": COMPANY, "update_stock": 1, "items": [{"item_code": "POSHO-5KG", "qty": 1, "rate": 24000}],
        "payments": [{"mode_of_payment": "Cash", "account": "Cash - S1", "amount": 24000}], "paid_amount": 24000,
    }
    body.update(over)
    return body


def open_shift(erp: Erp, profile: str = "Shop One Counter", start: str = "2026-11-28 08:00:00") -> dict[str, Any]:
    """Open a POS Opening Entry for `profile` (submitted on insert), as a till would."""
    r = erp.post("POS Opening Entry", {"pos_profile": profile, "company": COMPANY, "user": "Administrator",
                                        "period_start_date": start, "posting_date": start[:10], "docstatus": 1,
                                        "balance_details": [{"mode_of_payment": "Cash", "opening_amount": 20000}]})
    assert r.status_code == 200, r.text
    return r.json()["data"]
