"""The ERPNext stand-in keeps Frappe's REST contract (the parts pos-edge relies on)."""

from __future__ import annotations

import json

import httpx

AUTH = {"Authorization": "token key-shop1:secret-shop1", "Host": "shop1.erp.test"}


def test_wrong_secret_is_401_authentication_error(standin_server, standin) -> None:
    r = httpx.get(f"{standin_server.url}/api/resource/Item", headers={**AUTH, "Authorization": "token key-shop1:nope"})
    assert r.status_code == 401 and r.json()["exc_type"] == "AuthenticationError"


def test_no_credentials_is_403_permission_error(standin_server, standin) -> None:
    r = httpx.get(f"{standin_server.url}/api/resource/Item", headers={"Host": "shop1.erp.test"})
    assert r.status_code == 403 and r.json()["exc_type"] == "PermissionError"
    assert httpx.get(f"{standin_server.url}/api/method/frappe.ping", headers={"Host": "shop1.erp.test"}).json() == {"message": "pong"}


def test_site_is_chosen_by_header_then_host(standin_server, standin) -> None:
    r = httpx.get(f"{standin_server.url}/api/method/frappe.auth.get_logged_user",
                  headers={**AUTH, "Host": "elsewhere", "X-Frappe-Site-Name": "shop1.erp.test"})
    assert r.json() == {"message": "api@shop1.test"}
    r = httpx.get(f"{standin_server.url}/api/resource/Item", headers={**AUTH, "Host": "unknown.site"})
    assert r.status_code == 404
    # shop1's key does not exist on shop2's site.
    r = httpx.get(f"{standin_server.url}/api/resource/Item", headers={**AUTH, "Host": "shop2.erp.test"})
    assert r.status_code == 401


def test_missing_document_has_server_messages(standin_server, standin) -> None:
    r = httpx.get(f"{standin_server.url}/api/resource/Item/NOPE", headers=AUTH)
    assert r.status_code == 404
    body = r.json()
    assert body["exc_type"] == "DoesNotExistError"
    messages = [json.loads(m)["message"] for m in json.loads(body["_server_messages"])]
    assert messages == ["Item NOPE not found"]


def test_create_list_get_with_filters(standin_server, standin) -> None:
    url = f"{standin_server.url}/api/resource/Customer"
    created = httpx.post(url, headers=AUTH, json={"customer_name": "Ama", "customer_group": "Retail"}).json()["data"]
    # named by customer_name (Selling Settings' default; recorded cust-new-a)
    assert created["name"] == "Ama" and created["docstatus"] == 0 and created["doctype"] == "Customer"
    listed = httpx.get(url, headers=AUTH, params={"filters": json.dumps([["customer_name", "=", "Ama"]]),
                                                  "fields": '["name","customer_group"]'}).json()
    assert listed == {"data": [{"name": created["name"], "customer_group": "Retail"}]}
    assert httpx.get(f"{url}/{created['name']}", headers=AUTH).json()["data"]["customer_name"] == "Ama"
    dup = httpx.post(url, headers=AUTH, json={"name": created["name"]})
    assert dup.status_code == 409 and dup.json()["exc_type"] == "DuplicateEntryError"


def test_faults_can_be_injected(standin_server, standin) -> None:
    standin.fail_next(times=1, status=417, exc_type="ValidationError", message="Account is required")
    r = httpx.get(f"{standin_server.url}/api/resource/Item", headers=AUTH)
    assert r.status_code == 417 and "Account is required" in r.json()["_server_messages"]
    assert httpx.get(f"{standin_server.url}/api/resource/Item", headers=AUTH).status_code == 200
