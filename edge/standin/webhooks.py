"""Frappe's Webhook doctype on the stand-in: stored, and delivered, as Frappe 15 does
(frappe/integrations/doctype/webhook/{webhook.py,__init__.py}).

Insert (recorded: tests/fixtures/real_erpnext/masterdata/webhooks.json): `webhook_doctype`
must be a known doctype (LinkValidationError), the name is the caller's (naming "Set by
user"; none: 417 "Please set the document name"), an event of a submittable document on
one that is not is refused, `request_url` must have a host ("Check Request URL"),
`enable_security` needs a secret ("Invalid Webhook Secret"), a taken name is 409
DuplicateEntryError "Duplicate Name". The secret is kept apart, as Frappe keeps Password fields in __Auth,
and the document answers it as asterisks of its length. Conditions are not evaluated
here: a Webhook with one is refused (honestly, rather than fired when it should not).

Delivery, after the write is answered (Frappe enqueues it after commit; an RQ worker
sends it): every enabled Webhook of the document's doctype and event; an insert fires
`after_insert` and `on_update`, a save `on_update`, a delete `on_trash`. The body is
`json.dumps(data, default=str)` of the rendered `webhook_json` (JSON) or the
`webhook_data` rows (key: the document's field); with security,
`X-Frappe-Webhook-Signature` is base64(HMAC-SHA256(secret, json.dumps(data))). No
Content-Type unless a `webhook_headers` row sets one (requests sets none for a str body).
Three tries, each failure then sleeping 3*i+1 s; each try is logged (Webhook Request Log).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import aiohttp
from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from edge.standin.clock import now_text
from edge.standin.errors import FrappeError
from edge.standin.masters import stamp_rows
from edge.standin.meta import KNOWN_DOCTYPES

if TYPE_CHECKING:
    from edge.standin.app import StandInSite

WEBHOOK = "Webhook"
SIGNATURE_HEADER = "X-Frappe-Webhook-Signature"
DOCEVENTS = ("after_insert", "on_update", "on_submit", "on_cancel", "on_trash", "on_update_after_submit", "on_change")
SUBMIT_EVENTS = ("on_submit", "on_cancel", "on_update_after_submit")
SUBMITTABLE = frozenset({"Sales Invoice", "POS Invoice", "POS Opening Entry", "POS Closing Entry"})
_JINJA = SandboxedEnvironment()  # Frappe renders webhook_json in a sandbox too
FIELDS = frozenset({"name", "webhook_doctype", "webhook_docevent", "enabled", "condition", "request_url",
                    "is_dynamic_url", "timeout", "background_jobs_queue", "request_method", "request_structure",
                    "enable_security", "webhook_secret", "webhook_headers", "webhook_data", "webhook_json"})


@dataclass(frozen=True)
class Delivery:
    """One try at sending a Webhook (what Frappe's Webhook Request Log holds)."""

    webhook: str
    reference_document: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # None: no answer (refused, timed out)
    error: str | None


def _mask(secret: str) -> str:
    return "*" * len(secret)


def _validate(doc: dict[str, Any], secret: str | None) -> None:
    """Webhook.validate, in Frappe's order (the link to the doctype is checked before it)."""
    if doc.get("webhook_docevent") not in DOCEVENTS:
        raise FrappeError("ValidationError", f"Doc Event cannot be \"{doc.get('webhook_docevent')}\". It should be "
                          f"one of {', '.join(repr(e) for e in DOCEVENTS)}")
    if doc["webhook_docevent"] in SUBMIT_EVENTS and doc.get("webhook_doctype") not in SUBMITTABLE:
        raise FrappeError("ValidationError", "DocType must be Submittable for the selected Doc Event")
    if doc.get("condition"):
        raise FrappeError("ValidationError", "the stand-in evaluates no Webhook conditions")
    if not urlparse(str(doc.get("request_url") or "")).netloc:
        raise FrappeError("ValidationError", "Check Request URL")
    if doc.get("request_structure") == "JSON":
        try:
            _JINJA.parse(doc.get("webhook_json") or "")
        except TemplateSyntaxError as exc:
            raise FrappeError("ValidationError", f"Syntax error in template: {exc}") from None
    if int(doc.get("enable_security") or 0) and not secret:
        raise FrappeError("ValidationError", "Invalid Webhook Secret")


def _link(doc: dict[str, Any]) -> None:
    doctype = doc.get("webhook_doctype")
    if doctype and doctype not in KNOWN_DOCTYPES:
        raise FrappeError("LinkValidationError", f"Could not find DocType: {doctype}")


def _secret_of(site: StandInSite, name: str, given: Any) -> str | None:
    """The secret after a write: a new one if given (not the asterisks read back), else the kept one."""
    if isinstance(given, str) and given and given != _mask(given):
        return given
    return site.passwords.get((WEBHOOK, name, "webhook_secret"))


def _keep_secret(site: StandInSite, doc: dict[str, Any], secret: str | None) -> None:
    if secret:
        site.passwords[(WEBHOOK, doc["name"], "webhook_secret")] = secret
        doc["webhook_secret"] = _mask(secret)


# Fields every answer carries: the doctype's defaults and its two virtual fields (with no
# condition and no preview document, as recorded)
DEFAULTS = {"idx": 0, "enabled": 1, "request_method": "POST", "enable_security": 0, "timeout": 5, "is_dynamic_url": 0,
            "meets_condition": "Yes", "preview_request_body": "Select a document to preview request data",
            "webhook_headers": [], "webhook_data": []}


def insert_webhook(site: StandInSite, data: dict[str, Any], user: str) -> dict[str, Any]:
    """POST /api/resource/Webhook."""
    doc = {**DEFAULTS, **{k: v for k, v in data.items() if k in FIELDS}}
    _link(doc)
    name = doc.get("name")
    if not name:
        raise FrappeError("ValidationError", "Please set the document name")
    secret = _secret_of(site, name, data.get("webhook_secret"))
    _validate(doc, secret)
    if not doc.get("webhook_doctype") or not doc.get("request_url"):
        missing = [f for f in ("webhook_doctype", "request_url") if not doc.get(f)]
        raise FrappeError("MandatoryError", exception=f"frappe.exceptions.MandatoryError: [Webhook, {name}]: "
                          + ", ".join(missing), messages=[f"Error: Value missing for Webhook: {m}" for m in missing])
    if name in site.docs.get(WEBHOOK, {}):
        raise FrappeError("DuplicateEntryError", f"Webhook <strong>{name}</strong> already exists",
                          exception=f"frappe.exceptions.DuplicateEntryError: ('Webhook', '{name}', IntegrityError("
                                    f"1062, \"Duplicate entry '{name}' for key 'PRIMARY'\"))", title="Duplicate Name")
    _keep_secret(site, doc, secret)
    stored = site.insert(WEBHOOK, doc, user)
    stamp_rows(WEBHOOK, stored)
    return stored


def update_webhook(site: StandInSite, doc: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """PUT /api/resource/Webhook/<name>: child tables sent are replaced whole."""
    merged = {**doc, **{k: v for k, v in data.items() if k in FIELDS and k not in ("name", "owner", "creation")}}
    _link(merged)
    secret = _secret_of(site, doc["name"], data.get("webhook_secret"))
    _validate(merged, secret)
    _keep_secret(site, merged, secret)
    merged["modified"] = now_text(site)
    doc.clear()
    doc.update(merged)
    stamp_rows(WEBHOOK, doc)
    return doc


def events_of(method: str) -> tuple[str, ...]:
    """The document events a successful write fires."""
    return {"POST": ("after_insert", "on_update"), "PUT": ("on_update",), "DELETE": ("on_trash",)}.get(method, ())


def _data(hook: dict[str, Any], doc: dict[str, Any]) -> Any:
    if hook.get("webhook_data"):
        return {row.get("key"): doc.get(row.get("fieldname")) for row in hook["webhook_data"]}
    if hook.get("webhook_json"):
        return json.loads(_JINJA.from_string(hook["webhook_json"]).render(doc=doc))
    return {}


class Deliveries:
    """The stand-in's RQ worker for Webhooks: sends them in the background, logs each try."""

    def __init__(self) -> None:
        self.log: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.retry_sleep = True  # Frappe's 1/4/7 s sleeps between tries (tests may skip them)

    def fire(self, site: StandInSite, doctype: str, doc: dict[str, Any], events: tuple[str, ...]) -> None:
        """Queue every enabled Webhook of `doctype` for these events, with the document as it is now."""
        hooks = [h for h in site.docs.get(WEBHOOK, {}).values()
                 if h.get("webhook_doctype") == doctype and int(h.get("enabled") or 0)
                 and h.get("webhook_docevent") in events]
        for hook in hooks:
            secret = site.passwords.get((WEBHOOK, hook["name"], "webhook_secret"))
            task = asyncio.ensure_future(self._send(dict(hook), dict(doc), secret))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, hook: dict[str, Any], doc: dict[str, Any], secret: str | None) -> None:
        try:
            data = _data(hook, doc)
        except Exception as exc:  # Frappe logs the request it could not build, and gives up
            self.log.append(Delivery(hook["name"], doc.get("name", ""), hook["request_url"], {}, b"", None,
                                     f"{type(exc).__name__}: {exc}"))
            return
        headers: dict[str, str] = {}
        if int(hook.get("enable_security") or 0) and secret:
            digest = hmac.new(secret.encode(), json.dumps(data).encode(), hashlib.sha256).digest()
            headers[SIGNATURE_HEADER] = base64.b64encode(digest).decode()
        for row in hook.get("webhook_headers") or []:
            if row.get("key") and row.get("value"):
                headers[row["key"]] = row["value"]
        body = json.dumps(data, default=str).encode()
        timeout = aiohttp.ClientTimeout(total=float(hook.get("timeout") or 5))
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for attempt in range(3):
                status: int | None = None
                error: str | None = None
                try:
                    async with session.request(hook.get("request_method") or "POST", hook["request_url"], data=body,
                                               headers=headers, skip_auto_headers=("Content-Type",)) as resp:
                        status = resp.status
                        await resp.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = type(exc).__name__
                self.log.append(Delivery(hook["name"], doc.get("name", ""), hook["request_url"], headers, body,
                                         status, error))
                if status is not None and status < 400:
                    return
                if error == "TimeoutError":
                    continue  # requests' ReadTimeout: tried again at once
                if self.retry_sleep:
                    await asyncio.sleep(3 * attempt + 1)

    async def settle(self) -> None:
        """Wait for the deliveries under way (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
