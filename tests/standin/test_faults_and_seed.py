"""Faults after commit (the invoice exists, the answer is lost) and the seed helper."""

from __future__ import annotations

import socket

import aiohttp
import httpx
import pytest

from edge.standin import StandIn, StandInSite
from edge.standin.demo import demo_standin
from edge.standin.seed import seed_pos
from tests.standin.conftest import AUTH, SITE, Erp, sale, txn


def stored(standin: StandIn, ref: str) -> list[dict]:
    return [d for d in standin.docs(SITE, "Sales Invoice") if d.get("custom_pos_edge_txn_id") == ref]


def test_drop_cuts_the_connection_mid_body_after_commit(erp: Erp, standin: StandIn) -> None:
    standin.fail_after_commit()
    ref = txn()
    with pytest.raises(httpx.RemoteProtocolError):
        erp.post("Sales Invoice", sale(custom_pos_edge_txn_id=ref))
    (doc,) = stored(standin, ref)
    assert doc["docstatus"] == 1 and doc["status"] == "Paid"
    # the fault was used up: the next creation is answered
    assert erp.post("Sales Invoice", sale(custom_pos_edge_txn_id=txn())).status_code == 200


def test_drop_sends_headers_and_a_short_body(erp: Erp, standin: StandIn, standin_server) -> None:
    standin.fail_after_commit(mode="drop")
    body = httpx.Request("POST", "/", json=sale(custom_pos_edge_txn_id=txn())).content
    request = (f"POST /api/resource/Sales%20Invoice HTTP/1.1\r\nHost: {SITE}\r\n"
               f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection(("127.0.0.1", standin_server.port), timeout=5) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, got = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert 0 < len(got) < length and got.startswith(b'{"data":')


async def test_drop_is_a_payload_error_for_aiohttp(erp: Erp, standin: StandIn, standin_server) -> None:
    standin.fail_after_commit(times=1, mode="drop")
    ref = txn()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with session.post(f"{standin_server.url}/api/resource/Sales%20Invoice", headers=AUTH,
                                    json=sale(custom_pos_edge_txn_id=ref)) as resp:
                assert resp.status == 200
                await resp.read()
    assert len(stored(standin, ref)) == 1


def test_hang_commits_then_outlasts_the_client_timeout(erp: Erp, standin: StandIn) -> None:
    standin.fail_after_commit(mode="hang", hang_seconds=5)
    ref = txn()
    with pytest.raises(httpx.ReadTimeout):
        erp.http.post("/api/resource/Sales Invoice", json=sale(custom_pos_edge_txn_id=ref), timeout=0.5)
    (doc,) = stored(standin, ref)
    # the invoice can be found while the hung answer is still pending
    found = erp.list("Sales Invoice", [["custom_pos_edge_txn_id", "=", ref]], ["name"]).json()["data"]
    assert found == [{"name": doc["name"]}]


def test_hang_answers_a_patient_client(erp: Erp, standin: StandIn) -> None:
    standin.fail_after_commit(mode="hang", hang_seconds=0.3)
    r = erp.post("Sales Invoice", sale(custom_pos_edge_txn_id=txn()))
    assert r.status_code == 200 and r.json()["data"]["status"] == "Draft"


def test_faults_wait_for_a_successful_creation_and_reset_clears_them(erp: Erp, standin: StandIn) -> None:
    standin.fail_after_commit(times=2)
    assert erp.post("Sales Invoice", sale(customer="Nobody", is_pos=0)).status_code == 417  # not committed
    assert erp.list("Sales Invoice", None, ["name"]).status_code == 200  # not a creation
    assert standin._after_commit == ["drop", "drop"]
    standin.reset()
    assert erp.post("Sales Invoice", sale(custom_pos_edge_txn_id=txn())).status_code == 200
    with pytest.raises(ValueError):
        standin.fail_after_commit(mode="explode")


def test_delay_and_fail_next_still_apply_to_invoices(erp: Erp, standin: StandIn) -> None:
    standin.fail_next(status=417, exc_type="ValidationError", message="Stock not available")
    ref = txn()
    r = erp.post("Sales Invoice", sale(custom_pos_edge_txn_id=ref))
    assert r.status_code == 417 and stored(standin, ref) == []


def test_seeding_is_idempotent(standin_server) -> None:
    site = StandInSite("seed.test")
    for _ in range(2):
        seed_pos(site, "Shop Nine Ltd", suffix="S9", pos_profile="Shop Nine", invoice_doctype="POS Invoice",
                 modes_of_payment={"Cash": "Cash - S9"})
    seed_pos(site, "Shop Ten Ltd", suffix="S10", pos_profile="Shop Ten", modes_of_payment={"Cash": "Cash - S10"})
    cash = site.docs["Mode of Payment"]["Cash"]
    assert [(r["company"], r["default_account"]) for r in cash["accounts"]] == [
        ("Shop Nine Ltd", "Cash - S9"), ("Shop Ten Ltd", "Cash - S10")]
    assert list(site.docs["Custom Field"]) == ["POS Invoice-custom_pos_edge_txn_id"]
    assert sorted(site.docs["POS Profile"]) == ["Shop Nine", "Shop Ten"]


def test_demo_sites_carry_the_pos_reference_data() -> None:
    standin = demo_standin()
    shop1, shop2 = standin.sites["shop1.erp.local"], standin.sites["shop2.erp.local"]
    assert list(shop1.users) == ["demo-shop1-key"] and list(shop2.users) == ["demo-shop2-key"]
    assert set(shop1.docs["Item"]) == {"COFFEE", "BREAD", "MILK"} and shop1.docs["Item"]["MILK"]["standard_rate"] == 0.99
    # seed_pos's two, and seed_master_data's two (issue 12)
    assert set(shop1.docs["Customer"]) == {"Walk-in Customer", "Ama Mensah", "Kofi Boateng", "Efua Owusu"}
    assert (list(shop1.docs["Company"]), list(shop1.docs["Warehouse"]), list(shop1.docs["Cost Center"]),
            list(shop1.docs["POS Profile"]), list(shop1.docs["Price List"])) == (
        ["Shop One Ltd"], ["Stores - S1"], ["Main - S1"], ["Shop One Main"], ["Standard Selling"])
    accounts = {m: d["accounts"][0]["default_account"] for m, d in shop1.docs["Mode of Payment"].items()}
    assert accounts == {"Cash": "Cash - S1", "Mobile Money": "Mobile Money - S1", "Credit Card": "Card Clearing - S1"}
    accounts = {m: d["accounts"][0]["default_account"] for m, d in shop2.docs["Mode of Payment"].items()}
    assert accounts == {"Cash": "Cash - S2", "Mobile Money": "Mobile Money - S2"}
    assert list(shop2.docs["POS Profile"]) == ["Shop Two Front"] and list(shop2.docs["Warehouse"]) == ["Stores - S2"]
    assert list(shop1.docs["Custom Field"]) == ["Sales Invoice-custom_pos_edge_txn_id"]
    assert list(shop2.docs["Custom Field"]) == ["POS Invoice-custom_pos_edge_txn_id"]
