"""uvicorn's httptools protocol with the bounds it lacks: what one client may cost.

uvicorn's httptools parser takes request headers of any size (it grows each
header value by concatenation, so one 64 MB header held the event loop for
seconds), leaves a connection that never sends a byte open forever, and gives a
slow client all the time it wants. `BoundedHttpToolsProtocol` keeps httptools
(the fast parser) and adds, per `gateway.server` in tenants.yaml:

- `max_header_bytes` / `max_headers`: a request line plus headers above either is
  answered 431 and the connection closed, before more of it is buffered;
- `idle_timeout`: a connection that has not started a request (a new one, or a
  kept-alive one between requests) is closed after this long (uvicorn's keep-alive
  timeout, applied to new connections too);
- `header_timeout`: a request's headers must arrive whole within this long of its
  first byte, else 408 and close;
- `body_timeout`: while a request body is being read, a pause longer than this
  between two reads closes the connection (nginx's client_body_timeout);
- `max_connections`: connections a process holds at once; one more is answered
  503 and closed at once.

Timers are armed only when a request spans several reads: a request that arrives
in one read (the usual small GET) costs a few attribute checks.
"""

from __future__ import annotations

import asyncio
import os
from asyncio import TimerHandle
from typing import Any

import httptools
import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from edge.chain import new_request_id
from edge.config import ServerConfig
from edge.problems import CONTENT_TYPE, Problem, problem_body

ENV = "POS_EDGE_SERVER"  # the limits as JSON, for uvicorn's worker processes


_limits: ServerConfig | None = None


def limits() -> ServerConfig:
    """The limits this process serves with (from $POS_EDGE_SERVER, else the defaults)."""
    global _limits
    if _limits is None:
        raw = os.environ.get(ENV)
        _limits = ServerConfig.model_validate_json(raw) if raw else ServerConfig()
    return _limits


_RATE_GRACE = 5.0  # seconds of a body before its average rate is held to min_body_rate (Kestrel's rule)


class _Refuse(Exception):
    """Raised from a parser callback to stop parsing and answer `problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.code)
        self.problem = problem


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with header limits, client timeouts and a connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits()
        self._max_bytes = self._limits.max_header_bytes
        self._max_headers = self._limits.max_headers
        # uvicorn types it int, but only hands it to loop.call_later, which takes seconds as a float
        self.timeout_keep_alive = self._limits.idle_timeout  # type: ignore[assignment]
        self._log = structlog.get_logger("pos_edge")
        self._refused = False
        self._in_head = False  # a request has begun and its headers are not complete
        self._in_body = False  # headers complete, body still coming
        self._head_began = False  # the current read began a request
        self._idle_since = 0.0  # when the connection last had no request under way
        self._body_began = False  # the current read completed a request's headers
        self._body_started = 0.0
        self._body_read = 0  # bytes read while a body was under way (its framing and trailers too)
        self._body_delivered = 0  # of which body
        self._head_bytes = 0  # exact: request line and complete headers so far
        self._head_read = 0  # bytes read while the head was incomplete (bounds what httptools buffers)
        self._header_count = 0
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None

    # --- connection ------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self._limits.max_connections:
            self.transport = transport
            self._refused = True
            self._log.warning("connection_refused", reason="max_connections", limit=self._limits.max_connections)
            problem = Problem("too_many_connections", "the gateway holds too many connections; retry shortly",
                              headers={"Retry-After": "1"})
            transport.write(_response(problem))
            transport.close()
            return
        super().connection_made(transport)
        # uvicorn arms its keep-alive timer only after a response: a connection that
        # never sends a byte would stay open for good.
        self._idle_since = self.loop.time()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        if self._refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refuse):
                self._refuse(exc.__context__.problem)
                return
            self._bad_request()
            return
        except httptools.HttpParserError:
            self._bad_request()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if self._in_head:
            # The read in which a head began is not counted (where in it the head began is
            # unknown): httptools buffers at most that one read beyond the limit.
            if self._head_began:
                self._head_began = False
            else:
                self._head_read += len(data)
            if self._head_read > self._limits.max_header_bytes:
                self._refuse(_too_large(self._limits))
                return
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self._limits.header_timeout, self._head_timed_out)
        if self._in_body:
            if self._body_began:
                self._body_began = False
            else:
                self._body_read += len(data)
            if self._body_too_costly():
                return
            if self._body_timer is not None:
                self._body_timer.cancel()
            self._body_timer = self.loop.call_later(self._limits.body_timeout, self._body_timed_out)
        elif not self._in_head and (self.cycle is None or self.cycle.response_complete) \
                and self.timeout_keep_alive_task is None and not self.transport.is_closing():
            # Bytes that began no request (the blank lines HTTP lets precede one): still idle,
            # since the same moment as before them.
            self.timeout_keep_alive_task = self.loop.call_at(self._idle_since + self.timeout_keep_alive,
                                                             self.timeout_keep_alive_handler)

    # --- parser callbacks --------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_began = True
        self._head_bytes = 0
        self._head_read = 0
        self._header_count = 0

    def on_url(self, url: bytes) -> None:
        self.url += url  # uvicorn's on_url, inlined: these two run for every request
        self._head_bytes += len(url)
        if self._head_bytes > self._max_bytes:
            raise _Refuse(_too_large(self._limits))

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            # A trailer field of a chunked body: never a header of the request (uvicorn would
            # append it to the scope's headers after the application read them).
            return
        self._head_bytes += len(name) + len(value) + 4
        self._header_count += 1
        if self._head_bytes > self._max_bytes or self._header_count > self._max_headers:
            raise _Refuse(_too_large(self._limits))
        # uvicorn's on_header, inlined
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._in_body = True
        self._body_began = True
        self._body_started = self.loop.time()
        self._body_read = self._body_delivered = 0
        self._head_read = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._idle_since = self.loop.time()
        super().on_response_complete()
        if self._in_body and not self.transport.is_closing():
            # Answered before its body was read (a refusal): the rest of the body is of no
            # use, and reading it would let the client keep the connection at its own pace.
            self.transport.close()

    def on_body(self, body: bytes) -> None:
        self._body_delivered += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._in_body = False
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # --- refusals ----------------------------------------------------------------

    def _body_too_costly(self) -> bool:
        """Refuse a body whose framing and trailers outgrow it (httptools buffers a trailer
        whole), or that arrives slower than `min_body_rate` after a grace period."""
        lim = self._limits
        if self._body_read - self._body_delivered > lim.max_header_bytes + self._body_delivered:
            self._refuse(Problem("headers_too_large", "the chunk framing and trailers outgrow the body"))
            return True
        elapsed = self.loop.time() - self._body_started
        if lim.min_body_rate and elapsed > _RATE_GRACE and not self.flow.read_paused \
                and self._body_delivered < lim.min_body_rate * elapsed:
            self._log.info("client_timed_out", phase="body_rate", min_rate=lim.min_body_rate,
                           client=self.client[0] if self.client else None)
            self.transport.close()  # the application reading it sees the disconnect (a 499)
            return True
        return False

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._log.info("client_timed_out", phase="headers", seconds=self._limits.header_timeout,
                           client=self.client[0] if self.client else None)
            self._refuse(Problem("request_timeout", f"the request headers took longer than "
                                 f"{self._limits.header_timeout:g} s"))

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if not self._in_body or self.transport.is_closing():
            return
        if self.flow.read_paused:
            # The application is not reading (its buffer is full): not the client's delay.
            self._body_timer = self.loop.call_later(self._limits.body_timeout, self._body_timed_out)
            return
        self._log.info("client_timed_out", phase="body", seconds=self._limits.body_timeout,
                       client=self.client[0] if self.client else None)
        # The application is reading this body: it sees the disconnect (logged as 499).
        self.transport.close()

    def _refuse(self, problem: Problem) -> None:
        """Answer `problem` and close, unless a response to an earlier request on this
        connection is under way (pipelining): then only close."""
        self._cancel_timers()
        if problem.status == 431:
            self._log.info("request_refused", status=431, code=problem.code,
                           client=self.client[0] if self.client else None)
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_response(problem))
        self.transport.close()

    def _bad_request(self) -> None:
        self._cancel_timers()
        self.logger.warning("Invalid HTTP request received.")
        self.send_400_response("Invalid HTTP request received.")

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


def _too_large(lim: ServerConfig) -> Problem:
    return Problem("headers_too_large", f"the request line and headers exceed {lim.max_header_bytes} bytes "
                   f"or {lim.max_headers} fields")


def _response(problem: Problem) -> bytes:
    """A complete HTTP/1.1 problem+json answer that closes the connection."""
    body = problem_body(problem, new_request_id())
    head = [f"HTTP/1.1 {problem.status} {_REASONS.get(problem.status, '')}",
            f"content-type: {CONTENT_TYPE}", f"content-length: {len(body)}", "connection: close",
            *(f"{k.lower()}: {v}" for k, v in problem.headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large", 503: "Service Unavailable"}
