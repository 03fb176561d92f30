"""The parameter names Frappe would read from a request into `frappe.form_dict`.

Frappe runs `form_dict.cmd` as a whitelisted method *before* it routes
`/api/...` (frappe/app.py `application`), as the authenticated API user, so a
proxied request that carries a `cmd` anywhere Frappe looks would bypass
`proxy.allow`. frappe/app.py `make_form_dict` fills form_dict from:

- the body parsed as JSON when it is non-empty and the Content-Type is
  `application/json` or `application/*+json` (then the query string is *not* used),
- otherwise the query string, then the form body (`application/x-www-form-urlencoded`
  or `multipart/form-data`).

The names are computed here with Werkzeug, the library Frappe parses requests
with, so every spelling Frappe decodes (percent-encoding, `+`, JSON `\\u0063`
escapes, RFC 2231 multipart names) is decoded the same way. The check is a
superset of make_form_dict: query, JSON keys, form fields and file fields are
all looked at, whichever Frappe would pick.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from werkzeug.wrappers import Request

# A `cmd` name in a raw query string is spelled with the letters (any case) or
# percent-encoded; without either, no decoding can produce it.
_MAYBE_CMD = re.compile(rb"[cC][mM][dD]|%")


class UnreadableBody(Exception):
    """Frappe could not parse this request either (bad encoding, too many parts): refuse it."""


class _FrappeRequest(Request):
    # frappe/app.py sets this class attribute: no cap on a form field's size.
    max_form_memory_size = None


def _request(query: bytes, content_type: bytes | None = None, body: bytes = b"") -> _FrappeRequest:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": query.decode("latin-1"),
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "erpnext",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    if content_type is not None:
        environ["CONTENT_TYPE"] = content_type.decode("latin-1")
    return _FrappeRequest(environ)


def query_names(query: bytes) -> set[str]:
    """Names in a raw query string, decoded as Werkzeug's `request.args` decodes them."""
    if not query or not _MAYBE_CMD.search(query):
        return set()
    try:
        names = set(_request(query).args.keys())
        if b";" in query:  # Werkzeug < 2.3 (and other parsers) split on ';' too
            names |= set(_request(query.replace(b";", b"&")).args.keys())
        return names
    except (UnicodeDecodeError, ValueError) as exc:  # Werkzeug decodes the query as strict UTF-8
        raise UnreadableBody("the query string is not valid UTF-8") from exc


def body_names(content_type: bytes | None, body: bytes) -> set[str]:
    """Top-level names Frappe could read from a request body of this Content-Type."""
    if not body:
        return set()
    request = _request(b"", content_type, body)
    if request.is_json:
        try:
            data = json.loads(request.get_data(as_text=True))
        except (ValueError, RecursionError):
            # Not necessarily unreadable to Frappe (another Python may recurse deeper):
            # what cannot be checked is not forwarded.
            raise UnreadableBody("the JSON body cannot be parsed") from None
        return {str(k) for k in data} if isinstance(data, dict) else set()
    try:
        return set(request.form.keys()) | set(request.files.keys())
    except Exception as exc:  # Werkzeug's own refusals (too many parts, a broken multipart)
        raise UnreadableBody(f"the body cannot be parsed: {type(exc).__name__}") from exc


def names_cmd(names: set[str]) -> bool:
    """Whether any name is `cmd`. Frappe's form_dict is case-sensitive; any case is
    refused here anyway, in case something between us and Frappe folds case."""
    return any(len(n) == 3 and n.lower() == "cmd" for n in names)
