"""Header hygiene (RFC 9110 §7.6.1) and path mapping of the ERPNext proxy."""

from __future__ import annotations

import pytest

from edge.problems import Problem
from edge.routes.erpnext import allowed, parse_target
from edge.upstream import connection_named, request_headers, response_headers


def test_request_headers_drop_hop_by_hop_credentials_and_host() -> None:
    raw = [
        (b"host", b"shop1.tillking.local"), (b"authorization", b"Bearer t"), (b"cookie", b"sid=1"),
        (b"connection", b"keep-alive, x-hop"), (b"x-hop", b"1"), (b"te", b"trailers"), (b"upgrade", b"h2c"),
        (b"x-frappe-site-name", b"other.site"), (b"x-forwarded-for", b"1.2.3.4"), (b"accept", b"application/json"),
        (b"content-type", b"application/json"),
    ]
    out = request_headers(raw, connection_named(v for k, v in raw if k == b"connection"))
    assert out == [("accept", "application/json"), ("content-type", "application/json")]


def test_underscored_names_never_travel_upstream() -> None:
    # WSGI servers file X_Frappe_Site_Name under the same environ key as X-Frappe-Site-Name.
    raw = [(b"x_frappe_site_name", b"other.site"), (b"x_forwarded_host", b"evil"), (b"x-till", b"1")]
    assert request_headers(raw, frozenset()) == [("x-till", "1")]


def test_every_connection_header_counts() -> None:
    assert connection_named([b"x-a, X-B", b" x-c "]) == {b"x-a", b"x-b", b"x-c"}


def test_response_headers_drop_hop_by_hop_cookies_and_connection_named() -> None:
    raw = [(b"Content-Type", b"application/json"), (b"Connection", b"close, X-Internal"), (b"X-Internal", b"1"),
           (b"Set-Cookie", b"sid=abc"), (b"Transfer-Encoding", b"chunked"), (b"X-Frappe-Trace", b"ok"),
           (b"Server", b"gunicorn"), (b"X-Frappe-Site-Name", b"site1"), (b"Connection", b"X-Second"), (b"X-Second", b"2")]
    assert response_headers(raw) == [(b"content-type", b"application/json"), (b"x-frappe-trace", b"ok")]


@pytest.mark.parametrize(
    ("raw", "upstream", "rule"),
    [
        (b"/erpnext/Item", "/api/resource/Item", "Item"),
        (b"/erpnext/Sales%20Invoice/ACC-SINV-2026-00001", "/api/resource/Sales%20Invoice/ACC-SINV-2026-00001", "Sales Invoice"),
        (b"/erpnext/method/frappe.auth.get_logged_user", "/api/method/frappe.auth.get_logged_user", "method:frappe.auth.get_logged_user"),
    ],
)
def test_targets(raw: bytes, upstream: str, rule: str) -> None:
    t = parse_target(raw)
    assert (t.upstream_path, t.rule_target) == (upstream, rule)


@pytest.mark.parametrize(
    "raw", [b"/erpnext/", b"/erpnext/..", b"/erpnext/Item/%2e%2e", b"/erpnext/Item/%25252e%25252e", b"/erpnext/method/os;rm",
            b"/erpnext/Item/a%00b", b"/erpnext/method/", b"/erpnext/Item/%2525252e"],
)
def test_bad_targets(raw: bytes) -> None:
    with pytest.raises(Problem) as info:
        parse_target(raw)
    assert info.value.code == "invalid_path"


def test_policy() -> None:
    rules = frozenset({("POST", "Sales Invoice"), ("GET", "method:frappe.ping"), ("*", "Customer")})
    res, meth = parse_target(b"/erpnext/Sales%20Invoice"), parse_target(b"/erpnext/method/frappe.ping")
    assert allowed("GET", res, frozenset()) and allowed("HEAD", res, frozenset())
    assert allowed("POST", res, rules) and not allowed("PUT", res, rules)
    assert allowed("GET", meth, rules) and not allowed("POST", meth, rules) and not allowed("GET", meth, frozenset())
    cust = parse_target(b"/erpnext/Customer/C1")
    assert allowed("DELETE", cust, rules)


def test_document_method_rules() -> None:
    named = parse_target(b"/erpnext/Item/ITEM-1")
    listing = parse_target(b"/erpnext/Item")
    create = frozenset({("POST", "Item")})
    assert allowed("POST", listing, create) and not allowed("POST", named, create)
    assert not allowed("GET", named, frozenset(), b"fields=x&run_method=delete")
    assert not allowed("GET", named, frozenset(), b"run+method=1&run%5fmethod=delete")
    assert allowed("GET", named, frozenset({("GET", "Item:run_method")}), b"run_method=get_title")
    assert allowed("GET", named, frozenset(), b"fields=%5B%22name%22%5D")
    assert allowed("HEAD", parse_target(b"/erpnext/method/frappe.ping"), frozenset({("HEAD", "method:frappe.ping")}))


async def test_a_retired_pool_closes_only_after_its_last_call(standin_server) -> None:
    import asyncio

    from edge.upstream import Upstreams

    ups = Upstreams()
    origin = standin_server.url
    session = ups.enter(origin)
    ups.retire([origin])  # a reload removed the last tenant on this origin, mid-call
    assert ups.is_open(origin) and ups.in_flight(origin) == 1
    async with session.get(origin + "/api/method/frappe.ping") as r:
        assert r.status == 200
    ups.leave(origin)
    await asyncio.sleep(0.05)
    assert not ups.is_open(origin) and session.closed

    # an origin retired and then used again by a newer config stays open
    ups.enter(origin)
    ups.retire([origin])
    ups.keep([origin])
    ups.leave(origin)
    await asyncio.sleep(0.05)
    assert ups.is_open(origin)
    # an idle retired origin closes at once
    ups.retire([origin])
    await asyncio.sleep(0.05)
    assert not ups.is_open(origin)
    await ups.close()


async def test_a_late_call_on_a_retired_origin_does_not_leak_its_pool(standin_server) -> None:
    import asyncio

    from edge.upstream import Upstreams

    ups = Upstreams()
    origin = standin_server.url
    ups.session(origin)
    ups.retire([origin])  # idle: closed at once
    await asyncio.sleep(0.05)
    session = ups.enter(origin)  # a request still on the old config snapshot
    async with session.get(origin + "/api/method/frappe.ping") as r:
        assert r.status == 200
    ups.leave(origin)
    await asyncio.sleep(0.05)
    assert not ups.is_open(origin) and session.closed
    await ups.close()
