"""Frappe's request arguments (`frappe.form_dict`) and its `cmd` dispatch.

frappe/app.py `make_form_dict`, imitated line for line with the same library
(Werkzeug): a non-empty body whose Content-Type is JSON is the whole form_dict
(the query string is then ignored); otherwise the query string's arguments,
then the form body's (urlencoded or multipart fields; for repeated names the
first value wins, as dict.update over a Werkzeug MultiDict gives). `application`
then runs `form_dict.cmd`, when it is truthy, before any `/api/` routing: the
bypass pos-edge must never let through (edge.erpnext.form_dict), which the
stand-in imitates so that a regression would show.
"""

from __future__ import annotations

import io
import json
from typing import Any

from werkzeug.wrappers import Request


class _Request(Request):
    max_form_memory_size = None  # frappe/app.py: `Request.max_form_memory_size = None`


def make_form_dict(method: str, query: bytes, content_type: str | None, body: bytes) -> dict[str, Any] | None:
    """form_dict as Frappe builds it, or None where Frappe answers an error (invalid JSON)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "QUERY_STRING": query.decode("latin-1"),
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "standin",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
    }
    if content_type:
        environ["CONTENT_TYPE"] = content_type
    request = _Request(environ)
    request_data = request.get_data(as_text=True)
    if request_data and request.is_json:
        try:
            args: Any = json.loads(request_data)
        except ValueError:
            return None
    else:
        args = {}
        args.update(request.args or {})
        args.update(request.form or {})
    if isinstance(args, dict):
        args.pop("_", None)
        return args
    if isinstance(args, list):
        return {"data": args}
    return None
