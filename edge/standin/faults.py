"""Faults after commit: the document is stored, but the client never gets a proper answer.

This is what a gateway sees when ERPNext committed an invoice and then the
connection broke (worker killed, proxy reset) or the answer came too late: a
retry must not create the invoice twice.

- "drop": the response starts (status, Content-Length of the full body), half of
  the body is sent, then the ASGI app raises. uvicorn, seeing an exception after
  the response started, closes the connection instead of sending a 500
  (uvicorn/protocols/http/*_impl.py run_asgi), so the client reads a short body:
  httpx RemoteProtocolError, aiohttp ClientPayloadError.
- "hang": the answer is held back for `hang_seconds` (or until the client hangs
  up), so a client with a shorter timeout times out.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

MODES = ("drop", "hang")


class ConnectionDropped(Exception):
    """Raised inside the ASGI send sequence to make uvicorn cut the connection."""


class DroppedResponse(Response):
    """Sends the start of `body` (with the full Content-Length) and then breaks the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True})
        raise ConnectionDropped("stand-in fault: connection dropped after commit")


class _QuietDrops(logging.Filter):
    """Keep uvicorn's "Exception in ASGI application" traceback out of the log for deliberate drops."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def quiet_uvicorn_log() -> None:
    """Install the filter on uvicorn's error logger once."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in logger.filters):
        logger.addFilter(_QuietDrops())


async def hold(request: Request, seconds: float) -> None:
    """Wait `seconds`, or less if the client disconnects first (its body was already read)."""
    waiter = asyncio.ensure_future(request.receive())
    try:
        deadline = asyncio.get_running_loop().time() + seconds
        while not waiter.done():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await asyncio.wait({waiter}, timeout=remaining)
            if waiter.done() and waiter.result().get("type") != "http.disconnect":
                waiter = asyncio.ensure_future(request.receive())
    finally:
        if not waiter.done():
            waiter.cancel()
