"""Master data for tills: /v1/init and the collection deltas, over real sockets, on both
stores, against a stand-in site of their own (so every document is this module's)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from edge.standin import StandInServer
from tests.conftest import Gateway
from tests.routes.md_shop import COMPANY, KEY, SECRET, SITE, Shop, item
from tests.routes.test_erpnext import assert_problem


def test_products_page_then_change_by_delta(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server)
    site = shop.site
    tag = uuid.uuid4().hex[:5].upper()
    codes = [f"P{tag}-{n:02d}" for n in range(25)]
    for code in codes:
        site.insert("Item", item(code))
    site.insert("Item", item(f"P{tag}-OFF", disabled=1))
    site.insert("Item", item(f"P{tag}-TPL", has_variants=1))
    site.insert("Item", item(f"P{tag}-BUY", is_sales_item=0))
    site.insert("Item", item(f"P{tag}-BAR", barcodes=[{"barcode": f"600{tag}1", "uom": "Nos"},
                                                       {"barcode": f"600{tag}2", "uom": "Box"}]))
    codes = sorted([*codes, f"P{tag}-BAR"])
    rows, deleted, cursor = shop.all_pages("products")
    mine = [r for r in rows if r["item_code"].startswith(f"P{tag}")]
    assert sorted(r["item_code"] for r in mine) == codes  # no disabled, template or purchase-only item
    assert deleted == []  # a first load has nothing to delete
    assert len({r["item_code"] for r in rows}) == len(rows)  # each row once across pages
    assert mine[0]["item_name"] == f"Item {codes[0]}" and mine[0]["stock_uom"] == "Nos"
    bar = next(r for r in mine if r["item_code"] == f"P{tag}-BAR")
    assert sorted(bar["barcodes"], key=lambda b: b["barcode"]) == [
        {"barcode": f"600{tag}1", "uom": "Nos"}, {"barcode": f"600{tag}2", "uom": "Box"}]
    assert all(r["barcodes"] == [] for r in mine if r["item_code"] != f"P{tag}-BAR")

    # a rename, a disabling, a deletion (over ERPNext's REST API, as a user would) and a new item
    erp = httpx.Client(base_url=md_server.url, headers={"Host": SITE, "Authorization": f"token {KEY}:{SECRET}"})
    assert erp.put(f"/api/resource/Item/{codes[0]}", json={"item_name": "Renamed"}).status_code == 200
    assert erp.put(f"/api/resource/Item/{codes[1]}", json={"disabled": 1}).status_code == 200
    assert erp.delete(f"/api/resource/Item/{codes[2]}").status_code == 202
    site.insert("Item", item(f"P{tag}-NEW"))
    rows, deleted, cursor2 = shop.until("products", cursor, lambda rows, deleted: len(deleted) >= 2 and any(
        r["item_code"] == f"P{tag}-NEW" for r in rows))
    assert {r["item_code"]: r["item_name"] for r in rows} == {codes[0]: "Renamed", f"P{tag}-NEW": f"Item P{tag}-NEW"}
    assert sorted(deleted) == sorted([codes[1], codes[2]])
    assert int(cursor2) > int(cursor)
    again, gone, cursor3 = shop.all_pages("products", cursor2)
    assert (again, gone, cursor3) == ([], [], cursor2)  # nothing since


def test_rows_sharing_one_modified_are_all_read_across_erpnext_pages(md_gw: Gateway, md_server: StandInServer) -> None:
    """A bulk import stamps many rows alike; ERPNext is read 4 rows a call here."""
    shop = Shop(md_gw, md_server, read_page=4)
    site = shop.site
    tag = uuid.uuid4().hex[:5].upper()
    _, _, cursor = shop.all_pages("products")
    stamp = None
    for n in range(11):
        doc = site.insert("Item", item(f"T{tag}-{n:02d}"))
        stamp = stamp or doc["modified"]
        doc["modified"] = stamp  # one stamp for all, as a bulk import leaves them
    rows, _, _ = shop.until("products", cursor, lambda rows, deleted: len(
        [r for r in rows if r["item_code"].startswith(f"T{tag}")]) >= 11)
    assert sorted(r["item_code"] for r in rows if r["item_code"].startswith(f"T{tag}")) == [
        f"T{tag}-{n:02d}" for n in range(11)]


def test_etag_gives_304_without_asking_erpnext(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server, freshness=600)
    first = shop.get("/v1/products?limit=50")
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "private, no-cache"
    before = len(md_server.standin.requests)
    again = shop.get("/v1/products?limit=50", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    assert len(md_server.standin.requests) == before  # not one call to ERPNext
    other = shop.get("/v1/products?limit=49", headers={"If-None-Match": etag})
    assert other.status_code == 200  # another page is another answer


def test_concurrent_inits_cost_erpnext_one_read_per_collection(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server, freshness=600)
    tokens = [md_gw.token(f"till-{uuid.uuid4().hex[:8]}", shop.key) for _ in range(40)]
    before = {d: shop.calls(d) for d in ("Item", "Item Price", "Customer", "Pricing Rule", "POS Profile")}

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{md_gw.port}", timeout=30) as c:
            return await asyncio.gather(*(c.get("/v1/init", headers={"Host": f"{shop.key}.tillking.test",
                                                                      "Authorization": f"Bearer {t}"})
                                          for t in tokens))

    answers = asyncio.run(burst())
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200][:2]
    bodies = [a.json() for a in answers]
    assert all(b == bodies[0] for b in bodies)
    after = {d: shop.calls(d) - before[d] for d in before}
    # a first fill reads: the stamp's tie (when it has one), the next page, the empty page, and
    # Deleted Document the same way; at most one such round per collection for 40 tills
    assert all(n <= 6 for n in after.values()), after
    init = bodies[0]
    assert init["settings"]["pos_profile"] == "MD Main" and init["branch"]["branch_id"] == "main"
    assert {"method": "cash", "mode_of_payment": "Cash"} in init["payment_methods"]
    for name in ("products", "prices", "customers", "campaigns"):
        assert {"items", "cursor", "next", "deleted", "stale"} <= set(init[name]), name


def test_stale_data_is_served_while_erpnext_fails(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server)
    assert shop.get("/v1/customers").status_code == 200  # filled
    time.sleep(1.2)  # due for a refresh
    md_server.standin.fail_next(times=50, status=502)
    try:
        deadline = time.monotonic() + 10
        while True:
            r = shop.get("/v1/customers")
            assert r.status_code == 200, r.text
            if r.json()["stale"]:
                break
            assert time.monotonic() < deadline, r.json()
            time.sleep(0.2)
        assert r.headers["pos-edge-stale"] == "true"
        assert any(c["customer"] == "Walk-in Customer" for c in r.json()["items"])
    finally:
        md_server.standin.reset()  # the failures not used up


def test_branch_rules(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server)
    assert_problem(shop.get("/v1/products?branch_id=other"), 403, "branch_not_allowed")
    assert_problem(shop.get("/v1/products?since=x1"), 422, "validation_failed")
    assert_problem(shop.get("/v1/products?limit=0"), 422, "validation_failed")
    assert_problem(md_gw.request("GET", "/v1/products", tenant=shop.key, token=None), 401, "unauthorized")
    loose = md_gw.register(f"loose-{uuid.uuid4().hex[:6]}", shop.key, branch_id=None)
    assert loose.status_code == 201, loose.text
    token = loose.json()["token"]
    assert_problem(md_gw.request("GET", "/v1/products", tenant=shop.key, token=token), 422, "validation_failed")
    assert md_gw.request("GET", "/v1/products?branch_id=main", tenant=shop.key, token=token).status_code == 200


def test_prices_customers_and_campaigns_hold_what_belongs(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server, customers={"groups": ["Loyal"]}, customer_fields=["mobile_no"])
    site = shop.site
    tag = uuid.uuid4().hex[:5].upper()
    site.insert("Item Price", {"name": f"ip-{tag}-1", "item_code": "COFFEE", "price_list": "Standard Selling",
                               "price_list_rate": 2.75, "currency": "GHS", "uom": "Nos", "selling": 1, "buying": 0})
    site.insert("Item Price", {"name": f"ip-{tag}-2", "item_code": "COFFEE", "price_list": "Wholesale",
                               "price_list_rate": 2.10, "currency": "GHS", "uom": "Nos", "selling": 1, "buying": 0})
    site.insert("Customer", {"name": f"Loyal {tag}", "customer_name": f"Loyal {tag}", "customer_group": "Loyal",
                             "territory": "All Territories", "disabled": 0, "mobile_no": "+233200000001"})
    site.insert("Customer", {"name": f"Other {tag}", "customer_name": f"Other {tag}", "customer_group": "Retail",
                             "territory": "All Territories", "disabled": 0})
    site.insert("Customer", {"name": f"Gone {tag}", "customer_name": f"Gone {tag}", "customer_group": "Loyal",
                             "territory": "All Territories", "disabled": 1})
    rule = {"title": f"Ten off {tag}", "selling": 1, "buying": 0, "disable": 0, "company": COMPANY, "apply_on": "Item Code",
            "rate_or_discount": "Discount Percentage", "discount_percentage": 10, "priority": 1,
            "items": [{"item_code": "COFFEE"}], "item_groups": []}
    site.insert("Pricing Rule", {"name": f"PRLE-{tag}-1", **rule})
    site.insert("Pricing Rule", {"name": f"PRLE-{tag}-2", **rule, "disable": 1})
    site.insert("Pricing Rule", {"name": f"PRLE-{tag}-3", **rule, "company": "Someone Else Ltd"})
    site.insert("Pricing Rule", {"name": f"PRLE-{tag}-4", **rule, "selling": 0, "buying": 1})

    prices = {p["item_price"]: p for p in shop.all_pages("prices")[0]}
    assert prices[f"ip-{tag}-1"]["price_list_rate"] == 2.75 and prices[f"ip-{tag}-1"]["item_code"] == "COFFEE"
    assert f"ip-{tag}-2" not in prices  # another price list
    assert {p["price_list"] for p in prices.values()} == {"Standard Selling"}

    customers = {c["customer"]: c for c in shop.all_pages("customers")[0]}
    assert customers[f"Loyal {tag}"]["mobile_no"] == "+233200000001"  # an extra field the tenant asked for
    assert f"Other {tag}" not in customers and f"Gone {tag}" not in customers
    assert {c["customer_group"] for c in customers.values()} == {"Loyal"}

    campaigns = {c["pricing_rule"]: c for c in shop.all_pages("campaigns")[0]}
    assert sorted(n for n in campaigns if tag in n) == [f"PRLE-{tag}-1"]
    mine = campaigns[f"PRLE-{tag}-1"]
    assert (mine["discount_percentage"], mine["item_codes"], mine["apply_on"]) == (10, [{"item_code": "COFFEE"}], "Item Code")

    init = shop.get("/v1/init").json()
    assert init["settings"]["selling_price_list"] == "Standard Selling" and init["settings"]["company"] == COMPANY
    assert {(m["method"], m["mode_of_payment"]) for m in init["settings"]["payment_methods"]} >= {("cash", "Cash")}
    assert init["tenant"] == {"key": shop.key, "name": "MD shop", "company": COMPANY}
