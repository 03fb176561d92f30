"""Pooled aiohttp sessions per ERPNext origin, and header hygiene.

Every call to an ERPNext goes through the one `ClientSession` of its origin:
keep-alive connections are reused across requests and tenants that share a
server. aiohttp rather than httpx on this path: DESIGN.md measured httpx's
pool at ~5x the CPU per request (it polls each idle connection per request,
encode/httpx#3215).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import aiohttp

# RFC 9110 §7.6.1 hop-by-hop fields (plus the legacy Proxy-Connection).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Never forwarded from a till: its credentials and cookies (ERPNext gets the
# tenant's token instead), its Host (a Frappe server picks the *site* by Host or
# X-Frappe-Site-Name, so the till must not choose it), forwarding and client-address
# headers, which we set ourselves or which an upstream might believe, and the
# method-override and URL-rewrite headers some frameworks act on.
DROP_FROM_TILL = HOP_BY_HOP | {
    b"host",
    b"authorization",
    b"cookie",
    b"content-length",
    b"expect",
    b"forwarded",
    b"x-forwarded-for",
    b"x-forwarded-host",
    b"x-forwarded-proto",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"x-forwarded-server",
    b"x-forwarded-scheme",
    b"x-scheme",
    b"x-real-ip",
    b"x-client-ip",
    b"client-ip",
    b"true-client-ip",
    b"x-cluster-client-ip",
    b"cf-connecting-ip",
    b"x-request-id",
    b"x-frappe-site-name",
    b"x-frappe-cmd",
    b"x-http-method-override",
    b"x-http-method",
    b"x-method-override",
    b"x-original-method",
    b"x-original-url",
    b"x-rewrite-url",
}

# Never passed back to a till: ERPNext session cookies belong to the gateway's
# API user, not to the till; length and Date are set by our own server, and the
# request id is ours; and nothing that names the server or site behind us.
DROP_FROM_UPSTREAM = HOP_BY_HOP | {
    b"set-cookie",
    b"content-length",
    b"date",
    b"x-request-id",
    b"server",
    b"via",
    b"x-powered-by",
    b"x-frappe-site-name",
    b"x-served-by",
    b"x-backend-server",
    b"x-upstream",
}


def connection_named(values: Iterable[bytes]) -> frozenset[bytes]:
    """Extra hop-by-hop names listed in `Connection` headers (every one of them: a
    header may be sent more than once, and each names hop-by-hop fields)."""
    return frozenset(p.strip().lower() for value in values for p in value.split(b",") if p.strip())


def request_headers(
    raw: Iterable[tuple[bytes, bytes]], extra_drop: frozenset[bytes]
) -> list[tuple[str, str]]:
    """The till's headers that may travel upstream, as str pairs for aiohttp.

    A name with an underscore never travels: WSGI servers file `X_Frappe_Site_Name`
    and `X-Frappe-Site-Name` under one environ key (HTTP_X_FRAPPE_SITE_NAME), so it
    would smuggle a header we strip. nginx drops them by default too.
    """
    out = []
    for name, value in raw:
        if name in DROP_FROM_TILL or name in extra_drop or b"_" in name:
            continue
        out.append((name.decode("latin-1"), value.decode("latin-1")))
    return out


def response_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """ERPNext's response headers minus hop-by-hop ones and those naming the upstream,
    lower-cased for ASGI."""
    out = []
    connection: list[bytes] = []
    for name, value in raw:
        name = name.lower()
        if name in DROP_FROM_UPSTREAM or b"_" in name:
            if name == b"connection":
                connection.append(value)
            continue
        out.append((name, value))
    if connection:
        named = connection_named(connection)
        out = [(n, v) for n, v in out if n not in named]
    return out


class Upstreams:
    """One keep-alive ClientSession per ERPNext origin, opened at start-up, closed at shut-down.

    Calls bracket their use of a session with enter()/leave(), so an origin that a
    config reload removed (retire()) is closed once its last call has ended, never
    under a call in flight.
    """

    def __init__(self, pool_size: int = 256) -> None:
        self._pool_size = pool_size
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._inflight: dict[str, int] = {}
        self._retired: set[str] = set()
        self._closing: set[asyncio.Task[None]] = set()

    def session(self, origin: str) -> aiohttp.ClientSession:
        """The session for `origin` (scheme://host:port), created on first use."""
        s = self._sessions.get(origin)
        if s is None or s.closed:
            s = self._sessions[origin] = aiohttp.ClientSession(
                base_url=None,
                connector=aiohttp.TCPConnector(
                    limit=self._pool_size, keepalive_timeout=30, ttl_dns_cache=300
                ),
                # The body goes back to the till exactly as ERPNext encoded it.
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return s

    def enter(self, origin: str) -> aiohttp.ClientSession:
        """The session for a call about to start; pair with leave(origin)."""
        self._inflight[origin] = self._inflight.get(origin, 0) + 1
        return self.session(origin)

    def leave(self, origin: str) -> None:
        """A call on `origin` ended (its response released)."""
        left = self._inflight[origin] = self._inflight[origin] - 1
        if left == 0 and origin in self._retired:
            # Also after a late call from an older config snapshot reopened the pool.
            self._close_soon(origin)

    def in_flight(self, origin: str) -> int:
        """Calls on `origin` that have not ended."""
        return self._inflight.get(origin, 0)

    def keep(self, origins: Iterable[str]) -> None:
        """Origins the current configuration uses: never closed by an earlier retire()."""
        self._retired.difference_update(origins)

    def retire(self, origins: Iterable[str]) -> None:
        """Close these origins' sessions once no call is using them."""
        for origin in origins:
            self._retired.add(origin)
            if not self._inflight.get(origin):
                self._close_soon(origin)

    def _close_soon(self, origin: str) -> None:
        # The origin stays retired until a config uses it again (keep()).
        session = self._sessions.pop(origin, None)
        if session is not None:
            task = asyncio.get_running_loop().create_task(session.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def is_open(self, origin: str) -> bool:
        """Whether a session for `origin` exists (for tests and diagnostics)."""
        return origin in self._sessions and not self._sessions[origin].closed

    async def close(self, origins: Iterable[str] | None = None) -> None:
        """Close the sessions of `origins` (all when None)."""
        names = list(self._sessions) if origins is None else [o for o in origins if o in self._sessions]
        sessions = [self._sessions.pop(o) for o in names]
        await asyncio.gather(*(s.close() for s in sessions), *self._closing, return_exceptions=True)


def timeout_for(seconds: float) -> aiohttp.ClientTimeout:
    """Deadlines for one ERPNext call: getting a connection (pool wait included), and each read.

    No total: large bodies may stream for longer than any single deadline.
    """
    return aiohttp.ClientTimeout(total=None, connect=seconds, sock_read=seconds)
