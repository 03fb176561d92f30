"""`pos-edge check --online`: does each tenant's ERPNext hold what its tenants.yaml names?

A name misspelt in tenants.yaml (a warehouse, a Mode of Payment) otherwise shows up
as a refused sale at the first customer. Everything is read over the same REST API,
with the same credentials, the gateway uses; nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable
from edge.erpnext.setup import reference_field_state


@dataclass(frozen=True)
class Finding:
    """One problem (or, with `warning`, a doubt) at a path of tenants.yaml."""

    path: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{'warning: ' if self.warning else ''}{self.path}: {self.message}"


async def preflight(key: str, tenant: Any, client: ErpnextClient) -> list[Finding]:
    """Every name the tenant's config gives ERPNext, looked up; one Finding per problem."""
    where = f"tenants.{key}"
    try:
        await client.call("GET", "/api/method/frappe.auth.get_logged_user")
    except FrappeError as exc:
        what = "the API key or secret is wrong" if exc.status in (401, 403) else f"answered {exc}"
        return [Finding(f"{where}.erpnext", f"ERPNext at {tenant.erpnext.url}: {what}")]
    except Unreachable as exc:
        return [Finding(f"{where}.erpnext.url", f"ERPNext at {tenant.erpnext.url} is unreachable: {exc}")]
    if not tenant.pos_enabled:
        return []

    checks: list[Awaitable[Finding | None]] = [
        _exists(client, "Company", tenant.company, f"{where}.company"),
    ]
    if tenant.default_customer:
        checks.append(_exists(client, "Customer", tenant.default_customer, f"{where}.default_customer"))
    for branch_id, branch in tenant.branches.items():
        at = f"{where}.branches.{branch_id}"
        checks.append(_profile(client, branch.pos_profile, tenant.company, f"{at}.pos_profile"))
        checks.append(_exists(client, "Warehouse", branch.warehouse, f"{at}.warehouse"))
        if branch.cost_center:
            checks.append(_exists(client, "Cost Center", branch.cost_center, f"{at}.cost_center"))
        if branch.price_list:
            checks.append(_exists(client, "Price List", branch.price_list, f"{at}.price_list"))
    for method, mode in tenant.payment_methods.items():
        checks.append(_mode_of_payment(client, mode, tenant.company, f"{where}.payment_methods.{method}"))
    for till_code, item in tenant.item_codes.items():
        checks.append(_exists(client, "Item", item, f"{where}.item_codes.{till_code}"))
    checks.append(_reference_field(client, tenant, key, f"{where}.reference_field"))
    return [f for f in await asyncio.gather(*checks) if f is not None]


async def _read(client: ErpnextClient, doctype: str, name: str, path: str) -> dict[str, Any] | Finding:
    try:
        doc = await client.get_doc(doctype, name)
    except FrappeError as exc:
        return Finding(path, f"cannot read {doctype} {name!r}: {exc}")
    except Unreachable as exc:
        return Finding(path, f"cannot read {doctype} {name!r}: {exc}")
    if doc is None:
        return Finding(path, f"{doctype} {name!r} does not exist in ERPNext")
    return doc


async def _exists(client: ErpnextClient, doctype: str, name: str, path: str) -> Finding | None:
    doc = await _read(client, doctype, name, path)
    if isinstance(doc, Finding):
        return doc
    if int(doc.get("disabled") or 0):
        return Finding(path, f"{doctype} {name!r} is disabled")
    return None


async def _profile(client: ErpnextClient, name: str, company: str, path: str) -> Finding | None:
    doc = await _read(client, "POS Profile", name, path)
    if isinstance(doc, Finding):
        return doc
    if doc.get("company") != company:
        return Finding(path, f"POS Profile {name!r} belongs to {doc.get('company')!r}, not {company!r}")
    if int(doc.get("disabled") or 0):
        return Finding(path, f"POS Profile {name!r} is disabled")
    return None


async def _mode_of_payment(client: ErpnextClient, name: str, company: str, path: str) -> Finding | None:
    doc = await _read(client, "Mode of Payment", name, path)
    if isinstance(doc, Finding):
        return doc
    if not any(row.get("company") == company and row.get("default_account") for row in doc.get("accounts") or []):
        # ERPNext refuses a submitted invoice whose payment row has no account (417 "Account is required")
        return Finding(path, f"Mode of Payment {name!r} has no default account for {company!r}")
    return None


async def _reference_field(client: ErpnextClient, tenant: Any, key: str, path: str) -> Finding | None:
    state = await reference_field_state(client, tenant)
    field = f"{tenant.invoice_doctype}.{tenant.reference_field}"
    if state == "missing":
        return Finding(path, f"{field} does not exist: run pos-edge erpnext setup --tenant {key}")
    if state == "unknown":
        return Finding(path, f"{field}: ERPNext could not be asked")
    if state == "not_unique":
        return Finding(path, f"{field} is not unique: outcome-unknown sales wait erpnext.commit_grace", warning=True)
    return None
