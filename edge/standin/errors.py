"""Frappe-shaped error responses.

Frappe answers an exception with the status of its class (frappe/exceptions.py:
ValidationError 417, DoesNotExistError 404, PermissionError 403,
AuthenticationError 401, DuplicateEntryError 409, ...) and a JSON body holding
`exc_type`, `exception` and, when messages were queued with `frappe.throw`,
`_server_messages`: a JSON string of a list of JSON strings, each an object
with `message` (frappe/utils/response.py, frappe/app.py handle_exception).
"""

from __future__ import annotations

import json

from starlette.responses import JSONResponse

STATUS = {
    "ValidationError": 417,
    "MandatoryError": 417,
    "LinkValidationError": 417,
    "DoesNotExistError": 404,
    "PermissionError": 403,
    "AuthenticationError": 401,
    "DuplicateEntryError": 409,
    "TooManyRequestsError": 429,
    "InternalServerError": 500,
}


def frappe_error(exc_type: str, message: str | None = None, status: int | None = None) -> JSONResponse:
    """A response as Frappe sends it for `frappe.throw(message, exc_type)`."""
    body: dict[str, object] = {
        "exc_type": exc_type,
        "exception": f"frappe.exceptions.{exc_type}" + (f": {message}" if message else ""),
    }
    if message:
        entry = {"message": message, "title": "Message", "indicator": "red", "raise_exception": 1}
        body["_server_messages"] = json.dumps([json.dumps(entry)])
    return JSONResponse(body, status_code=status or STATUS.get(exc_type, 500))
