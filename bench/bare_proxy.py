"""The bare-proxy ceiling for `bench/proxy.py`: raw ASGI + one aiohttp session.

No Starlette, no plugins, no logging: every GET is forwarded to
``$BARE_PROXY_UPSTREAM`` + the request path (and query string) and the answer is
sent back in two plain ASGI messages. It measures what uvicorn + aiohttp alone
cost per proxied request, the ceiling the full pos-edge chain is compared with.

Run (same uvicorn settings as ``pos-edge serve``)::

    BARE_PROXY_UPSTREAM=http://127.0.0.1:8001 python -m uvicorn bench.bare_proxy:app \\
        --host 127.0.0.1 --port 8002 --no-access-log --no-proxy-headers --no-server-header
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from yarl import URL

from edge.upstream import HOP_BY_HOP  # the same hygiene as pos-edge; imported once, at start-up

UPSTREAM = os.environ.get("BARE_PROXY_UPSTREAM", "http://127.0.0.1:8001").rstrip("/")

DROP = HOP_BY_HOP | {b"content-length", b"date"}

_session: aiohttp.ClientSession | None = None


async def _lifespan(receive: Any, send: Any) -> None:
    global _session
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _session is not None:
                await _session.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _plain(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The whole proxy."""
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(receive, send)
        return
    if kind != "http":
        return
    if scope["method"] != "GET":
        await _plain(send, 405, b"GET only\n")
        return
    assert _session is not None, "lifespan startup did not run"
    path = scope.get("raw_path") or scope["path"].encode()
    qs = scope.get("query_string") or b""
    url = URL(UPSTREAM + path.decode("latin-1") + ("?" + qs.decode("latin-1") if qs else ""), encoded=True)
    try:
        async with _session.get(url, allow_redirects=False) as upstream:
            body = await upstream.read()
            headers = [
                (name.lower(), value)
                for name, value in upstream.raw_headers
                if name.lower() not in DROP
            ]
            status = upstream.status
    except aiohttp.ClientError:
        await _plain(send, 502, b"upstream unreachable\n")
        return
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
