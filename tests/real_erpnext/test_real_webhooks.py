"""ERPNext's own Webhooks, made by `pos-edge erpnext setup` on the REAL site, push a change to
a till's event stream at once (issue 12's push). Frappe sends Webhooks from a background job:
the site needs an RQ worker (`cd $ERP/sites && ../env/bin/python -m frappe.utils.bench_helper
frappe worker --queue default`), which a bench runs anyway. Without one this test fails: no
event within the wait, which is what a site without a worker would do to the tills too."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.real_erpnext.conftest import MAIN, MISSING, SKIP_REASON, Erp, log_of, new_id, real_tenant

if MISSING:
    pytest.skip(SKIP_REASON, allow_module_level=True)

from tests.conftest import POS_EDGE, Gateway, base_config, start_gateway
from tests.routes.test_events import Events

SECRET = "real-webhook-secret-" + uuid.uuid4().hex[:12]
TENANT = "hooked"


@pytest.fixture
def hooked(tmp_path: Path, erp: Erp) -> Iterator[Gateway]:
    cfg = base_config(tmp_path, erp.url)
    cfg["tenants"] = {TENANT: real_tenant("Sales Invoice", MAIN, erp, erpnext={"webhook_secret": SECRET},
                                          masterdata={"freshness": 3600})}  # no polling within the test
    gateway = start_gateway(tmp_path, cfg)
    yield gateway
    gateway.stop()
    for row in erp.rows("Webhook", [["name", "like", f"pos-edge {TENANT} %"]], ["name"]):
        erp.call("DELETE", f"/api/resource/Webhook/{row['name']}")  # no later write posts to a dead port


def test_a_change_on_the_real_site_reaches_a_till_through_its_webhook(hooked: Gateway, erp: Erp, tmp_path: Path) -> None:
    cfg = yaml.safe_load(hooked.config_path.read_text())
    cfg["gateway"]["public_url"] = f"http://127.0.0.1:{hooked.port}"
    path = tmp_path / "setup.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    setup = subprocess.run([POS_EDGE, "erpnext", "setup", "--tenant", TENANT, "--config", str(path)],
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert sum(" Webhook " in line for line in setup.stdout.splitlines()) == 15, setup.stdout
    made = erp.rows("Webhook", [["name", "like", f"pos-edge {TENANT} %"]], ["name", "request_url", "enable_security"])
    assert len(made) == 15 and all(w["enable_security"] == 1 for w in made)

    token = hooked.token(new_id("till"), TENANT)

    def pages(path: str) -> dict[str, list[str] | str]:
        """Every page from `path` (a site may hold thousands of items): codes, deletions, the last cursor."""
        codes: list[str] = []
        deleted: list[str] = []
        while True:
            r = hooked.request("GET", path, tenant=TENANT, token=token)
            assert r.status_code == 200, f"{r.text}\n{log_of(hooked)}"
            body = r.json()
            codes += [p["item_code"] for p in body["items"]]
            deleted += body["deleted"]
            if body["next"] is None:
                return {"codes": codes, "deleted": deleted, "cursor": body["cursor"]}
            path = body["next"]

    cursor = pages("/v1/products")["cursor"]
    events = Events(hooked, TENANT, token)
    try:
        time.sleep(0.5)
        code = new_id("WH").upper()
        t0 = time.monotonic()
        erp.insert("Item", {"item_code": code, "item_name": f"Webhook {code}", "item_group": "Products",
                            "stock_uom": "Nos", "is_stock_item": 0})
        event = events.next("products.changed", timeout=30)
        took = time.monotonic() - t0
        assert event is not None
        print(f"an Item inserted on the real site reached the till's stream in {took:.2f} s")
        assert code in pages(f"/v1/products?since={cursor}")["codes"]
        assert any('"webhook_received"' in line for line in hooked.wait_log("webhook_received"))
        erp.call("PUT", f"/api/resource/Item/{code}", json={"disabled": 1})
        event = events.next("products.changed", timeout=30)
        assert event is not None
        assert code in pages(f"/v1/products?since={cursor}")["deleted"]
    finally:
        events.close()
