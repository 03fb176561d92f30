"""Frappe-shaped error responses.

Frappe answers an exception with the status of its class (frappe/exceptions.py:
ValidationError 417 and its subclasses MandatoryError, LinkValidationError,
DataError, UniqueValidationError...; DoesNotExistError 404, PermissionError 403,
AuthenticationError 401, DuplicateEntryError 409; anything else, e.g. a Python
TypeError inside a controller, 500) and a JSON body holding `exc_type`,
`exception` (the last line of the traceback) and, when messages were queued
with `frappe.throw` / `frappe.msgprint`, `_server_messages`: a JSON string of a
list of JSON strings, each an object with `message` (frappe/utils/response.py
report_error, frappe/app.py handle_exception).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from starlette.responses import JSONResponse

STATUS = {
    "ValidationError": 417,
    "MandatoryError": 417,
    "LinkValidationError": 417,
    "CancelledLinkError": 417,
    "DataError": 417,
    "UniqueValidationError": 417,
    "UpdateAfterSubmitError": 417,
    "DocstatusTransitionError": 417,
    "DoesNotExistError": 404,
    "PermissionError": 403,
    "AuthenticationError": 401,
    "DuplicateEntryError": 409,
    "LinkExistsError": 417,
    "TooManyRequestsError": 429,
    "InternalServerError": 500,
    # erpnext's own ValidationError subclasses the stand-in raises
    "PartialPaymentValidationError": 417,
    "StockOverReturnError": 417,
    "NegativeStockError": 417,
}

# Where erpnext defines an exception class (the traceback's last line names its module).
MODULES = {
    "PartialPaymentValidationError": "erpnext.accounts.doctype.pos_invoice.pos_invoice",
    "StockOverReturnError": "erpnext.controllers.sales_and_purchase_return",
    "NegativeStockError": "erpnext.stock.stock_ledger",
}

# Python built-ins that escape ERPNext controllers: no msgprint, status 500, and
# the traceback's last line is "TypeError: ..." rather than "frappe.exceptions.X: ...".
BUILTIN_EXCEPTIONS = frozenset({"TypeError", "KeyError", "AttributeError", "ValueError", "IndexError"})


class FrappeError(Exception):
    """Raised by the stand-in's document logic; turned into a Frappe error response."""

    def __init__(
        self,
        exc_type: str,
        message: str | None = None,
        status: int | None = None,
        *,
        messages: Sequence[str | list[str]] | None = None,
        exception: str | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(message or exception or exc_type)
        self.exc_type = exc_type
        self.message = message
        self.status = status
        self.messages = messages
        self.exception = exception
        self.title = title

    def response(self) -> JSONResponse:
        """The error as Frappe sends it for `frappe.throw(message, exc_type)`.

        `messages` queues several msgprints (e.g. one per missing mandatory field; a
        list entry is one `frappe.throw([...], as_list=True)` message);
        `exception` overrides the exception line when Frappe raises with a different
        text than it printed (MandatoryError does).
        """
        builtin = self.exc_type in BUILTIN_EXCEPTIONS
        exception = self.exception
        if exception is None:
            module = "" if builtin else MODULES.get(self.exc_type, "frappe.exceptions") + "."
            exception = module + self.exc_type + (f": {self.message}" if self.message else "")
        body: dict[str, object] = {"exc_type": self.exc_type, "exception": exception}
        if self.messages is not None:
            shown = list(self.messages)
        else:
            shown = [self.message] if self.message and not builtin else []
        if shown:
            body["_server_messages"] = server_messages(shown, self.title, raise_exception=True)
        return JSONResponse(body, status_code=self.status or STATUS.get(self.exc_type, 500))


def server_messages(messages: Sequence[str | list[str]], title: str | None = None, *,
                    raise_exception: bool = False) -> str:
    """`_server_messages` for msgprints: a JSON list of JSON objects. A message that did not
    raise can still ride on a 200 answer (a return row without its sales_invoice_item, ret-b)."""
    entries = [{"message": m, "title": title or "Message", "indicator": "red" if raise_exception else "blue",
                **({"raise_exception": 1} if raise_exception else {}),
                **({"as_list": 1} if isinstance(m, list) else {})} for m in messages]
    return json.dumps([json.dumps(e) for e in entries])


def frappe_error(exc_type: str, message: str | None = None, status: int | None = None, **kw: Any) -> JSONResponse:
    """A Frappe error response (see FrappeError.response for the keyword arguments)."""
    return FrappeError(exc_type, message, status, **kw).response()
