"""End to end: a till -> pos-edge (uvicorn subprocess) -> the ERPNext stand-in."""

from __future__ import annotations

import socket
import uuid

import pytest

from edge.standin import StandIn
from edge.standin.server import free_port
from tests.conftest import CREDS, base_config, tenant_entry


def new_id() -> str:
    return f"till-{uuid.uuid4().hex[:8]}"


def assert_problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["request_id"] == r.headers["x-request-id"]
    assert {"type", "title", "detail"} <= body.keys()
    return body


def test_proxied_get_carries_tenant_credentials_not_the_tills(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    r = gateway.request(
        "GET", "/erpnext/Item", token=token,
        params={"fields": '["name","item_name"]', "filters": '[["name","like","ITEM-%"]]'},
        headers={"Cookie": "sid=till-session", "X-Frappe-Site-Name": "shop2.erp.test"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"data": [{"name": "ITEM-shop1", "item_name": "Item of shop1"}]}
    seen = standin.requests[-1]
    assert seen.path == "/api/resource/Item"
    assert seen.query.startswith("fields=%5B%22name%22%2C%22item_name%22%5D&filters=")
    key, secret = CREDS["shop1"]
    assert seen.headers["authorization"] == f"token {key}:{secret}"
    assert token not in str(seen.headers)
    assert "cookie" not in seen.headers
    # The till's Host never reaches ERPNext: the tenant's site is addressed instead,
    # and a till cannot pick another site with X-Frappe-Site-Name.
    assert seen.headers["host"] == "shop1.erp.test"
    assert seen.headers["x-frappe-site-name"] == "shop1.erp.test"
    assert seen.site == "shop1.erp.test"
    assert seen.headers["x-forwarded-host"] == "shop1.tillking.test"
    assert seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert seen.headers["x-request-id"] == r.headers["x-request-id"]
    assert r.headers["ratelimit-policy"] == '"default";q=1000;w=60'
    assert r.headers["ratelimit"].startswith('"default";r=')


def test_tenants_see_only_their_own_erpnext(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id(), tenant="shop2")
    r = gateway.request("GET", "/erpnext/Item", tenant="shop2", token=token, params={"limit_page_length": 0})
    seen = {row["name"] for row in r.json()["data"]}
    # other tests add items to either site: what matters is whose site answered
    assert seen == set(standin.sites["shop2.erp.test"].docs["Item"]), seen
    # (POS tests seed the same BREAD/COFFEE/MILK on both sites: the tenants' own items tell them apart)
    assert "ITEM-shop2" in seen and "ITEM-shop1" not in seen
    assert standin.requests[-1].headers["authorization"] == "token {}:{}".format(*CREDS["shop2"])


def test_method_call_and_allowed_write(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    r = gateway.request("GET", "/erpnext/method/frappe.auth.get_logged_user", token=token)
    assert r.json() == {"message": "api@shop1.test"}
    assert standin.requests[-1].path == "/api/method/frappe.auth.get_logged_user"
    code = f"NEW-{uuid.uuid4().hex[:6]}"
    r = gateway.request("POST", "/erpnext/Item", token=token, json={"name": code, "item_code": code})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == code
    r = gateway.request("GET", f"/erpnext/Item/{code}", token=token)
    assert r.json()["data"]["item_code"] == code


def test_upstream_errors_pass_through_with_frappe_body(gateway, standin: StandIn) -> None:
    r = gateway.request("GET", "/erpnext/Item/NO-SUCH-ITEM", token=gateway.token(new_id()))
    assert r.status_code == 404
    assert r.json()["exc_type"] == "DoesNotExistError"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/erpnext/Sales%20Invoice"),
        ("DELETE", "/erpnext/Item/ITEM-shop1"),
        ("PUT", "/erpnext/Item/ITEM-shop1"),
        ("GET", "/erpnext/method/frappe.client.get_list"),
        ("POST", "/erpnext/method/frappe.auth.get_logged_user"),
    ],
)
def test_writes_and_methods_need_an_allow_rule(gateway, standin: StandIn, method: str, path: str) -> None:
    token = gateway.token(new_id())
    before = len(standin.requests)
    r = gateway.request(method, path, token=token, json={})
    assert_problem(r, 403, "proxy_not_allowed")
    assert len(standin.requests) == before


@pytest.mark.parametrize(
    "path",
    [
        "/erpnext/Item/%2e%2e/%2e%2e/api/method/frappe.client.get_list",
        "/erpnext/Item/%2E%2E%2Fmethod",
        "/erpnext/Item/%252e%252e/secret",
        "/erpnext/Item/..%5c..%5cx",
        "/erpnext/%2e",
        "/erpnext/method/frappe.auth%2F..%2Fx",
    ],
)
def test_path_traversal_is_rejected(gateway, standin: StandIn, path: str) -> None:
    token = gateway.token(new_id())
    before = len(standin.requests)
    # http.client sends the path exactly as given (httpx would normalise dot segments).
    with socket.create_connection(("127.0.0.1", gateway.port)) as s:
        s.sendall(
            f"GET {path} HTTP/1.1\r\nHost: shop1.tillking.test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 400"), data[:200]
    assert b'"code":"invalid_path"' in data
    assert len(standin.requests) == before


def test_oversize_body_is_413_and_never_forwarded(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    before = len(standin.requests)
    r = gateway.request("POST", "/erpnext/Item", token=token, content=b"x" * (1024 * 1024 + 1))
    assert_problem(r, 413, "payload_too_large")

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(17):
            yield b"y" * 65536

    r = gateway.request("POST", "/erpnext/Item", token=token, content=chunks())
    assert_problem(r, 413, "payload_too_large")
    assert len(standin.requests) == before


def test_hop_by_hop_headers_are_stripped_upstream(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    r = gateway.request(
        "GET", "/erpnext/Item", token=token,
        headers={"Connection": "keep-alive, X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5",
                 "Proxy-Authorization": "Basic abc", "X-Till-Trace": "kept"},
    )
    assert r.status_code == 200
    seen = standin.requests[-1].headers
    assert "x-secret-hop" not in seen
    assert "keep-alive" not in seen
    assert "proxy-authorization" not in seen
    assert seen["x-till-trace"] == "kept"


def test_unknown_tenant_is_404(gateway) -> None:
    r = gateway.request("GET", "/erpnext/Item", tenant="nosuchshop")
    assert_problem(r, 404, "tenant_not_found")


def test_missing_and_garbage_tokens_are_401(gateway) -> None:
    r = gateway.request("GET", "/erpnext/Item")
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"].startswith("Bearer")
    r = gateway.request("GET", "/erpnext/Item", token="not.a.jwt")
    assert_problem(r, 401, "unauthorized")


def test_cross_tenant_token_is_401(gateway) -> None:
    token = gateway.token(new_id(), tenant="shop1")
    r = gateway.request("GET", "/erpnext/Item", tenant="shop2", token=token)
    assert_problem(r, 401, "unauthorized")


def test_reregistration_retires_the_old_token(gateway) -> None:
    device = new_id()
    old = gateway.token(device)
    assert gateway.request("GET", "/erpnext/Item", token=old).status_code == 200
    new = gateway.token(device)
    assert gateway.request("GET", "/erpnext/Item", token=new).status_code == 200
    assert_problem(gateway.request("GET", "/erpnext/Item", token=old), 401, "unauthorized")


def test_erpnext_down_is_502(gateway_factory, tmp_path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = base_config(tmp_path, dead)
    gw = gateway_factory(cfg)
    r = gw.request("GET", "/erpnext/Item", token=gw.token(new_id()))
    assert_problem(r, 502, "upstream_unreachable")


def test_erpnext_slow_is_504(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    standin.delay = 3  # the test config's ERPNext timeout is 2 s
    r = gateway.request("GET", "/erpnext/Item", token=token)
    body = assert_problem(r, 504, "upstream_timeout")
    assert "2 s" in body["detail"]


def test_erpnext_rejecting_credentials_is_502_not_401(gateway_factory, tmp_path, standin_server, standin) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop2"] = tenant_entry("shop2", standin_server.url, erpnext={"api_secret": "wrong-secret"})
    gw = gateway_factory(cfg)
    r = gw.request("GET", "/erpnext/Item", tenant="shop2", token=gw.token(new_id(), tenant="shop2"))
    body = assert_problem(r, 502, "upstream_auth_failed")
    assert "wrong-secret" not in r.text and "secret" not in body["detail"].lower().replace("api credentials", "")
    assert any("upstream_auth_failed" in line and "AuthenticationError" in line for line in gw.log_lines())
    assert all("wrong-secret" not in line for line in gw.log_lines())


def test_suspended_tenant_is_403(gateway_factory, tmp_path, standin_server) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop2"]["status"] = "suspended"
    gw = gateway_factory(cfg)
    assert_problem(gw.request("GET", "/erpnext/Item", tenant="shop2"), 403, "tenant_suspended")
    assert_problem(gw.register(new_id(), tenant="shop2"), 403, "tenant_suspended")


def test_extra_hosts_and_trusted_forwarded_host(gateway_factory, tmp_path, standin_server, standin) -> None:
    cfg = base_config(tmp_path, standin_server.url, trusted_proxies=["127.0.0.0/8"])
    cfg["tenants"]["shop2"]["hosts"] = ["pos.shop-two.example"]
    gw = gateway_factory(cfg)
    token = gw.token(new_id(), tenant="shop2")
    r = gw.http.get("/erpnext/Item", headers={"Host": "pos.shop-two.example", "Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    # Behind a trusted ingress, the original host and client come from X-Forwarded-*.
    r = gw.http.get(
        "/erpnext/Item",
        headers={"Host": "ingress.internal", "X-Forwarded-Host": "shop2.tillking.test",
                 "X-Forwarded-For": "203.0.113.9, 127.0.0.1", "Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    assert standin.requests[-1].headers["x-forwarded-for"] == "203.0.113.9"


def test_forwarded_host_is_ignored_from_untrusted_clients(gateway) -> None:
    # The module gateway trusts no proxy: X-Forwarded-Host cannot pick a tenant.
    r = gateway.http.get("/erpnext/Item", headers={"Host": "elsewhere.example", "X-Forwarded-Host": "shop1.tillking.test"})
    assert_problem(r, 404, "tenant_not_found")


def test_access_log_is_one_json_line_per_request_without_secrets(gateway) -> None:
    import json

    token = gateway.token(new_id())
    r = gateway.request("GET", "/erpnext/Item", token=token)
    rid = r.headers["x-request-id"]
    lines = [json.loads(line) for line in gateway.wait_log(f'"request_id":"{rid}"') if rid in line]
    access = [line for line in lines if line["event"] == "request"]
    assert len(access) == 1
    entry = access[0]
    assert entry["tenant"] == "shop1" and entry["status"] == 200 and entry["method"] == "GET"
    assert entry["path"] == "/erpnext/Item" and entry["duration_ms"] >= entry["upstream_ms"] > 0
    assert entry["device"].startswith("till-")
    text = "\n".join(gateway.log_lines())
    assert token not in text
    assert CREDS["shop1"][1] not in text and "test-jwt-secret" not in text


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/erpnext/Item/ITEM-shop1", {"run_method": "delete"}),
        ("GET", "/erpnext/Item/ITEM-shop1", {"run%5Fmethod": "x"}),
        ("POST", "/erpnext/Item/ITEM-shop1", {}),  # a named POST runs a document method, not a create
    ],
)
def test_document_methods_need_a_run_method_rule(gateway, standin: StandIn, method, path, params) -> None:
    token = gateway.token(new_id())
    before = len(standin.requests)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = gateway.request(method, path + (f"?{query}" if query else ""), token=token, json={"run_method": "cancel"})
    body = assert_problem(r, 403, "proxy_not_allowed")
    assert "Item:run_method" in body["detail"]
    assert len(standin.requests) == before


def test_a_run_method_rule_allows_document_methods(gateway_factory, tmp_path, standin_server, standin) -> None:
    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop1"]["proxy"]["allow"].append("GET Item:run_method")
    gw = gateway_factory(cfg)
    r = gw.request("GET", "/erpnext/Item/ITEM-shop1", params={"run_method": "get_title"}, token=gw.token(new_id()))
    assert r.status_code == 200 and standin.requests[-1].query == "run_method=get_title"


def test_a_read_never_carries_a_body(gateway, standin: StandIn) -> None:
    r = gateway.request("GET", "/erpnext/Item", token=gateway.token(new_id()), json={"run_method": "delete"})
    assert r.status_code == 200
    assert standin.requests[-1].body == b""


@pytest.mark.parametrize("path", ["/%65rpnext/Item", "/erpnext/Item/x/..;/y", "/erpnext/Item/x/.;/y"])
def test_paths_that_only_decode_to_the_prefix_or_hide_dot_segments(gateway, standin: StandIn, path: str) -> None:
    token = gateway.token(new_id())
    before = len(standin.requests)
    data = raw_request(gateway.port, f"GET {path} HTTP/1.1\r\nHost: shop1.tillking.test\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n".encode())
    assert data.startswith(b"HTTP/1.1 400"), data[:300]
    assert len(standin.requests) == before


def test_response_hygiene(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    standin.extra_headers += [("Set-Cookie", "sid=abc; HttpOnly"), ("X-Request-ID", "erpnext-own-id"),
                              ("Connection", "X-Internal"), ("X-Internal", "1"), ("X-Frappe-Note", "kept")]
    r = gateway.request("GET", "/erpnext/Item", token=token)
    assert r.status_code == 200
    assert "set-cookie" not in r.headers and "x-internal" not in r.headers
    assert r.headers.get_list("x-request-id") == [r.headers["x-request-id"]] != ["erpnext-own-id"]
    assert r.headers["x-frappe-note"] == "kept"


def test_erpnext_403_is_a_gateway_fault(gateway, standin: StandIn) -> None:
    token = gateway.token(new_id())
    standin.fail_next(status=403, exc_type="PermissionError", message="Not permitted")
    assert_problem(gateway.request("GET", "/erpnext/Item", token=token), 502, "upstream_auth_failed")


def test_head_is_a_read(gateway, standin: StandIn) -> None:
    r = gateway.request("HEAD", "/erpnext/Item/ITEM-shop1", token=gateway.token(new_id()))
    assert r.status_code == 200 and r.content == b""
    assert int(r.headers["content-length"]) > 0
    assert standin.requests[-1].method == "HEAD"


def test_large_responses_stream_through_intact(gateway, standin_server, standin: StandIn) -> None:
    site = standin_server.standin.sites["shop1.erp.test"]
    description = "".join(f"line {i} of a long description\n" for i in range(20_000))  # ~600 KiB
    site.insert("Item", {"name": "BIG-ITEM", "item_code": "BIG-ITEM", "description": description})
    r = gateway.request("GET", "/erpnext/Item/BIG-ITEM", token=gateway.token(new_id()))
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content) > 256 * 1024
    assert r.json()["data"]["description"] == description


def test_erpnext_url_host_is_sent_without_site_name(gateway_factory, tmp_path, standin_server, standin) -> None:
    from tests.conftest import PLAIN_CREDS

    cfg = base_config(tmp_path, standin_server.url)
    cfg["tenants"]["shop2"]["erpnext"] = {"url": standin_server.url, "api_key": PLAIN_CREDS[0], "api_secret": PLAIN_CREDS[1]}
    gw = gateway_factory(cfg)
    r = gw.request("GET", "/erpnext/method/frappe.auth.get_logged_user", tenant="shop2",
                   token=gw.token(new_id(), tenant="shop2"))
    assert r.status_code == 200, r.text
    assert r.json() == {"message": "api@plain.test"}
    seen = standin.requests[-1].headers
    assert seen["host"] == f"127.0.0.1:{standin_server.port}" and "x-frappe-site-name" not in seen


def test_tokens_spelt_otherwise_or_with_text_times_are_401(gateway) -> None:
    import time

    from tests.conftest import forge

    device = new_id()
    token = gateway.token(device)
    assert gateway.request("GET", "/erpnext/Item", token=token).status_code == 200
    assert_problem(gateway.request("GET", "/erpnext/Item", token=token + "="), 401, "unauthorized")
    # signed with the gateway's key, for the registered device's generation: only exp is off
    good = forge({"sub": device, "gen": 1})
    assert gateway.request("GET", "/erpnext/Item", token=good).status_code == 200
    text_exp = forge({"sub": device, "gen": 1, "exp": str(int(time.time()) + 600)})
    assert_problem(gateway.request("GET", "/erpnext/Item", token=text_exp), 401, "unauthorized")
