"""`POST /hooks/erpnext/<tenant>` and `pos-edge erpnext setup`'s Webhooks, over real sockets on
both stores: the stand-in delivers signed Webhooks (as the real site does, see
tests/standin/test_real_webhooks.py) to the gateway, which refreshes and tells the tills."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edge.masterdata.webhooks import SIGNATURE_HEADER, sign
from edge.standin import StandInServer
from tests.conftest import POS_EDGE, Gateway, base_config, start_gateway
from tests.routes.md_shop import KEY, SECRET, SITE, Shop, item
from tests.routes.test_erpnext import assert_problem
from tests.routes.test_events import Events, opened  # noqa: F401 (a fixture)

HOOK_SECRET = "hook-secret-" + "0123456789abcdef"
SLOW = {"freshness": 3600}  # no poll refreshes within a test: only a Webhook can


def post_hook(gw: Gateway, tenant: str, body: Any, secret: str | None = HOOK_SECRET,
              sig: str | bytes | None = None) -> httpx.Response:
    """POST a Webhook as Frappe sends one: JSON text with ", "/": " separators, signed."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers: dict[str, str | bytes] = {"Content-Type": "application/json"}
    if sig is not None:
        headers[SIGNATURE_HEADER] = sig
    elif secret is not None:
        headers[SIGNATURE_HEADER] = sign(secret, raw)
    return httpx.post(f"http://127.0.0.1:{gw.port}/hooks/erpnext/{tenant}", content=raw, headers=headers, timeout=10)


def erp(server: StandInServer) -> httpx.Client:
    """The stand-in's REST API, as an ERPNext user edits master data."""
    return httpx.Client(base_url=server.url, headers={"Host": SITE, "Authorization": f"token {KEY}:{SECRET}"},
                        timeout=10)


def setup(gw: Gateway, tenant: str, tmp: Path) -> list[str]:
    """`pos-edge erpnext setup --tenant` with gateway.public_url set to this gateway."""
    cfg = yaml.safe_load(gw.config_path.read_text())
    cfg["gateway"]["public_url"] = f"http://127.0.0.1:{gw.port}"
    path = tmp / f"setup-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    done = subprocess.run([POS_EDGE, "erpnext", "setup", "--tenant", tenant, "--config", str(path)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture
def hooked(md_server: StandInServer) -> Iterator[list[str]]:
    """Tenants whose Webhooks the stand-in holds: removed after the test (the gateway of the
    next store parameter runs on another port)."""
    tenants: list[str] = []
    yield tenants
    site = md_server.standin.sites[SITE]
    for name in [n for n in site.docs.get("Webhook", {}) if any(n.startswith(f"pos-edge {t} ") for t in tenants)]:
        del site.docs["Webhook"][name]


def test_setup_makes_the_webhooks_and_an_erpnext_edit_reaches_a_till_at_once(
        md_gw: Gateway, md_server: StandInServer, opened: list[Events], hooked: list[str], tmp_path: Path) -> None:  # noqa: F811
    shop = Shop(md_gw, md_server, webhook_secret=HOOK_SECRET, **SLOW)
    hooked.append(shop.key)
    lines = setup(md_gw, shop.key, tmp_path)
    assert sum("created Webhook" in line for line in lines) == 15, lines
    again = setup(md_gw, shop.key, tmp_path)  # a second run updates what the first made
    assert sum("updated Webhook" in line for line in again) == 15, again
    site = md_server.standin.sites[SITE]
    mine = {n: w for n, w in site.docs["Webhook"].items() if n.startswith(f"pos-edge {shop.key} ")}
    assert len(mine) == 15
    assert {(w["webhook_doctype"], w["webhook_docevent"]) for w in mine.values()} == {
        (d, e) for d in ("Item", "Item Price", "Pricing Rule", "Customer", "POS Profile")
        for e in ("after_insert", "on_update", "on_trash")}
    assert {w["request_url"] for w in mine.values()} == {f"http://127.0.0.1:{md_gw.port}/hooks/erpnext/{shop.key}"}
    assert all(site.passwords[("Webhook", n, "webhook_secret")] == HOOK_SECRET for n in mine)

    _, _, cursor = shop.all_pages("products")
    events = Events(md_gw, shop.key, shop.token)
    opened.append(events)
    time.sleep(0.3)
    code = f"WH{uuid.uuid4().hex[:6].upper()}"
    t0 = time.monotonic()
    with erp(md_server) as client:
        r = client.post("/api/resource/Item", json=item(code))
        assert r.status_code == 200, r.text
    event = events.next("products.changed", timeout=10)
    assert event is not None and time.monotonic() - t0 < 5  # freshness is an hour: the Webhook did it
    rows, _, _ = shop.all_pages("products", cursor)
    assert code in {r["item_code"] for r in rows}
    assert "webhook_received" in "\n".join(md_gw.wait_log("webhook_received"))
    with erp(md_server) as client:  # on_trash: the till hears the delete too
        assert client.delete(f"/api/resource/Item/{code}").status_code == 202
    event = events.next("products.changed", timeout=10)
    assert event is not None
    _, deleted, _ = shop.all_pages("products", cursor)
    assert code in deleted
    deliveries = [d for d in md_server.standin.webhooks.log if d.url.endswith(f"/hooks/erpnext/{shop.key}")]
    assert deliveries and all(d.status == 202 for d in deliveries)


def test_an_item_price_webhook_refreshes_the_branch_price_list(
        md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:  # noqa: F811
    shop = Shop(md_gw, md_server, webhook_secret=HOOK_SECRET, **SLOW)
    _, _, cursor = shop.all_pages("prices")
    events = Events(md_gw, shop.key, shop.token)
    opened.append(events)
    name = f"wh-{uuid.uuid4().hex[:8]}"
    shop.site.insert("Item Price", {"name": name, "item_code": "COFFEE", "price_list": "Standard Selling",
                                    "price_list_rate": 4.25, "selling": 1})
    r = post_hook(md_gw, shop.key, {"doctype": "Item Price", "event": "after_insert", "name": name,
                                    "modified": "2026-11-29 10:00:00.000001"})
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": True, "refresh": [{"collection": "prices", "scope": "Standard Selling"}]}
    event = events.next("prices.changed", timeout=10)
    assert event is not None and json.loads(event["data"])["scope"] == "Standard Selling"
    rows, _, _ = shop.all_pages("prices", cursor)
    assert {(p["item_price"], p["price_list_rate"]) for p in rows} >= {(name, 4.25)}


def test_a_bad_or_missing_signature_is_401_and_nothing_happens(
        md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:  # noqa: F811
    shop = Shop(md_gw, md_server, webhook_secret=HOOK_SECRET, **SLOW)
    shop.all_pages("products")
    events = Events(md_gw, shop.key, shop.token)
    opened.append(events)
    code = f"BAD{uuid.uuid4().hex[:6].upper()}"
    shop.site.insert("Item", item(code))
    before = shop.calls("Item")
    body = {"doctype": "Item", "event": "on_update", "name": code}
    for r in (post_hook(md_gw, shop.key, body, secret="another-secret-0123456789"),
              post_hook(md_gw, shop.key, body, secret=None),
              post_hook(md_gw, shop.key, body, sig=b"not base64 at all \xe9"),  # a Latin-1 byte
              # signed, then altered: the signature covers the raw body
              post_hook(md_gw, shop.key, json.dumps(body).replace("on_update", "on_trash").encode(),
                        sig=sign(HOOK_SECRET, json.dumps(body).encode()))):
        assert_problem(r, 401, "webhook_signature_invalid")
    with pytest.raises(AssertionError):
        events.next("products.changed", timeout=2)
    assert shop.calls("Item") == before  # ERPNext was not asked
    metrics = md_gw.metrics()
    assert f'pos_edge_webhooks_total{{outcome="signature_mismatch",tenant="{shop.key}"}} 3.0' in metrics
    assert f'pos_edge_webhooks_total{{outcome="signature_missing",tenant="{shop.key}"}} 1.0' in metrics
    r = post_hook(md_gw, shop.key, body)  # the right secret: now it is heard
    assert r.status_code == 202, r.text
    assert events.next("products.changed", timeout=10) is not None


def test_tenants_without_webhooks_are_404_alike_and_bad_bodies_are_422(md_gw: Gateway, md_server: StandInServer) -> None:
    plain = Shop(md_gw, md_server)  # no webhook_secret
    shop = Shop(md_gw, md_server, webhook_secret=HOOK_SECRET, **SLOW)
    body = {"doctype": "Item", "name": "X"}
    unknown = post_hook(md_gw, "no-such-tenant", body)
    unset = post_hook(md_gw, plain.key, body)
    for r in (unknown, unset):
        assert_problem(r, 404, "not_found")
    assert unknown.json()["detail"] == unset.json()["detail"]  # tenants are not told apart
    assert_problem(post_hook(md_gw, shop.key, b"{not json"), 422, "validation_failed")
    assert_problem(post_hook(md_gw, shop.key, {"doctype": "Item"}), 422, "validation_failed")
    r = post_hook(md_gw, shop.key, {"doctype": "Sales Invoice", "name": "ACC-SINV-1"})
    assert_problem(r, 422, "validation_failed")
    assert r.json()["errors"][0]["loc"] == ["body", "doctype"]
    r = post_hook(md_gw, shop.key, b"x" * (70 * 1024))
    assert_problem(r, 413, "payload_too_large")
    # a POS Profile no branch uses: accepted, nothing to refresh
    r = post_hook(md_gw, shop.key, {"doctype": "POS Profile", "name": "Some Other Profile", "event": "on_update"})
    assert r.status_code == 202 and r.json()["refresh"] == []


def test_a_webhook_on_one_replica_reaches_a_till_on_another(
        redis_url: str, md_server: StandInServer, opened: list[Events], tmp_path: Path) -> None:  # noqa: F811
    cfg = base_config(tmp_path, md_server.url, store="redis")
    cfg["tenants"] = {}
    first = start_gateway(tmp_path, cfg)
    second = start_gateway(tmp_path, {}, config_path=first.config_path)  # same file, same Redis
    try:
        shop = Shop(first, md_server, webhook_secret=HOOK_SECRET, **SLOW)
        _, _, cursor = shop.all_pages("products")
        deadline = time.monotonic() + 15
        while second.request("GET", "/v1/products", tenant=shop.key, token=shop.token).status_code != 200:
            assert time.monotonic() < deadline, "replica B never served the tenant"  # its own reload
            time.sleep(0.1)
        events = Events(second, shop.key, shop.token)  # the till is on replica B
        opened.append(events)
        assert events.response.status_code == 200
        time.sleep(0.3)
        code = f"RP{uuid.uuid4().hex[:6].upper()}"
        shop.site.insert("Item", item(code))
        assert post_hook(first, shop.key, {"doctype": "Item", "name": code, "event": "after_insert"}).status_code == 202
        event = events.next("products.changed", timeout=10)  # refreshed on A, heard on B
        assert event is not None and int(json.loads(event["data"])["cursor"]) > int(cursor)
        assert first.wait_log("masterdata_refreshed")
        assert not any("masterdata_refreshed" in line and shop.key in line for line in second.log_lines())
    finally:
        second.stop()
        first.stop()


def test_a_burst_of_webhooks_costs_one_refresh_running_and_one_after(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server, webhook_secret=HOOK_SECRET, **SLOW)
    shop.all_pages("products")
    def refreshes() -> int:
        return sum(1 for line in md_gw.log_lines()
                   if '"masterdata_refreshed"' in line and shop.key in line and '"products"' in line)

    deadline = time.monotonic() + 5
    while refreshes() < 1:  # the first fill's line is written (log lines go out in batches)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    before = refreshes()
    md_server.standin.delay = 0.4  # a slow ERPNext: every webhook of the burst lands while the first refresh runs
    try:
        with httpx.Client(timeout=10) as client:
            for i in range(20):  # a bulk import: two webhooks per document
                raw = json.dumps({"doctype": "Item", "name": f"BULK-{i}", "event": "after_insert"}).encode()
                r = client.post(f"http://127.0.0.1:{md_gw.port}/hooks/erpnext/{shop.key}", content=raw,
                                headers={SIGNATURE_HEADER: sign(HOOK_SECRET, raw)})
                assert r.status_code == 202, r.text
        deadline = time.monotonic() + 20
        while refreshes() - before < 2:  # the running refresh, then the one the burst queued
            assert time.monotonic() < deadline, f"{refreshes() - before} refreshes"
            time.sleep(0.1)
        time.sleep(2)  # and no more follow
    finally:
        md_server.standin.delay = 0.0
    assert refreshes() - before == 2, f"{refreshes() - before} refreshes for 20 webhooks"
