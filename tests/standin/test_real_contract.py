"""The stand-in replays exchanges recorded on a real Frappe 15.101 / ERPNext 15.99 site
(tests/fixtures/real_erpnext/, recorded with ../shared/real-erpnext) and must answer
as the real site did, on the points pos-edge depends on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.standin.conftest import AUTH, SITE, Erp, txn

FIXTURES = Path(__file__).parents[1] / "fixtures" / "real_erpnext"
CMD = json.loads((FIXTURES / "form_dict_cmd.json").read_text())["exchanges"]
HEADERS = json.loads((FIXTURES / "headers_and_po_no.json").read_text())


@pytest.mark.parametrize("exchange", CMD, ids=[e["id"] for e in CMD])
def test_cmd_runs_exactly_where_frappe_runs_it(standin_server, standin, exchange: dict[str, Any]) -> None:
    req = exchange["request"]
    headers = [(k, v) for k, v in req["headers"]] + [("Host", SITE)]
    if req["authenticated"]:
        headers.append(("Authorization", AUTH["Authorization"]))
    path = req["path"].replace("TODO-NAME", "ANY")
    r = httpx.request(req["method"], standin_server.url + path, headers=headers, content=req["body"].encode())
    assert bool(standin.cmd_calls) == exchange["ran_cmd"], (standin.cmd_calls, r.text)
    if exchange["ran_cmd"]:
        assert r.status_code == exchange["response"]["status"], r.text
        if exchange["response"]["message"] == "pong":
            assert r.json() == {"message": "pong"}
        if exchange["response"]["exc_type"]:
            assert r.json()["exc_type"] == exchange["response"]["exc_type"]


def test_the_site_header_beats_host(standin_server, standin) -> None:
    for ex in HEADERS["site_by_header"]:
        headers = [(k, v) for k, v in ex["request"]["headers"]]
        # the recorded site is pos.localhost; the stand-in's is shop1.erp.test
        headers = [(k, v.replace("pos.localhost", SITE)) for k, v in headers] + [("Authorization", AUTH["Authorization"])]
        r = httpx.get(standin_server.url + ex["request"]["path"], headers=headers)
        assert r.status_code == ex["response"]["status"], (ex["id"], r.text)


def test_po_no_is_not_unique(standin_server, erp: Erp) -> None:
    assert [ex["status"] for ex in HEADERS["po_no_not_unique"][:2]] == [200, 200]
    po = txn()
    first, second = erp.create(po_no=po), erp.create(po_no=po)
    assert first["name"] != second["name"]
    rows = erp.list("Sales Invoice", filters=[["po_no", "=", po]], fields=["name"]).json()["data"]
    assert sorted(r["name"] for r in rows) == sorted([first["name"], second["name"]])



def test_the_reference_fields_uniqueness_reads_as_on_a_real_site(standin_server, erp: Erp) -> None:
    from edge.standin.custom_fields import ensure_custom_field

    ensure_custom_field(standin_server.standin.sites[SITE], "Sales Invoice", "custom_pos_edge_txn_id", unique=True)
    for ex in HEADERS["custom_field_unique"]:
        r = erp.http.get(ex["request"]["path"], params=ex["request"]["params"])
        assert (r.status_code, r.json()) == (ex["status"], ex["body"]), ex["id"]
