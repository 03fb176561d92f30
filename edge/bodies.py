"""Reading request bodies with a size limit, over raw ASGI."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from edge.problems import Problem

CLIENT_CLOSED = 499  # the status logged when the till went away (nginx's convention)


class ClientGone(Exception):
    """The client hung up before its request was read: nobody to answer."""


async def read_body(receive: Any, headers: dict[bytes, bytes], limit: int) -> bytes:
    """The request body; 413 as soon as it exceeds `limit` bytes (before reading it all when declared)."""
    declared = headers.get(b"content-length")
    if declared is None and b"transfer-encoding" not in headers:
        return b""  # HTTP/1.1 framing: no length and no chunking means no body (RFC 9112 §6.3)
    if declared is not None:
        try:
            if int(declared) > limit:
                raise Problem("payload_too_large", f"the body exceeds {limit} bytes")
        except ValueError:
            raise Problem("invalid_request", "Content-Length is not a number") from None
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise Problem("payload_too_large", f"the body exceeds {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_json(receive: Any, headers: dict[bytes, bytes], limit: int) -> Any:
    """A JSON body (numbers with a fraction become Decimal: money is never a float here)."""
    ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if ctype not in (b"application/json", b""):
        raise Problem("unsupported_media_type", "send the body as application/json")
    body = await read_body(receive, headers, limit)
    try:
        return json.loads(body, parse_float=Decimal)
    except ValueError:
        raise Problem(
            "validation_failed", "the body is not valid JSON", errors=[{"loc": ["body"], "msg": "invalid JSON"}]
        ) from None
    except RecursionError:  # `[[[[...` well within the size limit: the decoder gives up, cleanly
        raise Problem(
            "validation_failed", "the body is nested too deeply", errors=[{"loc": ["body"], "msg": "nested too deeply"}]
        ) from None
