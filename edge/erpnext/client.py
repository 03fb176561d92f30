"""Frappe REST v1 calls over the tenant's pooled aiohttp session, with error mapping.

Frappe answers an exception with the status of its class and a body holding
`exc_type` and `_server_messages` (a JSON string of a list of JSON strings, each
`{"message": ...}`); see frappe/app.py handle_exception, frappe/utils/response.py.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import aiohttp

from edge.config import ErpnextConfig
from edge.shield.breaker import Breaker
from edge.upstream import Upstreams, timeout_for


class FrappeError(Exception):
    """ERPNext answered with an error status."""

    def __init__(self, status: int, exc_type: str | None, messages: list[str]) -> None:
        super().__init__(f"{status} {exc_type}: {'; '.join(messages)}")
        self.status = status
        self.exc_type = exc_type
        self.messages = messages


class Unreachable(Exception):
    """No answer from ERPNext. `sent` tells whether the request may have reached it
    (then its outcome is unknown); `timeout` whether it was a deadline."""

    def __init__(self, detail: str, *, sent: bool, timeout: bool) -> None:
        super().__init__(detail)
        self.sent = sent
        self.timeout = timeout


class BreakerOpen(Unreachable):
    """Not sent: the tenant's circuit breaker is open (its ERPNext failed call after call).
    `retry_after`: seconds until a call may go again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"ERPNext is failing; calls resume in {retry_after:.0f} s", sent=False, timeout=False)
        self.retry_after = retry_after


# Answers that say the site is down or drowning, not that a document is wrong.
OUTAGE_STATUSES = frozenset({429, 502, 503, 504})


def is_outage(exc: BaseException) -> bool:
    """Whether a failed call counts against the tenant's breaker: no answer, or an answer
    from a site (or the proxy in front of it) that cannot serve. Frappe's own 500s carry
    an exc_type and are mostly about the document (an unknown customer is a TypeError)."""
    if isinstance(exc, BreakerOpen):
        return False
    if isinstance(exc, Unreachable):
        return True
    if isinstance(exc, FrappeError):
        return exc.status in OUTAGE_STATUSES or (exc.status == 500 and exc.exc_type is None)
    return False


def server_messages(body: Any) -> list[str]:
    """Decode Frappe's `_server_messages` (and `message`/`exception` as fall-backs)."""
    if not isinstance(body, dict):
        return []
    out: list[str] = []
    raw = body.get("_server_messages")
    if isinstance(raw, str):
        try:
            for item in json.loads(raw):
                entry = json.loads(item) if isinstance(item, str) else item
                msg = entry.get("message") if isinstance(entry, dict) else entry
                if msg:
                    out.append(str(msg))
        except (ValueError, TypeError, AttributeError):
            pass
    if not out and isinstance(body.get("exception"), str):
        out.append(body["exception"].split(": ", 1)[-1])
    return out


class ErpnextClient:
    """One tenant's ERPNext: authenticated JSON calls, errors as exceptions."""

    def __init__(self, upstreams: Upstreams, cfg: ErpnextConfig, breaker: Breaker | None = None) -> None:
        self._upstreams = upstreams
        self.breaker = breaker
        self._origin = cfg.origin
        self._timeout = timeout_for(cfg.timeout)
        self.timeout_seconds = cfg.timeout
        headers = {
            "Authorization": f"token {cfg.api_key.get_secret_value()}:{cfg.api_secret.get_secret_value()}",
            "Accept": "application/json",
        }
        if cfg.site_name:
            headers["Host"] = cfg.site_name
            headers["X-Frappe-Site-Name"] = cfg.site_name
        self._headers = headers

    async def call(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Any:
        """One REST call; returns the parsed JSON (fractions as Decimal). Raises BreakerOpen,
        without sending, while the tenant's breaker is open."""
        breaker = self.breaker
        if breaker is None:
            return await self._call(method, path, params, body)
        wait = breaker.admit()
        if wait is not None:
            raise BreakerOpen(wait)
        try:
            answer = await self._call(method, path, params, body)
        except (Unreachable, FrappeError) as exc:
            if is_outage(exc):
                breaker.failure()
            else:
                breaker.success()
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.success()
        return answer

    async def _call(self, method: str, path: str, params: dict[str, str] | None, body: Any) -> Any:
        data = None
        headers = self._headers
        if body is not None:
            data = json.dumps(body, default=_wire_number).encode()
            headers = {**headers, "Content-Type": "application/json"}
        session = self._upstreams.enter(self._origin)
        try:
            async with session.request(
                method, self._origin + path, params=params, data=data, headers=headers,
                allow_redirects=False, timeout=self._timeout,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:  # never connected: nothing was sent
            raise Unreachable(f"cannot connect: {type(exc).__name__}", sent=False, timeout=False) from None
        except aiohttp.ConnectionTimeoutError:
            raise Unreachable("connect timed out", sent=False, timeout=True) from None
        except TimeoutError:
            raise Unreachable(f"no answer within {self.timeout_seconds:g} s", sent=True, timeout=True) from None
        except aiohttp.ClientError as exc:  # dropped after sending: outcome unknown
            raise Unreachable(f"connection lost: {type(exc).__name__}", sent=True, timeout=False) from None
        finally:
            self._upstreams.leave(self._origin)
        try:
            parsed = json.loads(raw, parse_float=Decimal) if raw else None
        except ValueError:
            parsed = None
        if status >= 400:
            exc_type = parsed.get("exc_type") if isinstance(parsed, dict) else None
            raise FrappeError(status, exc_type, server_messages(parsed) or [raw[:200].decode("utf-8", "replace")])
        return parsed

    @staticmethod
    def resource(doctype: str, name: str | None = None) -> str:
        """`/api/resource/<DocType>[/<name>]`, URL-encoded."""
        path = "/api/resource/" + quote(doctype, safe="")
        return path + "/" + quote(name, safe="") if name is not None else path

    async def get_doc(self, doctype: str, name: str) -> dict[str, Any] | None:
        """The document, or None when ERPNext says it does not exist."""
        try:
            return (await self.call("GET", self.resource(doctype, name)))["data"]
        except FrappeError as exc:
            if exc.exc_type == "DoesNotExistError":  # not any 404: a wrong site is a 404 too
                return None
            raise

    async def find(self, doctype: str, filters: list[list[Any]], fields: list[str], limit: int = 20,
                   order_by: str | None = None, start: int = 0) -> list[dict[str, Any]]:
        """frappe.client.get_list through the resource API (`limit` 0: all rows, from row
        `start`). A field of a child table (`payments.amount`) gives one row per child row."""
        params = {
            "filters": json.dumps(filters, default=_wire_number),
            "fields": json.dumps(fields),
            "limit_page_length": str(limit),
        }
        if start:
            params["limit_start"] = str(start)
        if order_by:
            params["order_by"] = order_by
        return (await self.call("GET", self.resource(doctype), params=params))["data"]

    async def insert(self, doctype: str, doc: dict[str, Any]) -> dict[str, Any]:
        """Create (and with docstatus 1, submit) a document. What ERPNext said while
        accepting it (`_server_messages` beside `data`: e.g. a return row it did not
        check) comes back decoded in the document's `_server_messages`."""
        answer = await self.call("POST", self.resource(doctype), body=doc)
        created: dict[str, Any] = answer["data"]
        said = server_messages({"_server_messages": answer.get("_server_messages")})
        if said:
            created["_server_messages"] = said
        return created

    async def update(self, doctype: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Save changes to a document (`PUT /api/resource/<DocType>/<name>`)."""
        answer = await self.call("PUT", self.resource(doctype, name), body=changes)
        updated: dict[str, Any] = answer["data"]
        return updated


def to_json(obj: Any) -> bytes:
    """JSON bytes with Decimals as numbers (see _wire_number)."""
    return json.dumps(obj, default=_wire_number, separators=(",", ":")).encode()


def _wire_number(value: Any) -> Any:
    # Frappe parses request JSON with the json module, so every number becomes a
    # Python float on its side anyway; a Decimal goes out as the float whose
    # shortest repr is the same digits (exact for money's <= 15 significant digits).
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")
