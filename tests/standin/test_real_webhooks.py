"""The stand-in delivers Webhooks as the real Frappe 15.101 / ERPNext 15.99 site did
(tests/fixtures/real_erpnext/masterdata/deliveries.json, recorded with record_webhooks.py
there): the same Webhooks fire for the same writes, with the same body, a signature that is
the body's HMAC with the Webhook's secret, and the headers the Webhook sets. Received over a
real socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from edge.erpnext.webhooks import webhook_doc
from edge.masterdata.webhooks import DOCEVENTS, signed
from edge.standin import StandIn, StandInServer
from edge.standin.seed_real import real_like_site
from tests.standin.test_real_masterdata import MASTERDATA

SECRET = "whr-recording-secret-0123456789"  # record_webhooks.py's
HOST, KEY, API_SECRET = "pos.localhost", "real-key", "real-secret"
DOCTYPES = ("Item", "Item Price", "Pricing Rule", "Customer", "POS Profile")


class Receiver:
    """What a gateway would see: every request on a loopback port, answered 202."""

    def __init__(self) -> None:
        self.arrived: list[dict[str, Any]] = []
        arrived = self.arrived

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                arrived.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": body})
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.arrived) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # and nothing more
        return list(self.arrived)


@pytest.fixture
def standin() -> Iterator[tuple[httpx.Client, Receiver, StandIn]]:
    site = real_like_site(HOST, KEY, API_SECRET)
    standin = StandIn([site])
    server = StandInServer(standin)
    server.start()
    receiver = Receiver()
    http = httpx.Client(base_url=server.url, headers={"Host": HOST, "Authorization": f"token {KEY}:{API_SECRET}"})
    yield http, receiver, standin
    http.close()
    server.stop()
    receiver.server.shutdown()


def test_writes_fire_the_recorded_webhooks_signed_as_the_real_site_signs(
        standin: tuple[httpx.Client, Receiver, StandIn]) -> None:
    http, receiver, _ = standin
    url = receiver.url + "/hooks/erpnext/whr"
    for doctype in DOCTYPES:
        for event in DOCEVENTS:
            r = http.post("/api/resource/Webhook", json={"name": f"WHR {doctype} {event}",
                                                         **webhook_doc(url, SECRET, doctype, event)})
            assert r.status_code == 200, r.text
    names: dict[str, str] = {}
    failures = []
    for write in json.loads((MASTERDATA / "deliveries.json").read_text()):
        path = write["request"]["path"]
        for recorded, ours in names.items():
            path = path.replace(recorded, ours)
        before = len(receiver.arrived)
        r = http.request(write["request"]["method"], path, json=write["request"]["body"])
        assert r.status_code == write["status"], (write["id"], r.text)
        if write["name"]:
            names[write["name"]] = r.json()["data"]["name"]
        got = receiver.wait(before + len(write["deliveries"]))[before:]
        if len(got) != len(write["deliveries"]):
            failures.append(f"{write['id']}: {len(got)} deliveries, recorded {len(write['deliveries'])}")
            continue
        expected = sorted(write["deliveries"], key=lambda d: json.loads(d["body"])["event"])
        for rec, new in zip(expected, sorted(got, key=lambda d: json.loads(d["body"])["event"]), strict=True):
            body, recorded_body = json.loads(new["body"]), json.loads(rec["body"])
            if set(body) != set(recorded_body) or any(body[k] != recorded_body[k] for k in ("doctype", "event")):
                failures.append(f"{write['id']}: body {body} is not like recorded {recorded_body}")
            if body["name"] != names.get(recorded_body["name"], recorded_body["name"]):
                failures.append(f"{write['id']}: names {body['name']}, recorded {recorded_body['name']}")
            if not signed(SECRET, new["body"], new["headers"].get("x-frappe-webhook-signature")) or not rec["signature_ok"]:
                failures.append(f"{write['id']}: the signature is not the body's HMAC")
            if new["path"] != rec["path"] or new["headers"].get("content-type") != rec["headers"].get("content-type"):
                failures.append(f"{write['id']}: {new['path']} {new['headers'].get('content-type')} != recorded")
            # requests' json.dumps(data, default=str): ", " and ": " separators, as recorded
            if new["body"].decode() != json.dumps(body):
                failures.append(f"{write['id']}: body text {new['body']!r} is not json.dumps of its data")
    assert not failures, "\n".join(failures)


def test_a_webhook_without_a_content_type_row_sends_none_and_a_failed_delivery_is_tried_three_times(
        standin: tuple[httpx.Client, Receiver, StandIn]) -> None:
    http, receiver, standin_ = standin
    standin_.webhooks.retry_sleep = False
    doc = webhook_doc(receiver.url + "/x", SECRET, "Customer", "after_insert")
    doc["webhook_headers"] = []
    assert http.post("/api/resource/Webhook", json={"name": "bare", **doc}).status_code == 200
    dead = webhook_doc("http://127.0.0.1:9/nothing-listens", SECRET, "Customer", "after_insert")
    assert http.post("/api/resource/Webhook", json={"name": "dead", **dead}).status_code == 200
    r = http.post("/api/resource/Customer", json={"customer_name": "Hook Test", "customer_group": "All Customer Groups",
                                                  "territory": "All Territories"})
    assert r.status_code == 200, r.text
    got = receiver.wait(1)
    assert len(got) == 1 and "content-type" not in got[0]["headers"]
    deadline = time.monotonic() + 10
    while len([d for d in standin_.webhooks.log if d.webhook == "dead"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    tries = [d for d in standin_.webhooks.log if d.webhook == "dead"]
    assert len(tries) == 3 and all(d.status is None for d in tries)


def test_the_secret_reads_back_as_asterisks_and_a_put_without_it_keeps_it(
        standin: tuple[httpx.Client, Receiver, StandIn]) -> None:
    http, receiver, _ = standin
    doc = webhook_doc(receiver.url + "/y", SECRET, "Item", "on_update")
    assert http.post("/api/resource/Webhook", json={"name": "keep", **doc}).status_code == 200
    read = http.get("/api/resource/Webhook/keep").json()["data"]
    assert read["webhook_secret"] == "*" * len(SECRET)
    assert http.put("/api/resource/Webhook/keep", json={"webhook_secret": read["webhook_secret"], "timeout": 3}).status_code == 200
    assert http.put("/api/resource/Webhook/keep", json={}).status_code == 200  # nothing sent: the secret stays
    r = http.post("/api/resource/Item", json={"item_code": "HOOK-1", "item_group": "Products", "stock_uom": "Nos"})
    assert r.status_code == 200, r.text
    got = receiver.wait(1)
    assert len(got) == 1 and signed(SECRET, got[0]["body"], got[0]["headers"]["x-frappe-webhook-signature"])
