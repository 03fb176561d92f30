"""A tenant of its own for each master data or event test (tests/routes/conftest.py
starts the site and the gateway it is added to)."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import unquote

import httpx

from edge.standin import StandInServer, StandInSite
from tests.conftest import Gateway

SITE = "md.erp.test"
KEY, SECRET = "key-md", "secret-md"
COMPANY = "MD Ltd"


def item(code: str, **over: Any) -> dict[str, Any]:
    return {"name": code, "item_code": code, "item_name": f"Item {code}", "item_group": "Products",
            "stock_uom": "Nos", "disabled": 0, "is_sales_item": 1, "has_variants": 0, **over}


class Shop:
    """A tenant of its own on the module's site (keys are unique: the Redis store is shared)."""

    def __init__(self, gw: Gateway, server: StandInServer, webhook_secret: str | None = None, **masterdata: Any) -> None:
        self.gw, self.server = gw, server
        self.site: StandInSite = server.standin.sites[SITE]
        self.key = f"md{uuid.uuid4().hex[:8]}"
        entry = {
            "name": "MD shop", "erpnext": {"url": server.url, "site_name": SITE, "api_key": KEY, "api_secret": SECRET,
                                           **({"webhook_secret": webhook_secret} if webhook_secret else {})},
            "company": COMPANY, "default_customer": "Walk-in Customer",
            "payment_methods": {"cash": "Cash", "momo": "Mobile Money"},
            "branches": {"main": {"pos_profile": "MD Main", "warehouse": "Stores - MD", "price_list": "Standard Selling"}},
            "masterdata": {"freshness": 1, "refresh_wait": 5, **masterdata},
        }
        import yaml

        path = gw.config_path
        cfg = yaml.safe_load(path.read_text())
        cfg["tenants"][self.key] = entry
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        deadline = time.monotonic() + 15
        while gw.register(f"probe-{uuid.uuid4().hex[:6]}", self.key).status_code != 201:  # the reload took it
            assert time.monotonic() < deadline, gw.log_lines()[-20:]
            time.sleep(0.1)
        self.token = gw.token(f"till-{uuid.uuid4().hex[:6]}", self.key)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.gw.request("GET", path, tenant=self.key, token=self.token, **kw)

    def all_pages(self, collection: str, since: str | None = None, limit: int = 10) -> tuple[list[dict[str, Any]], list[str], str]:
        """Every page of a collection from `since`: (rows, deleted names, the last cursor)."""
        rows: list[dict[str, Any]] = []
        deleted: list[str] = []
        url = f"/v1/{collection}?limit={limit}" + (f"&since={since}" if since is not None else "")
        while True:
            r = self.get(url)
            assert r.status_code == 200, r.text
            body = r.json()
            rows += body["items"]
            deleted += body["deleted"]
            if body["next"] is None:
                return rows, deleted, body["cursor"]
            url = body["next"]

    def until(self, collection: str, since: str, done: Any, timeout: float = 15) -> tuple[list[dict[str, Any]], list[str], str]:
        """Deltas from `since` (as a till polls) until `done(rows, deleted)`."""
        deadline = time.monotonic() + timeout
        while True:
            rows, deleted, cursor = self.all_pages(collection, since)
            if done(rows, deleted):
                return rows, deleted, cursor
            assert time.monotonic() < deadline, (rows, deleted)
            time.sleep(0.3)

    def calls(self, doctype: str) -> int:
        """List calls the stand-in got for `doctype` (all tenants share the site: count before/after)."""
        path = "/api/resource/" + doctype
        return sum(1 for r in self.server.standin.requests if unquote(r.path) == path)
