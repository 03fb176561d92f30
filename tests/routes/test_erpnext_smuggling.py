"""What a till can hide in a proxied request for Frappe to act on: a `cmd`
parameter (run before routing), a header spelt with underscores, a method
override, a second Host or Content-Type; and what ERPNext's answers must not
tell the till about the server behind the gateway.

The `cmd` cases are the exchanges recorded on a real Frappe 15 site
(tests/fixtures/real_erpnext/form_dict_cmd.json); tests/standin/test_real_contract.py
holds the stand-in to the same recordings, so these tests would see a bypass."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.standin import StandIn
from tests.conftest import Gateway, base_config, start_gateway
from tests.routes.test_erpnext import assert_problem, new_id, raw_request

FIXTURES = Path(__file__).parents[1] / "fixtures" / "real_erpnext"
CMD_EXCHANGES: list[dict[str, Any]] = json.loads((FIXTURES / "form_dict_cmd.json").read_text())["exchanges"]
REAL_HEADERS = json.loads((FIXTURES / "headers_and_po_no.json").read_text())


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, standin_server) -> Iterator[Gateway]:
    """A gateway whose shop1 may create and update ToDos, so refusals below are about `cmd`."""
    tmp = tmp_path_factory.mktemp("gw-smuggling")
    cfg = base_config(tmp, standin_server.url)
    cfg["tenants"]["shop1"]["proxy"]["allow"] += ["POST ToDo", "PUT ToDo"]
    gateway = start_gateway(tmp, cfg)
    yield gateway
    gateway.stop()


def _proxied(exchange: dict[str, Any]) -> tuple[str, str, dict[str, str], bytes]:
    req = exchange["request"]
    path = req["path"].replace("/api/resource/", "/erpnext/", 1)
    headers = {k: v for k, v in req["headers"]}
    return req["method"], path, headers, req["body"].encode()


@pytest.mark.parametrize("exchange", CMD_EXCHANGES, ids=[e["id"] for e in CMD_EXCHANGES])
def test_no_recorded_cmd_spelling_reaches_erpnext(gw, standin: StandIn, exchange: dict[str, Any]) -> None:
    method, path, headers, body = _proxied(exchange)
    token = gw.token(new_id())
    before = len(standin.requests)
    r = gw.request(method, path, token=token, headers=headers, content=body)
    assert standin.cmd_calls == [], "Frappe's pre-routing cmd dispatch ran"
    if method == "GET" and body:
        # A cmd in a GET's body (p20): the gateway never forwards a read's body.
        assert r.status_code == 200, r.text
        assert standin.requests[-1].body == b""
    elif exchange["ran_cmd"]:
        body_json = assert_problem(r, 403, "proxy_not_allowed")
        assert "cmd" in body_json["detail"]
    # Spellings Frappe itself would not run (CMD, a file part, a query beside a JSON
    # body, ...) may be refused too: the check is a superset of make_form_dict.
    if r.status_code == 403:
        assert len(standin.requests) == before


def test_cmd_in_an_allowed_create_cannot_delete(gw, standin_server, standin: StandIn) -> None:
    site = standin_server.standin.sites["shop1.erp.test"]
    name = f"KEEP-{uuid.uuid4().hex[:6]}"
    site.insert("Item", {"name": name, "item_code": name})
    evil = {"cmd": "frappe.client.delete", "doctype": "Item", "name": name}
    for kwargs in ({"json": evil}, {"data": evil}, {"files": {k: (None, v) for k, v in evil.items()}}):
        r = gw.request("POST", "/erpnext/Item", token=gw.token(new_id()), **kwargs)
        assert_problem(r, 403, "proxy_not_allowed")
    r = gw.request("GET", "/erpnext/Item", token=gw.token(new_id()),
                   params={"cmd": "frappe.client.get_list", "doctype": "Item"})
    assert_problem(r, 403, "proxy_not_allowed")
    assert name in site.docs["Item"] and standin.cmd_calls == []


def test_plain_writes_and_queries_still_pass(gw, standin: StandIn) -> None:
    token = gw.token(new_id())
    code = f"CMDLESS-{uuid.uuid4().hex[:6]}"
    r = gw.request("POST", "/erpnext/Item", token=token, json={"name": code, "item_code": code, "description": "a cmd here"})
    assert r.status_code == 200, r.text
    r = gw.request("GET", "/erpnext/Item", token=token, params={"filters": '[["item_code","like","%cmd%"]]',
                                                                 "fields": '["name","description"]'})
    assert r.status_code == 200, r.text


def test_a_body_frappe_cannot_parse_is_refused(gw, standin: StandIn) -> None:
    token = gw.token(new_id())
    before = len(standin.requests)
    r = gw.request("POST", "/erpnext/Item", token=token, content=b"x=1",
                   headers=[("Content-Type", "application/json"), ("Content-Type", "application/x-www-form-urlencoded")])
    assert_problem(r, 400, "invalid_request")
    r = gw.request("POST", "/erpnext/Item", token=token, content=b"\x1f\x8b\x08\x00",
                   headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert_problem(r, 415, "unsupported_media_type")
    boundary = "b0undary"
    parts = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n" for i in range(1001))
    r = gw.request("POST", "/erpnext/Item", token=token, content=(parts + f"--{boundary}--\r\n").encode(),
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    body = assert_problem(r, 400, "invalid_request")  # Werkzeug (so Frappe) refuses over 1000 parts
    assert "cannot be parsed" in body["detail"]
    assert len(standin.requests) == before


def test_underscore_and_override_headers_never_reach_erpnext(gw, standin: StandIn) -> None:
    token = gw.token(new_id())
    r = gw.request("GET", "/erpnext/Item", token=token, headers=[
        ("X_Frappe_Site_Name", "shop2.erp.test"), ("X_Forwarded_Host", "evil.example"), ("Host_", "x"),
        ("X-HTTP-Method-Override", "DELETE"), ("X-HTTP-Method", "DELETE"), ("X-Method-Override", "DELETE"),
        ("X-Original-URL", "/api/method/frappe.client.delete"), ("True-Client-IP", "10.0.0.1"), ("X-Till-Trace", "kept")])
    assert r.status_code == 200, r.text
    seen = standin.requests[-1]
    assert seen.site == "shop1.erp.test"
    names = {k.lower() for k in seen.headers}
    assert not any("_" in n for n in names)
    assert not names & {"x-http-method-override", "x-http-method", "x-method-override", "x-original-url", "true-client-ip"}
    assert seen.headers["x-till-trace"] == "kept"


def test_every_connection_header_names_hop_by_hop_fields(gw, standin: StandIn) -> None:
    r = gw.request("GET", "/erpnext/Item", token=gw.token(new_id()),
                   headers=[("Connection", "X-First"), ("Connection", "X-Second"), ("X-First", "1"), ("X-Second", "2")])
    assert r.status_code == 200
    assert not {"x-first", "x-second"} & set(standin.requests[-1].headers)


def test_two_host_headers_are_400(gw, standin: StandIn) -> None:
    token = gw.token(new_id())
    before = len(standin.requests)
    for hosts in ([b"shop1.tillking.test", b"shop1.tillking.test"], [b"shop2.tillking.test", b"shop1.tillking.test"]):
        request = (b"GET /erpnext/Item HTTP/1.1\r\n" + b"".join(b"Host: " + h + b"\r\n" for h in hosts)
                   + f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
        data = raw_request(gw.port, request)
        assert data.startswith(b"HTTP/1.1 400"), data[:200]
        assert b'"code":"invalid_request"' in data and b"Host" in data
    assert len(standin.requests) == before


def test_answers_do_not_name_the_server_behind(gw, standin: StandIn) -> None:
    # The headers a real Frappe site sent with a plain GET, plus what proxies in front of it add.
    real = [(k, v) for k, v in REAL_HEADERS["plain_get"]["response"]["headers"]
            if k.lower() not in ("content-length", "content-type", "connection")]
    assert ("Server", "gunicorn") in real
    standin.extra_headers += [*real, ("X-Frappe-Site-Name", "shop1.erp.test"), ("X-Powered-By", "Frappe"),
                              ("Via", "1.1 erp-proxy"), ("X_Backend", "erp-1")]
    r = gw.request("GET", "/erpnext/Item", token=gw.token(new_id()))
    assert r.status_code == 200
    assert not {"server", "set-cookie", "x-frappe-site-name", "x-powered-by", "via", "x_backend"} & set(r.headers.keys())


def test_a_trailer_never_becomes_a_request_header(gw, standin: StandIn) -> None:
    import socket
    import time

    token = gw.token(new_id())
    body = b"cmd=frappe.client.delete&doctype=Item&name=ITEM-shop1"
    head = (f"POST /erpnext/Item HTTP/1.1\r\nHost: shop1.tillking.test\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    before = len(standin.requests)
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(head + b"%x\r\n%s\r\n" % (len(body), body))
        time.sleep(0.3)  # the gateway has read the headers and started on the request
        s.sendall(b"0\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Trailer: 1\r\n\r\n")
        while s.recv(65536):
            pass
    assert standin.cmd_calls == []
    seen = standin.requests[before:]
    assert seen, "forwarded with its own Content-Type"
    assert all(sum(name.lower() == b"content-type" for name, _ in r.raw_headers) == 1 for r in seen)
    assert all(r.headers.get("content-type") == "text/plain" and "x-trailer" not in r.headers for r in seen)


def test_json_too_deep_to_check_is_refused(gw, standin: StandIn) -> None:
    before = len(standin.requests)
    deep = b'{"cmd": "frappe.client.get_list", "doctype": "User", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    r = gw.request("POST", "/erpnext/Item", token=gw.token(new_id()), content=deep,
                   headers={"Content-Type": "application/json"})
    assert_problem(r, 400, "invalid_request")
    assert len(standin.requests) == before and standin.cmd_calls == []
