"""`GET /v1/events`: Server-Sent Events to tills, over real sockets, on both stores."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml

from edge.standin import StandInServer
from tests.conftest import Gateway, base_config, start_gateway
from tests.routes.md_shop import Shop, item
from tests.routes.test_erpnext import assert_problem


class Events:
    """An EventSource, as a till runs one: a thread reading the stream into a queue."""

    def __init__(self, gw: Gateway, tenant: str, token: str, last_event_id: str | None = None) -> None:
        self.queue: queue.Queue[dict[str, str] | None] = queue.Queue()
        headers = {"Host": f"{tenant}.tillking.test", "Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{gw.port}", timeout=httpx.Timeout(30, read=60))
        self.response = self.client.send(self.client.build_request("GET", "/v1/events", headers=headers), stream=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        event: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if line == "":
                    if "event" in event:
                        self.queue.put(event)
                    event = {}
                elif not line.startswith(":") and ":" in line:
                    field, _, value = line.partition(":")
                    event[field] = value.lstrip(" ")
        except httpx.HTTPError:
            pass
        self.queue.put(None)  # the stream ended

    def next(self, kind: str | None = None, timeout: float = 20) -> dict[str, str] | None:
        """The next event (of `kind`, skipping others); None once the stream has ended."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {kind or 'event'} within {timeout} s"
            try:
                event = self.queue.get(timeout=left)
            except queue.Empty:
                continue
            if event is None or kind is None or event["event"] == kind:
                return event

    def close(self) -> None:
        self.response.close()
        self.client.close()


@pytest.fixture
def opened() -> Iterator[list[Events]]:
    streams: list[Events] = []
    yield streams
    for s in streams:
        s.close()


def test_a_change_in_erpnext_reaches_a_connected_till(md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:
    shop = Shop(md_gw, md_server)
    _, _, cursor = shop.all_pages("products")
    events = Events(md_gw, shop.key, shop.token)
    opened.append(events)
    assert events.response.status_code == 200
    assert events.response.headers["content-type"].startswith("text/event-stream")
    code = f"EV{uuid.uuid4().hex[:6].upper()}"
    shop.site.insert("Item", item(code))  # no till asks: the open stream keeps the tenant fresh
    event = events.next("products.changed")
    assert event is not None and event["id"]
    data = json.loads(event["data"])
    assert data["collection"] == "products" and int(data["cursor"]) > int(cursor)
    rows, _, _ = shop.all_pages("products", cursor)
    assert code in {r["item_code"] for r in rows}


def test_prices_events_are_for_the_branch_price_list_only(md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:
    shop = Shop(md_gw, md_server)
    shop.all_pages("prices")
    events = Events(md_gw, shop.key, shop.token)
    opened.append(events)
    tag = uuid.uuid4().hex[:6]
    shop.site.insert("Item Price", {"name": f"ev-{tag}-w", "item_code": "COFFEE", "price_list": "Wholesale",
                                    "price_list_rate": 1.5, "selling": 1})
    time.sleep(2.5)  # refreshed meanwhile: the other list's price is never the branch's event
    shop.site.insert("Item Price", {"name": f"ev-{tag}-s", "item_code": "COFFEE", "price_list": "Standard Selling",
                                    "price_list_rate": 3.1, "selling": 1})
    event = events.next("prices.changed")
    assert event is not None
    assert json.loads(event["data"])["scope"] == "Standard Selling"


def test_a_blocked_device_hears_it_and_its_stream_ends(md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:
    shop = Shop(md_gw, md_server)
    device = f"till-{uuid.uuid4().hex[:6]}"
    token = md_gw.token(device, shop.key)
    events = Events(md_gw, shop.key, token)
    opened.append(events)
    time.sleep(0.5)
    out = md_gw.cli("devices", "block", "--tenant", shop.key, device)
    assert out.returncode == 0, out.stderr
    event = events.next("device.blocked", timeout=15)
    assert event is not None and json.loads(event["data"])["device_id"] == device
    assert events.next(timeout=10) is None  # and the stream ends
    assert_problem(md_gw.request("GET", "/v1/events", tenant=shop.key, token=token), 403, "device_blocked")


def test_a_reconnect_with_last_event_id_gets_what_it_missed(md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:
    shop = Shop(md_gw, md_server)
    shop.all_pages("customers")
    first = Events(md_gw, shop.key, shop.token)
    opened.append(first)
    shop.site.insert("Customer", {"name": f"Ev A {uuid.uuid4().hex[:6]}", "customer_group": "Retail", "disabled": 0})
    seen = first.next("customers.changed")
    assert seen is not None
    first.close()
    shop.site.insert("Customer", {"name": f"Ev B {uuid.uuid4().hex[:6]}", "customer_group": "Retail", "disabled": 0})
    shop.get("/v1/customers?since=0")  # a request refreshes it while no stream is open
    time.sleep(1.5)
    shop.get("/v1/customers?since=0")
    again = Events(md_gw, shop.key, shop.token, last_event_id=seen["id"])
    opened.append(again)
    missed = again.next("customers.changed", timeout=10)
    assert missed is not None and missed["id"] != seen["id"]
    assert int(json.loads(missed["data"])["cursor"]) > int(json.loads(seen["data"])["cursor"])
    stale = Events(md_gw, shop.key, shop.token, last_event_id="garbage-id")
    opened.append(stale)
    assert stale.next("resync", timeout=10) is not None


def test_a_config_change_is_announced_and_a_removed_tenant_ends_its_streams(
        md_gw: Gateway, md_server: StandInServer, opened: list[Events]) -> None:
    shop = Shop(md_gw, md_server)
    events = Events(md_gw, shop.key, shop.token)
    opened.append(events)
    time.sleep(0.5)
    cfg = yaml.safe_load(md_gw.config_path.read_text())
    cfg["tenants"][shop.key]["masterdata"]["page_size"] = 77
    md_gw.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert events.next("config.changed", timeout=15) is not None
    del cfg["tenants"][shop.key]
    md_gw.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert events.next(timeout=15) is None  # the stream ends with the tenant


def test_sigterm_ends_streams_so_the_gateway_stops_at_once(tmp_path: Any, md_server: StandInServer,
                                                          opened: list[Events]) -> None:
    cfg = base_config(tmp_path, md_server.url)
    cfg["tenants"] = {}
    gw = start_gateway(tmp_path, cfg, args=("--grace", "30"))
    try:
        shop = Shop(gw, md_server)
        events = Events(gw, shop.key, shop.token)
        opened.append(events)
        time.sleep(0.5)
        t0 = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        assert events.next(timeout=10) is None
        assert gw.proc.wait(timeout=10) == 0
        assert time.monotonic() - t0 < 5, "the open stream held the shut-down up"
    finally:
        gw.stop()


def test_events_need_a_device_token(md_gw: Gateway, md_server: StandInServer) -> None:
    shop = Shop(md_gw, md_server)
    assert_problem(md_gw.request("GET", "/v1/events", tenant=shop.key, token=None), 401, "unauthorized")
    r = md_gw.request("GET", "/v1/events", tenant=shop.key, token=shop.token, headers={"Last-Event-ID": "x" * 100})
    assert_problem(r, 422, "validation_failed")


def test_many_streams_on_one_process_all_hear_one_change(md_gw: Gateway, md_server: StandInServer,
                                                         opened: list[Events]) -> None:
    """40 tills of one tenant share one reader of the event log in the process (a feed)."""
    shop = Shop(md_gw, md_server)
    shop.all_pages("products")
    streams = [Events(md_gw, shop.key, shop.token) for _ in range(40)]
    opened.extend(streams)
    time.sleep(1.5)  # every stream waits on the feed, its waits timing out each second
    shop.site.insert("Item", item(f"MANY{uuid.uuid4().hex[:6].upper()}"))
    heard = [s.next("products.changed", timeout=20) for s in streams]
    assert all(h is not None for h in heard)
    assert len({h["id"] for h in heard if h}) == 1  # the same event, everywhere


def test_streams_opened_at_once_on_a_new_feed_hear_each_event_once(md_gw: Gateway, md_server: StandInServer) -> None:
    """Tills connecting together (a shop opening) share one reader of the log: none is
    sent an event twice (concurrent joins once started a reader each, which read every
    event into the shared window once per reader)."""
    import asyncio

    shop = Shop(md_gw, md_server)  # nothing loaded yet: the streams' own refreshes raise the first events
    request = (f"GET /v1/events HTTP/1.1\r\nHost: {shop.key}.tillking.test\r\nAuthorization: Bearer {shop.token}"
               "\r\n\r\n").encode()

    async def one() -> list[str]:
        reader, writer = await asyncio.open_connection("127.0.0.1", md_gw.port)
        writer.write(request)
        await reader.readuntil(b"\r\n\r\n")
        received = b""
        try:
            async with asyncio.timeout(6):
                while chunk := await reader.read(65536):
                    received += chunk
        except TimeoutError:
            pass
        writer.close()
        return [line[4:] for line in received.decode().split("\n") if line.startswith("id: ")]

    async def many() -> list[list[str]]:
        return await asyncio.gather(*(one() for _ in range(60)))

    heard = asyncio.run(many())
    assert any(heard), "the first refreshes raise events"
    for ids in heard:
        assert len(ids) == len(set(ids)), f"an event was sent twice: {ids}"
