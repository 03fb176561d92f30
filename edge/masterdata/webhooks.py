"""ERPNext's Webhooks to pos-edge: how one is verified, what it says, what it makes stale.

Frappe's Webhook doctype, with `enable_security`, sends `X-Frappe-Webhook-Signature`:
base64 of the HMAC-SHA256 of the body with the Webhook's secret (frappe/integrations/
doctype/webhook/webhook.py signs `json.dumps(data)` and sends `json.dumps(data,
default=str)`, the same bytes for a JSON template's data). The body is the Webhook's
rendered `webhook_json`; `pos-edge erpnext setup` writes one naming the doctype, the
document and the event (`payload_template`). Frappe sends it from a background job once
the change is committed, retrying a failed delivery twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SIGNATURE_HEADER = "X-Frappe-Webhook-Signature"
DOCEVENTS = ("after_insert", "on_update", "on_trash")  # the events `erpnext setup` subscribes to
# What a change to a doctype makes stale. A Promotional Scheme saves the Pricing Rules it
# generates, so their own Webhooks cover it.
WATCHED: dict[str, tuple[str, ...]] = {
    "Item": ("products",),
    "Item Price": ("prices",),
    "Pricing Rule": ("campaigns",),
    "Customer": ("customers",),
    "POS Profile": ("settings",),
}


class Notice(BaseModel):
    """A Webhook's body: which document changed, and how."""

    model_config = ConfigDict(extra="ignore", frozen=True)  # a hand-made Webhook may send more

    doctype: str = Field(min_length=1, max_length=140)
    name: str = Field(min_length=1, max_length=140)
    event: Literal["after_insert", "on_update", "on_trash", "on_change", "on_submit", "on_cancel",
                   "on_update_after_submit"] | None = None


def signed(secret: str, body: bytes, signature: str | None) -> bool:
    """True when `signature` (the header's value) is the body's HMAC-SHA256 with `secret`,
    compared in constant time."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), signature.strip().encode("latin-1", "replace"))


def sign(secret: str, body: bytes) -> str:
    """The header value Frappe sends for `body` (for tests and the stand-in)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def payload_template(doctype: str, event: str) -> str:
    """The Webhook's `webhook_json` (a Jinja template Frappe renders with the document)."""
    head = json.dumps({"doctype": doctype, "event": event})[:-1]  # the fixed part, as JSON
    return head + ', "name": {{ doc.name | tojson }}, "modified": {{ doc.modified | tojson }}}'
