"""Master data on the stand-in over real sockets (issue 12): paging and order on `modified`, ties
made with masters.set_modified, child rows read in bulk, deletes and their Deleted Documents.
The facts come from tests/fixtures/real_erpnext/masterdata (summary.md there)."""

from __future__ import annotations

import json
from typing import Any

from edge.standin.masters import set_modified
from tests.standin.conftest import Erp, at_local

ASC = "modified asc, name asc"


def _items(real: Erp, n: int, prefix: str = "TIE") -> list[str]:
    codes = []
    for i in range(n):
        at_local(real.site, f"2026-11-28 12:00:{i:02d}.{i:06d}")
        code = f"{prefix}-{i:02d}"
        r = real.post("Item", {"item_code": code, "item_name": f"Item {i}", "item_group": "Products", "stock_uom": "Nos",
                               "barcodes": [{"barcode": f"{code}-A"}, {"barcode": f"{code}-B"}] if i % 2 else []})
        assert r.status_code == 200, r.text
        codes.append(code)
    return codes


def _names(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [row["name"] for row in r.json()["data"]]


def test_default_page_size_is_20_and_limit_0_is_all(real: Erp) -> None:
    codes = _items(real, 23)
    assert _names(real.list("Item", filters=[["name", "like", "TIE-%"]], order_by=ASC)) == codes[:20]
    assert _names(real.list("Item", filters=[["name", "like", "TIE-%"]], order_by=ASC, limit_page_length=0)) == codes


def test_ties_on_modified_page_by_name_without_loss(real: Erp) -> None:
    codes = _items(real, 9)
    stamp = set_modified(real.site, "Item", codes[2:7], "2026-11-28 12:30:00.123456")
    rows = real.list("Item", fields=["name", "modified"], filters=[["name", "like", "TIE-%"]], order_by=ASC,
                     limit_page_length=0).json()["data"]
    tied = [r["name"] for r in rows if r["modified"] == stamp]
    assert tied == sorted(codes[2:7]) and rows[-1]["name"] in tied
    # a client paging with limit 2 over the tie sees every row once
    seen: list[str] = []
    for start in range(0, 9, 2):
        seen += _names(real.list("Item", filters=[["name", "like", "TIE-%"]], order_by=ASC, limit_start=start,
                                 limit_page_length=2))
    assert seen == [r["name"] for r in rows] and len(set(seen)) == 9
    # ">=" on the full-precision text keeps the whole tie; ">" drops it
    ge = _names(real.list("Item", filters=[["modified", ">=", stamp], ["name", "like", "TIE-%"]], order_by=ASC))
    gt = _names(real.list("Item", filters=[["modified", ">", stamp], ["name", "like", "TIE-%"]], order_by=ASC))
    assert ge == sorted(codes[2:7]) and gt == []
    # the child rows carry the parent's modified
    doc = real.get("Item", codes[3]).json()["data"]
    assert {b["modified"] for b in doc["barcodes"]} == {stamp}


def test_default_order_is_the_databases(real: Erp) -> None:
    codes = _items(real, 4, prefix="ORD")
    set_modified(real.site, "Item", [codes[0]], "2026-11-28 13:00:00.000000")  # the first name, the last stamp
    flt = [["name", "like", "ORD-%"]]
    assert _names(real.list("Item", filters=flt)) == codes  # primary key: names
    by_index = _names(real.list("Item", filters=[["modified", ">=", "2026-11-28 00:00:00"], *flt]))
    assert by_index == [*codes[1:], codes[0]]  # read through the index on modified


def test_barcodes_in_bulk(real: Erp) -> None:
    codes = _items(real, 4, prefix="BC")
    r = real.list("Item Barcode", fields=["parent", "barcode", "idx"], filters=[["parent", "in", codes]], parent="Item",
                  order_by="parent asc, idx asc")
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"parent": c, "barcode": f"{c}-{s}", "idx": i} for c in codes if int(c[-1]) % 2
                                for i, s in ((1, "A"), (2, "B"))]
    assert real.list("Item Barcode", fields=["parent"]).status_code == 403
    joined = real.list("Item", fields=["name", "barcodes.barcode"], filters=[["name", "in", codes]],
                       order_by="`tabItem`.modified asc, `tabItem Barcode`.idx asc").json()["data"]
    assert [(j["name"], j["barcode"]) for j in joined][:3] == [("BC-00", None), ("BC-01", "BC-01-A"), ("BC-01", "BC-01-B")]
    ambiguous = real.list("Item", fields=["name", "barcodes.barcode"], filters=[["name", "in", codes]], order_by=ASC)
    assert ambiguous.status_code == 500 and "ambiguous" in ambiguous.json()["exception"]


def test_delete_leaves_a_deleted_document(real: Erp) -> None:
    at_local(real.site, "2026-11-28 14:00:00")
    assert real.post("Item", {"item_code": "GONE-1", "item_group": "Products", "stock_uom": "Nos"}).status_code == 200
    price = real.post("Item Price", {"item_code": "GONE-1", "price_list": "Standard Selling", "price_list_rate": 10})
    assert price.status_code == 200 and price.json()["data"]["selling"] == 1
    rule = real.post("Pricing Rule", {"title": "Gone", "selling": 1, "items": [{"item_code": "GONE-1"}]}).json()["data"]
    linked = real.http.delete("/api/resource/Item/GONE-1")
    assert linked.status_code == 417 and linked.json()["exc_type"] == "LinkExistsError"
    at_local(real.site, "2026-11-28 14:05:00")
    assert real.http.delete(f"/api/resource/Pricing Rule/{rule['name']}").status_code == 202
    at_local(real.site, "2026-11-28 14:06:00")
    r = real.http.delete("/api/resource/Item/GONE-1")
    assert (r.status_code, r.json()) == (202, {"data": "ok"})
    assert real.http.delete("/api/resource/Item/GONE-1").json() == {"exc_type": "DoesNotExistError"}
    assert real.site.docs["Item Price"].get(price.json()["data"]["name"]) is None  # went with its item
    rows = real.list("Deleted Document", fields=["deleted_doctype", "deleted_name", "creation", "data"],
                     filters=[["creation", ">=", "2026-11-28 14:00:00"]], order_by="creation asc, name asc").json()["data"]
    assert [(r["deleted_doctype"], r["deleted_name"], r["creation"]) for r in rows] == [
        ("Pricing Rule", rule["name"], "2026-11-28 14:05:00"), ("Item", "GONE-1", "2026-11-28 14:06:00")]
    data = json.loads(rows[1]["data"])
    assert data["name"] == "GONE-1" and data["doctype"] == "Item" and "brand" in data and data["brand"] is None
    assert json.loads(rows[0]["data"])["items"][0]["item_code"] == "GONE-1"
    # the rule was the last of its series: the next one takes its name again
    again = real.post("Pricing Rule", {"title": "Again", "selling": 1, "items": [{"item_code": "POSHO-5KG"}]})
    assert again.json()["data"]["name"] == rule["name"]


def test_disabling_moves_modified(real: Erp) -> None:
    _items(real, 1, prefix="DIS")
    before = real.get("Item", "DIS-00").json()["data"]["modified"]
    at_local(real.site, "2026-11-28 15:00:00.5")
    after = real.put("Item", "DIS-00", {"disabled": 1}).json()["data"]
    assert after["disabled"] == 1 and after["modified"] == "2026-11-28 15:00:00.500000" != before


def test_the_demo_sites_serve_master_data() -> None:
    from edge.standin import StandInServer
    from edge.standin.demo import demo_standin

    standin = demo_standin()
    site = standin.sites["shop1.erp.local"]
    key, (secret, _) = next(iter(site.users.items()))
    server = StandInServer(standin)
    server.start()
    erp = Erp(server.url, {"Authorization": f"token {key}:{secret}", "Host": "shop1.erp.local"})
    try:
        prices = erp.list("Item Price", fields=["item_code", "price_list", "price_list_rate", "selling"],
                          order_by="item_code asc").json()["data"]
        assert prices == [{"item_code": "BREAD", "price_list": "Standard Selling", "price_list_rate": 1.2, "selling": 1},
                          {"item_code": "COFFEE", "price_list": "Standard Selling", "price_list_rate": 2.5, "selling": 1},
                          {"item_code": "MILK", "price_list": "Standard Selling", "price_list_rate": 0.99, "selling": 1}]
        customers = _names(erp.list("Customer", order_by="name asc", limit_page_length=0))
        assert {"Kofi Boateng", "Efua Owusu", "Walk-in Customer"} <= set(customers)
        rules = erp.list("Pricing Rule", fields=["name", "title", "selling", "disable", "items.item_code"]).json()["data"]
        assert rules == [{"name": "PRLE-0001", "title": "10% off COFFEE", "selling": 1, "disable": 0, "item_code": "COFFEE"}]
    finally:
        erp.http.close()
        server.stop()
