"""The stand-in replays exchanges recorded on a real Frappe 15.101 / ERPNext 15.99 site
(tests/fixtures/real_erpnext/, recorded with ../shared/real-erpnext) and must answer
as the real site did, on the points pos-edge depends on. The POS facts
(fixtures/real_erpnext/pos) are replayed on a real-like stand-in site (replay.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.standin.conftest import AUTH, SITE, Erp, txn
from tests.standin.replay import TOPICS, Exchange, Replay, chronology

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


# --- POS facts (tests/fixtures/real_erpnext/pos, summary.md) --------------------------------

# List answers holding Sales Invoices the real site made before the recording
# (ACC-SINV-2026-00001..00011, Shop One Main): a fresh stand-in site cannot have
# them, so these answers' values are not compared; their shape, size and order are.
PRE_RECORDING = {
    "lst-a": "first five invoices, one row per payment",
    "lst-b": "the same with payments.x",
    "lst-f": "no order_by: ascending names, one row per payment",
    "lst-f2": "no order_by, no join: ascending names",
    "lst-d3": "paging without a join, page 1",
    "lst-d4": "page 2",
    "lst-d5": "page 2 with limit= for limit_page_length",
    "lst-e1": "Cash total includes the earlier sales (only Mobile Money, all recorded, is compared)",
}


def _check_pre_recording(replay: Replay, ex: Exchange, body: dict[str, Any]) -> None:
    where = f"{ex.topic}/{ex.id}"
    recorded, got = ex.data["response"]["data"], body.get("data") or []
    if len(got) != len(recorded) or [sorted(r) for r in got] != [sorted(r) for r in recorded]:
        replay.fail(where, f"rows {got} do not have the recorded shape {recorded}")
        return
    names = [r["name"] for r in got if "name" in r]
    if names != sorted(names):
        replay.fail(where, f"rows not in ascending name order: {names}")
    if ex.id in ("lst-d3", "lst-d4", "lst-d5"):
        path = re.sub(r"&limit(_start|_page_length)?=\d+", "", ex.data["request"]["path"])
        everything = replay.http.get(replay.substitute(path) + "&limit_page_length=0").json()["data"]
        page = everything[0:2] if ex.id == "lst-d3" else everything[2:4]
        if got != page:
            replay.fail(where, f"page {got} is not {page} of the whole list")
    if ex.id == "lst-e1":
        replay.compare_value(recorded[1], got[1], f"{where} Mobile Money")
        if got[0].get("mode_of_payment") != "Cash":
            replay.fail(where, f"first group {got[0]} is not Cash")


def _check_method_names(replay: Replay, ex: Exchange, body: dict[str, Any]) -> None:
    """close-e4 kept only the invoices' names of get_pos_invoices' answer."""
    got = [d.get("name") for d in body.get("message") or []]
    replay.compare_value(ex.data["response"]["message_names"], got, f"{ex.topic}/{ex.id} message names")


@pytest.mark.parametrize("topic", TOPICS)
def test_the_stand_in_answers_pos_calls_as_the_real_site(topic: str) -> None:
    """Replay, on a fresh real-like site, every exchange recorded up to the topic's last one, in
    recorded order (a topic's exchanges use what earlier ones made: the closing entries close the
    POS Invoices of pos_invoice.json); the topic's own are compared in full, the others only by
    status, as they are set-up here (and compared in their own topic)."""
    exchanges = chronology()
    last = max(i for i, ex in enumerate(exchanges) if ex.topic == topic)
    replay = Replay().start()
    try:
        for ex in exchanges[: last + 1]:
            r = replay.send(ex)
            if ex.topic != topic:
                replay.set_up(ex, r)
                continue
            special = ex.id in PRE_RECORDING or "message_names" in ex.data["response"]
            replay.compare(ex, r, fields=not special)
            if r.status_code == ex.data["status"] and ex.id in PRE_RECORDING:
                _check_pre_recording(replay, ex, r.json())
            elif r.status_code == ex.data["status"] and special:
                _check_method_names(replay, ex, r.json())
            elif not special and replay.unmapped(ex.data["response"]):
                replay.fail(ex.id, f"recorded names {replay.unmapped(ex.data['response'])} were never made here")
    finally:
        replay.stop()
    assert not replay.failures, "\n".join(replay.failures)
