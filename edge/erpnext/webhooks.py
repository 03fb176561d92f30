"""The tenant's Webhooks in its ERPNext (`pos-edge erpnext setup`): one per doctype pos-edge
follows and event (edge.masterdata.webhooks), posting a signed JSON body to
`<gateway.public_url>/hooks/erpnext/<tenant>`.

Webhook names are made here (the doctype's naming is "Set by user"), so a second run
finds its own and updates them: a new public URL or a rotated secret takes effect by
running setup again. Webhooks are System Manager documents: the tenant's API user must
have that role for setup (not for serving).
"""

from __future__ import annotations

from typing import Any

from edge.erpnext.client import ErpnextClient
from edge.masterdata.webhooks import DOCEVENTS, WATCHED, payload_template

WEBHOOK = "Webhook"
TIMEOUT = 5  # seconds Frappe waits for the gateway (its default); the answer is immediate


def webhook_name(tenant: str, doctype: str, event: str) -> str:
    """The Webhook document's name for this tenant, doctype and event."""
    return f"pos-edge {tenant} {doctype} {event}"


def hook_url(public_url: str, tenant: str) -> str:
    """Where ERPNext posts this tenant's Webhooks."""
    return f"{public_url.rstrip('/')}/hooks/erpnext/{tenant}"


def webhook_doc(url: str, secret: str, doctype: str, event: str) -> dict[str, Any]:
    """The fields of one Webhook, as `setup` writes them."""
    return {
        "webhook_doctype": doctype,
        "webhook_docevent": event,
        "enabled": 1,
        "request_url": url,
        "request_method": "POST",
        "request_structure": "JSON",
        "webhook_json": payload_template(doctype, event),
        "enable_security": 1,
        "webhook_secret": secret,
        "timeout": TIMEOUT,
        # Frappe's requests call sets none: proxies and WAFs in front of the gateway like one
        "webhook_headers": [{"key": "Content-Type", "value": "application/json"}],
    }


async def ensure_webhooks(client: ErpnextClient, tenant: str, public_url: str, secret: str) -> list[str]:
    """Create the tenant's Webhooks, or bring existing ones up to date; one line per Webhook."""
    url = hook_url(public_url, tenant)
    wanted = {webhook_name(tenant, d, e): (d, e) for d in WATCHED for e in DOCEVENTS}
    found = {row["name"] for row in await client.find(WEBHOOK, [["name", "in", list(wanted)]], ["name"], limit=0)}
    done = []
    for name, (doctype, event) in wanted.items():
        doc = webhook_doc(url, secret, doctype, event)
        if name in found:
            await client.update(WEBHOOK, name, doc)
            done.append(f"updated Webhook {name!r} -> {url}")
        else:
            await client.insert(WEBHOOK, {"name": name, **doc})
            done.append(f"created Webhook {name!r} -> {url}")
    return done
