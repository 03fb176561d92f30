"""The stand-in's Starlette app and its state (sites, documents, faults)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edge.standin import faults
from edge.standin.capacity import Capacity
from edge.standin.clock import local_now, now_text, utc_now
from edge.standin.closing import get_pos_invoices, insert_closing_entry
from edge.standin.custom_fields import insert_custom_field
from edge.standin.errors import FrappeError, frappe_error, server_messages
from edge.standin.form import make_form_dict
from edge.standin.invoices import INVOICE_DOCTYPES, insert_invoice, update_invoice
from edge.standin.listing import get_list
from edge.standin.masters import MASTER_DOCTYPES, delete_doc, insert_master, stamp_rows
from edge.standin.meta import KNOWN_DOCTYPES, keep_known
from edge.standin.opening import insert_opening_entry
from edge.standin.reading import answer_doc, read_doc
from edge.standin.webhooks import WEBHOOK, Deliveries, events_of, insert_webhook, update_webhook

# Methods that Frappe whitelists with allow_guest=True.
GUEST_METHODS = frozenset({"frappe.ping"})


@dataclass
class StandInSite:
    """One Frappe site: its API users, its documents and its clock.

    Two rules of the real ERPNext that the gateway does not meet yet are off by
    default and on for a site imitating the real one (seed_real.py):
    `strict_paid_amount`: a submitted POS Invoice without paid_amount is a 500
    TypeError (off: the payment rows' sum stands in for it); `strict_closing`:
    a POS Closing Entry must name an Open POS Opening Entry (off: one without
    pos_opening_entry is accepted with the pos_profile and period sent).
    `clock` returns the current instant (aware, UTC); tests may pin it.
    """

    name: str
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # api_key -> (api_secret, user)
    docs: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # doctype -> name -> doc
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))
    series: dict[str, int] = field(default_factory=dict)  # naming series prefix -> current (Frappe's tabSeries)
    passwords: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (doctype, name, field): Frappe's __Auth
    clock: Callable[[], datetime] = utc_now
    strict_paid_amount: bool = False
    strict_closing: bool = False

    def insert(self, doctype: str, doc: dict[str, Any], user: str = "Administrator") -> dict[str, Any]:
        """Store a new document the way Frappe's insert() leaves it."""
        now = now_text(self)
        name = doc.get("name") or f"{_abbr(doctype)}-{local_now(self):%Y}-{next(self._counter):05d}"
        stored = {**doc, "name": name, "doctype": doctype, "owner": user, "creation": now, "modified": now,
                  "modified_by": user, "docstatus": int(doc.get("docstatus", 0))}
        self.docs.setdefault(doctype, {})[name] = stored
        return stored


@dataclass
class Recorded:
    """A request as the stand-in received it (for tests to inspect)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    site: str | None
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)  # as sent, repeats included


class StandIn:
    """Sites, a request log, and the faults a test can switch on."""

    def __init__(self, sites: list[StandInSite], default_site: str | None = None) -> None:
        self.sites = {s.name: s for s in sites}
        self.default_site = default_site
        self.requests: list[Recorded] = []
        self.delay = 0.0
        self._failures: list[tuple[int, str, str]] = []
        # added to every response (tests of what a gateway must not pass back)
        self.extra_headers: list[tuple[str, str]] = []
        # seconds a "hang" fault holds the answer back (see fail_after_commit)
        self.hang_seconds = 30.0
        self._after_commit: list[str] = []
        # `cmd` values Frappe's pre-routing dispatch ran (the proxy.allow bypass)
        self.cmd_calls: list[str] = []
        # the next invoice creations are held this many seconds before ERPNext commits (True)
        # or gives up on them (False): a slow commit seen from a client that timed out
        self._slow_commits: list[tuple[float, bool]] = []
        # invoice creations whose body contains a marker fail this many more times
        self._invoice_failures: dict[str, list[tuple[int, str, str]]] = {}
        # Webhooks fired by writes, sent in the background (edge.standin.webhooks)
        self.webhooks = Deliveries()
        # None: every request is served at once; else a site of W workers (edge.standin.capacity)
        self.capacity: Capacity | None = None

    def set_capacity(self, workers: int, write_time: float, read_time: float = 0.0) -> Capacity:
        """Serve like a site with `workers` gunicorn workers: at most that many requests at
        once, the rest in line, a write holding a worker `write_time` seconds, a read
        `read_time`. Returns the model, whose counters say what it went through."""
        self.capacity = Capacity(workers, write_time, read_time)
        return self.capacity

    def fail_next(self, times: int = 1, status: int = 500, exc_type: str = "InternalServerError", message: str = "") -> None:
        """Answer the next `times` requests with a Frappe error instead of serving them."""
        self._failures.extend([(status, exc_type, message)] * times)

    def fail_invoices(self, marker: str, times: int = 1, status: int = 500, exc_type: str = "InternalServerError",
                      message: str = "") -> None:
        """Answer the next `times` creations of an invoice whose request body contains
        `marker` (a transaction id, say) with a Frappe error; nothing is stored."""
        self._invoice_failures.setdefault(marker, []).extend([(status, exc_type, message)] * times)

    def fail_after_commit(self, times: int = 1, mode: str = "drop", hang_seconds: float | None = None) -> None:
        """Store the next `times` invoice creations, then give the client no proper answer.

        mode "drop": send the status, a Content-Length and half the body, then cut the
        connection. mode "hang": hold the answer back `hang_seconds` (default
        `self.hang_seconds`, 30) or until the client hangs up. Creations that fail
        validation are answered normally and do not use up a fault. See faults.py.
        """
        if mode not in faults.MODES:
            raise ValueError(f"mode must be one of {faults.MODES}")
        if hang_seconds is not None:
            self.hang_seconds = hang_seconds
        self._after_commit.extend([mode] * times)

    def slow_commit(self, seconds: float, times: int = 1, commit: bool = True) -> None:
        """Hold the next `times` invoice creations `seconds` before handling them: a client
        with a shorter timeout gives up while ERPNext is still working. `commit`: the invoice
        is then stored (as a slow database would); else it is not (a worker killed by
        gunicorn's timeout: rolled back). Look-ups meanwhile answer at once."""
        self._slow_commits.extend([(seconds, commit)] * times)

    def docs(self, site: str, doctype: str) -> list[dict[str, Any]]:
        """The documents of `doctype` stored on `site`, oldest first (for assertions)."""
        return list(self.sites[site].docs.get(doctype, {}).values())

    def reset(self) -> None:
        """Forget recorded requests and faults (documents stay)."""
        self.requests.clear()
        self.cmd_calls.clear()
        self._failures.clear()
        self._after_commit.clear()
        self._slow_commits.clear()
        self._invoice_failures.clear()
        self.extra_headers.clear()
        self.delay = 0.0
        self.hang_seconds = 30.0
        self.capacity = None

    def site_for(self, request: Request) -> StandInSite | None:
        """Frappe picks the site from X-Frappe-Site-Name, else from the Host header."""
        name = request.headers.get("x-frappe-site-name") or request.headers.get("host", "").split(":")[0]
        return self.sites.get(name) or (self.sites.get(self.default_site) if self.default_site else None)


def _abbr(doctype: str) -> str:
    return "".join(w[0] for w in doctype.split()).upper() if " " in doctype else doctype[:4].upper()


def build_app(standin: StandIn) -> Starlette:
    """The stand-in as an ASGI app."""
    faults.quiet_uvicorn_log()

    async def entry(request: Request) -> Response:
        capacity = standin.capacity
        if capacity is None:
            response = await serve(request)
        else:
            async with capacity.serving(request.method, await request.body()):
                response = await serve(request)
        for name, value in standin.extra_headers:
            response.headers.append(name, value)
        return response

    async def serve(request: Request) -> Response:
        body = await request.body()
        site = standin.site_for(request)
        standin.requests.append(
            Recorded(request.method, request.url.path, request.url.query, dict(request.headers), body,
                     site.name if site else None, list(request.headers.raw))
        )
        if standin.delay:
            await asyncio.sleep(standin.delay)
        if standin._failures:
            status, exc_type, message = standin._failures.pop(0)
            return frappe_error(exc_type, message or None, status)
        if site is None:
            return Response(f"{request.headers.get('host', '')} does not exist", status_code=404)
        user = _authenticate(request, site)
        if isinstance(user, Response):
            return user
        form = make_form_dict(request.method, request.scope["query_string"], request.headers.get("content-type"), body)
        if form and form.get("cmd"):
            # frappe/app.py runs form_dict.cmd before routing /api/...: the allow-list bypass
            standin.cmd_calls.append(str(form["cmd"]))
            return _method(form["cmd"], user, form, site)
        path = request.path_params["path"]
        failure = _invoice_failure(standin, request, path, body)
        if failure is not None:
            return frappe_error(failure[1], failure[2] or None, failure[0])
        if request.url.path.startswith("/api/method/"):
            return _method(path, user, form or {}, site)
        if standin._slow_commits and request.method == "POST" and unquote(path) in INVOICE_DOCTYPES:
            seconds, commit = standin._slow_commits.pop(0)
            await asyncio.sleep(seconds)
            if not commit:
                return frappe_error("InternalServerError", "the worker was killed before it committed")
        before = _before_delete(request.method, path, site)
        try:
            response = _resource(request.method, path, request, body, site, user)
        except FrappeError as e:
            return e.response()
        if response.status_code < 300:
            _fire_webhooks(standin, site, request.method, path, response, before)
        if standin._after_commit and _created_invoice(request, path, response):
            mode = standin._after_commit.pop(0)
            if mode == "drop":
                return faults.DroppedResponse(response.body, status_code=response.status_code,
                                              media_type="application/json")
            await faults.hold(request, standin.hang_seconds)
        return response

    return Starlette(
        routes=[
            Route("/api/resource/{path:path}", entry, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
            Route("/api/method/{path:path}", entry, methods=["GET", "HEAD", "POST"]),
        ]
    )


def _before_delete(method: str, path: str, site: StandInSite) -> dict[str, Any] | None:
    """The document a DELETE is about to remove (its on_trash Webhooks send it)."""
    if method != "DELETE":
        return None
    doctype, _, name = path.partition("/")
    doc = site.docs.get(unquote(doctype), {}).get(unquote(name))
    return dict(doc) if doc is not None else None


def _fire_webhooks(standin: StandIn, site: StandInSite, method: str, path: str, response: Response,
                   before: dict[str, Any] | None) -> None:
    """After a committed write, the Webhooks its document events fire (Frappe's after_commit queue)."""
    events = events_of(method)
    if not events:
        return
    doctype, _, name = path.partition("/")
    doctype, name = unquote(doctype), unquote(name)
    if method == "DELETE":
        doc = before
    else:
        if not name:
            name = str(json.loads(bytes(response.body))["data"]["name"])
        doc = site.docs.get(doctype, {}).get(name)
    if doc is not None:
        standin.webhooks.fire(site, doctype, doc, events)


def _invoice_failure(standin: StandIn, request: Request, path: str, body: bytes) -> tuple[int, str, str] | None:
    if not standin._invoice_failures or request.method != "POST" or unquote(path) not in INVOICE_DOCTYPES:
        return None
    for marker, queue in standin._invoice_failures.items():
        if queue and marker.encode() in body:
            return queue.pop(0)
    return None


def _created_invoice(request: Request, path: str, response: Response) -> bool:
    """Whether this answer reports a newly committed Sales/POS Invoice (what fail_after_commit breaks)."""
    doctype, _, name = path.partition("/")
    return request.method == "POST" and not name and unquote(doctype) in INVOICE_DOCTYPES and response.status_code == 200


def _authenticate(request: Request, site: StandInSite) -> str | Response:
    """frappe.auth.validate_auth: `token key:secret` (or Basic); wrong -> 401, none -> Guest."""
    parts = request.headers.get("authorization", "").split(" ")
    if len(parts) != 2:
        return "Guest"
    kind, value = parts
    if kind.lower() != "token":
        return "Guest"
    key, sep, secret = value.partition(":")
    known = site.users.get(key)
    if not sep or known is None or known[0] != secret:
        return frappe_error("AuthenticationError")
    return known[1]


def _method(dotted: Any, user: str, args: dict[str, Any], site: StandInSite) -> Response:
    """frappe.handler.execute_cmd for the few whitelisted methods the stand-in knows."""
    if not isinstance(dotted, str):
        return frappe_error("ValidationError", f"Failed to get method for command {dotted}")
    if user == "Guest" and dotted not in GUEST_METHODS:
        return frappe_error("PermissionError", "Not permitted")
    if dotted == "frappe.ping":
        return JSONResponse({"message": "pong"})
    if dotted == "frappe.auth.get_logged_user":
        return JSONResponse({"message": user})
    doctype = str(args.get("doctype") or "")
    if dotted in ("frappe.client.get_list", "frappe.client.delete") and doctype not in KNOWN_DOCTYPES:
        return frappe_error("DoesNotExistError", f"DocType {doctype} not found")
    docs = site.docs.setdefault(doctype, {})
    if dotted == "frappe.client.get_list":
        listed = get_list(site, doctype, docs, {k: v for k, v in args.items() if isinstance(v, str)})
        if listed.status_code != 200:
            return listed
        return JSONResponse({"message": json.loads(bytes(listed.body))["data"]})
    if dotted == "frappe.client.delete":
        if str(args.get("name")) not in docs:
            return frappe_error("DoesNotExistError", f"{doctype} {args.get('name')} not found")
        try:
            delete_doc(site, doctype, str(args.get("name")), user)
        except FrappeError as e:
            return e.response()
        return JSONResponse({"message": None})
    if dotted == "erpnext.accounts.doctype.pos_closing_entry.pos_closing_entry.get_pos_invoices":
        try:
            return JSONResponse({"message": get_pos_invoices(site, args)})
        except FrappeError as e:
            return e.response()
    return frappe_error("ValidationError", f"Failed to get method for command {dotted}")


def _resource(method: str, path: str, request: Request, body: bytes, site: StandInSite, user: str) -> Response:
    if user == "Guest":
        return frappe_error("PermissionError", "Not permitted")
    doctype, _, name = path.partition("/")
    doctype, name = unquote(doctype), unquote(name)
    if doctype not in KNOWN_DOCTYPES:
        return frappe_error("DoesNotExistError", f"DocType {doctype} not found")
    docs = site.docs.setdefault(doctype, {})
    if method == "HEAD":
        method = "GET"  # Werkzeug answers HEAD as GET without the body
    if not name:
        if method == "GET":
            return get_list(site, doctype, docs, request.query_params)
        if method == "POST":
            data = _json(body)
            if not isinstance(data, dict):
                return frappe_error("ValidationError", "Invalid request body")
            notes: list[str] = []
            if doctype in INVOICE_DOCTYPES:
                return _answer(insert_invoice(site, doctype, data, user, notes)[1], notes)
            if doctype == "POS Opening Entry":
                return _answer(insert_opening_entry(site, data, user))
            if doctype == "POS Closing Entry":
                return _answer(insert_closing_entry(site, data, user))
            if doctype == "Custom Field":
                return _answer(insert_custom_field(site, data, user))
            if doctype == WEBHOOK:
                return _answer(insert_webhook(site, data, user))
            if doctype in MASTER_DOCTYPES:
                return _answer(insert_master(site, doctype, data, user, notes), notes)
            if data.get("name") in docs:
                return frappe_error("DuplicateEntryError", f"{doctype} {data['name']} already exists")
            return _answer(site.insert(doctype, data, user))
        return frappe_error("ValidationError", f"Method {method} not allowed on a list")
    if method == "DELETE":
        return delete_doc(site, doctype, name, user)
    doc = docs.get(name)
    if doc is None:
        return frappe_error("DoesNotExistError", f"{doctype} {name} not found")
    if method == "GET":
        return JSONResponse({"data": read_doc(doc, drop_nulls=True)})
    if method == "PUT":
        data = _json(body)
        if not isinstance(data, dict):
            return frappe_error("ValidationError", "Invalid request body")
        if doctype in INVOICE_DOCTYPES:
            notes = []
            return _answer(update_invoice(site, doctype, doc, data, user, notes), notes)
        if doctype == WEBHOOK:
            return _answer(update_webhook(site, doc, data))
        if doctype in MASTER_DOCTYPES:
            data = keep_known(site, doctype, data)
        doc.update({k: v for k, v in data.items() if k not in ("name", "doctype", "owner", "creation")})
        doc["modified"] = now_text(site)
        if doctype in MASTER_DOCTYPES:
            stamp_rows(doctype, doc)
        return _answer(doc)
    return frappe_error("ValidationError", f"Method {method} not allowed")


def _answer(doc: dict[str, Any], notes: list[str] | None = None) -> JSONResponse:
    """A document answer (nulls left out), with the messages printed on the way (`_server_messages`)."""
    body: dict[str, Any] = {"data": answer_doc(doc)}
    if notes:
        body["_server_messages"] = server_messages(notes)
    return JSONResponse(body)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return None


