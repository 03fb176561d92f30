"""Optional suite: pos-edge end to end against a REAL Frappe 15 / ERPNext 15 site.

Skipped unless all four are set (nothing here touches the network otherwise):

    POS_EDGE_REAL_ERPNEXT_URL     the site's origin, e.g. http://127.0.0.1:8100
    POS_EDGE_REAL_ERPNEXT_SITE    the Frappe site name, sent as Host (e.g. pos.localhost)
    POS_EDGE_REAL_ERPNEXT_KEY     an API key of a user that may create and submit invoices
    POS_EDGE_REAL_ERPNEXT_SECRET  its secret

The site must hold the masters of /work/shared/real-erpnext/masters.py (company "Shop One
Ltd" in UGX, Africa/Kampala; POS Profiles "Shop One Main" and "Shop One Counter";
"Stores - S1", "Main - S1"; "Walk-in Customer"; POSHO-5KG 24000 and SUGAR-1KG 5000 in
stock, SALT-1KG never stocked; Cash and Mobile Money with accounts). The unique reference
fields of Sales Invoice and POS Invoice are created here with `pos-edge erpnext setup`
(idempotent).

`pos-edge serve` runs as a subprocess (tests.conftest.start_gateway) with four tenants on
that site; ERPNext is inspected through its own REST API (`Erp`), never through pos-edge.
Every run is independent of earlier ones: fresh devices and client_txn_ids, and shifts
left open on the profiles used are closed first (`Erp.close_shifts`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from tests.conftest import POS_EDGE, Gateway, base_config, start_gateway

ENV = ("POS_EDGE_REAL_ERPNEXT_URL", "POS_EDGE_REAL_ERPNEXT_SITE", "POS_EDGE_REAL_ERPNEXT_KEY",
       "POS_EDGE_REAL_ERPNEXT_SECRET")
MISSING = [name for name in ENV if not os.environ.get(name)]
SKIP_REASON = ("real-ERPNext suite not configured: set " + ", ".join(ENV)
               + f" (missing: {', '.join(MISSING)})")

# The masters (masters.py / wizard.py)
COMPANY = "Shop One Ltd"
MAIN = "Shop One Main"  # POS Profile of the Sales Invoice tenants (and of the no-auto-open POS Invoice tenant)
COUNTER = "Shop One Counter"  # POS Profile of the POS Invoice tenant with auto_open_shift on
WAREHOUSE = "Stores - S1"
COST_CENTER = "Main - S1"
CUSTOMER = "Walk-in Customer"
ZONE = ZoneInfo("Africa/Kampala")
RUN = f"{time.strftime('%m%d%H%M%S')}{uuid.uuid4().hex[:4]}"  # this run's mark in ids and references


class Erp:
    """The real site's REST API, called directly (the test's own view of what ERPNext holds)."""

    def __init__(self, url: str, site: str, key: str, secret: str) -> None:
        self.url, self.site = url.rstrip("/"), site
        self.http = httpx.Client(base_url=self.url, timeout=120,
                                 headers={"Host": site, "Authorization": f"token {key}:{secret}",
                                          "Accept": "application/json"})

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        assert r.status_code < 400, f"ERPNext {method} {path} -> {r.status_code}: {r.text[:2000]}"
        return r.json()

    def doc(self, doctype: str, name: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/resource/{doctype}/{name}")["data"])

    def rows(self, doctype: str, filters: list[list[Any]], fields: list[str], order_by: str | None = None,
             limit: int = 0) -> list[dict[str, Any]]:
        params = {"filters": json.dumps(filters), "fields": json.dumps(fields), "limit_page_length": str(limit)}
        if order_by:
            params["order_by"] = order_by
        return list(self.call("GET", f"/api/resource/{doctype}", params=params)["data"])

    def insert(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        return dict(self.call("POST", f"/api/resource/{doctype}", json=doc)["data"])

    def user(self) -> str:
        return str(self.call("GET", "/api/method/frappe.auth.get_logged_user")["message"])

    @staticmethod
    def now() -> datetime:
        """Now in the site's time zone, naive (as ERPNext writes datetimes)."""
        return datetime.now(ZONE).replace(tzinfo=None, microsecond=0)

    def open_entries(self, profile: str) -> list[dict[str, Any]]:
        return self.rows("POS Opening Entry", [["pos_profile", "=", profile], ["status", "=", "Open"],
                                               ["docstatus", "=", 1]], ["name", "user", "period_start_date"],
                         order_by="period_start_date asc")

    def unconsolidated(self, profile: str) -> list[str]:
        rows = self.rows("POS Invoice", [["pos_profile", "=", profile], ["docstatus", "=", 1],
                                         ["status", "!=", "Consolidated"]], ["name"], order_by="name asc")
        return [str(r["name"]) for r in rows]

    def close_shifts(self, profile: str) -> list[str]:
        """Close every POS Opening Entry left open on `profile` by earlier runs (or by hand),
        consolidating the POS Invoices no closing took yet (at most 9 per closing entry:
        ERPNext hands 10 or more to a background job, and no worker runs on a test site).
        Returns the closing entries made."""
        made = []
        for _ in range(50):
            entries, pending = self.open_entries(profile), self.unconsolidated(profile)
            if not entries and not pending:
                return made
            if not entries:  # invoices no shift will ever close: give them one
                start = self.now() - timedelta(minutes=1)
                entries = [self.insert("POS Opening Entry", {
                    "pos_profile": profile, "company": COMPANY, "user": self.user(),
                    "period_start_date": start.isoformat(sep=" "), "posting_date": start.date().isoformat(),
                    "docstatus": 1, "balance_details": [{"mode_of_payment": "Cash", "opening_amount": 0}]})]
            entry, chunk = entries[0], pending[:9]
            end = self.now() + timedelta(seconds=1)
            closing = self.insert("POS Closing Entry", {
                "pos_opening_entry": entry["name"], "company": COMPANY, "user": entry.get("user") or self.user(),
                "period_end_date": end.isoformat(sep=" "), "posting_date": end.date().isoformat(), "docstatus": 1,
                "pos_transactions": [{"pos_invoice": n} for n in chunk]})
            made.append(str(closing["name"]))
        raise AssertionError(f"could not close the shifts of {profile}: {self.open_entries(profile)}")


def real_tenant(doctype: str, profile: str, erp: Erp, **over: Any) -> dict[str, Any]:
    """A tenants.yaml entry on the real site."""
    entry: dict[str, Any] = {
        "name": f"Real {doctype} {profile}",
        "erpnext": {"url": erp.url, "site_name": erp.site, "api_key": os.environ["POS_EDGE_REAL_ERPNEXT_KEY"],
                    "api_secret": os.environ["POS_EDGE_REAL_ERPNEXT_SECRET"], "timeout": 60},
        "company": COMPANY, "invoice_doctype": doctype, "default_customer": CUSTOMER,
        "payment_methods": {"cash": "Cash", "momo": "Mobile Money"},
        "branches": {"main": {"pos_profile": profile, "warehouse": WAREHOUSE, "cost_center": COST_CENTER}},
    }
    for k, v in over.items():
        entry[k] = {**entry[k], **v} if isinstance(v, dict) and isinstance(entry.get(k), dict) else v
    return entry


@pytest.fixture(scope="session")
def erp() -> Iterator[Erp]:
    if MISSING:
        pytest.skip(SKIP_REASON)
    site = Erp(os.environ["POS_EDGE_REAL_ERPNEXT_URL"], os.environ["POS_EDGE_REAL_ERPNEXT_SITE"],
               os.environ["POS_EDGE_REAL_ERPNEXT_KEY"], os.environ["POS_EDGE_REAL_ERPNEXT_SECRET"])
    site.user()  # reachable, and the credentials work
    yield site
    site.http.close()


@pytest.fixture(scope="session")
def gw(tmp_path_factory: pytest.TempPathFactory, erp: Erp) -> Iterator[Gateway]:
    """`pos-edge serve` with four tenants on the real site:

    - shop1:  Sales Invoices on "Shop One Main" (the unique custom_pos_edge_txn_id);
    - counter: POS Invoices on "Shop One Counter", auto_open_shift on (the default);
    - noauto: POS Invoices on "Shop One Main", auto_open_shift off;
    - pono:   Sales Invoices on "Shop One Main" with reference_field po_no (not unique),
              erpnext.timeout 0.3 s and commit_grace 20 s (the exactly-once case).
    """
    tmp = tmp_path_factory.mktemp("gw-real")
    cfg = base_config(tmp, erp.url)
    cfg["defaults"]["erpnext"] = {"timeout": 60}
    cfg["tenants"] = {
        "shop1": real_tenant("Sales Invoice", MAIN, erp, registration={"enrollment_key": "enrol-1"},
                             masterdata={"freshness": 2}),
        "counter": real_tenant("POS Invoice", COUNTER, erp),
        "noauto": real_tenant("POS Invoice", MAIN, erp, auto_open_shift=False),
        "pono": real_tenant("Sales Invoice", MAIN, erp, reference_field="po_no",
                            erpnext={"timeout": 0.3, "commit_grace": 20}),
    }
    path = tmp / "tenants.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    # The reference fields (unique Custom Fields) of Sales Invoice and POS Invoice, as an
    # admin makes them; "already exists" after the first run.
    for tenant in ("shop1", "counter"):
        setup = subprocess.run([POS_EDGE, "erpnext", "setup", "--tenant", tenant, "--config", str(path)],
                               capture_output=True, text=True, timeout=120)
        assert setup.returncode == 0, setup.stdout + setup.stderr
    gateway = start_gateway(tmp, cfg, config_path=path)
    # /healthz answers before the start-up look at ERPNext (reference fields, and the site
    # settings validation uses: rounding, time zone) has finished; wait for it, so that the
    # first sale is validated as every later one is. /readyz reports the fields once done.
    deadline = time.monotonic() + 30
    while set(gateway.http.get("/readyz").json().get("reference_fields") or {}) != set(cfg["tenants"]):
        assert time.monotonic() < deadline, f"start-up checks unfinished:\n{log_of(gateway)}"
        time.sleep(0.05)
    yield gateway
    gateway.stop()


def new_id(prefix: str = "rt") -> str:
    """A transaction or device id no earlier run used."""
    return f"{prefix}-{RUN}-{uuid.uuid4().hex[:8]}"


def log_of(gw: Gateway, lines: int = 40) -> str:
    """The gateway's last log lines (for assertion messages)."""
    return "\n".join(Path(gw.log_path).read_text().splitlines()[-lines:])
