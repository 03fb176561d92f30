"""structlog set-up: JSON lines in production, console format in a terminal.

JSON lines are buffered and written at most every `flush_interval` seconds (as
nginx does with `access_log ... buffer= flush=`): one write per request cost
~7 µs of the proxy's CPU per request in bench/proxy.py. Warnings and errors are
written at once, and the buffer is flushed at shut-down.

The stdlib's records (uvicorn, asyncio, aiohttp, httpx...) are rendered by
structlog's ProcessorFormatter into the same writer, with the same keys
(`event`, `level`, `timestamp`, `logger`, `exception`): one format on stdout.
`pos-edge serve` hands uvicorn a `log_config` (uvicorn_log_config) that does
this set-up in the parent and in every `--workers` child.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time
from typing import Any, BinaryIO

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer


class _IsoTimestamp:
    """`timestamp` as ISO 8601 UTC with milliseconds; the seconds part is formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event["timestamp"] = f"{self._prefix}.{int((now - second) * 1000):03d}Z"
        return event


_URGENT = frozenset({"warning", "warn", "error", "exception", "critical", "fatal"})
# Writes up to PIPE_BUF are atomic on a pipe: with several workers sharing stdout
# (docker logs), larger writes could interleave and tear JSON lines.
_ATOMIC_WRITE = 4096


class BufferedLines:
    """A structlog logger that collects rendered lines and writes them in batches."""

    def __init__(self, stream: BinaryIO, flush_interval: float) -> None:
        self._stream = stream
        self._interval = flush_interval
        self._lines: list[bytes] = []
        self._scheduled = False

    def __call__(self, *args: Any) -> BufferedLines:
        """structlog logger factory protocol: one shared writer."""
        return self

    def emit(self, level: str, message: bytes) -> None:
        """Buffer one rendered line; `level` decides whether it is written at once."""
        self._lines.append(message)
        if level in _URGENT or self._interval <= 0:
            self.flush()
            return
        if not self._scheduled:
            try:
                asyncio.get_running_loop().call_later(self._interval, self.flush)
                self._scheduled = True
            except RuntimeError:  # no event loop (CLI, start-up): write now
                self.flush()

    def flush(self) -> None:
        """Write every buffered line."""
        self._scheduled = False
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        try:
            chunk: list[bytes] = []
            size = 0
            for line in lines:
                if chunk and size + len(line) + 1 > _ATOMIC_WRITE:
                    self._write(chunk)
                    chunk, size = [], 0
                chunk.append(line)
                size += len(line) + 1
            self._write(chunk)
        except (OSError, ValueError):  # stdout closed at exit: nothing left to tell
            pass

    def _write(self, lines: list[bytes]) -> None:
        self._stream.write(b"\n".join(lines) + b"\n")
        self._stream.flush()

    def debug(self, message: bytes) -> None:
        self.emit("debug", message)

    def info(self, message: bytes) -> None:
        self.emit("info", message)

    def warning(self, message: bytes) -> None:
        self.emit("warning", message)

    def error(self, message: bytes) -> None:
        self.emit("error", message)

    def critical(self, message: bytes) -> None:
        self.emit("critical", message)

    warn = warning
    exception = error
    fatal = critical
    msg = info


_writer: BufferedLines | None = None
_handler: logging.Handler | None = None  # the root logger's one handler (stdlib records)
_configured_level: str | None = None

# Library loggers that install handlers of their own or would write text: emptied, so
# their records reach the root logger's handler and are rendered like ours.
_LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")
_OUR_LOGGER = "pos_edge"


def _our_logger_name(logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
    """`logger` on pos-edge's own lines, as stdlib records carry theirs (`uvicorn.error`, `asyncio`)."""
    event.setdefault("logger", _OUR_LOGGER)
    return event


def _json_text(obj: Any, **kw: Any) -> str:
    # ProcessorFormatter wants a str; orjson as for our own lines, so values render alike.
    return orjson.dumps(obj, **kw).decode()


class _StdlibHandler(logging.Handler):
    """Hands stdlib records, rendered by structlog's ProcessorFormatter, to the same
    output as structlog's lines (the JSON writer), so they interleave whole and in order."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            writer = _writer
            if writer is not None:
                # Written at once (with what is buffered before it): these are rare, and
                # some come last, when nothing flushes any more (a `serve --workers N`
                # child ends by uvicorn re-raising SIGTERM after "Finished server process").
                writer.emit(record.levelname.lower(), line.encode())
                writer.flush()
            else:  # console format
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
        except Exception:
            self.handleError(record)


def _stdlib_formatter(json_lines: bool, timestamper: _IsoTimestamp) -> structlog.stdlib.ProcessorFormatter:
    """Stdlib records through structlog: same level, timestamp and exception keys as ours."""
    pre_chain: list[Any] = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper]
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_lines:
        final += [structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
                  structlog.processors.JSONRenderer(serializer=_json_text)]
    else:
        final.append(structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    return structlog.stdlib.ProcessorFormatter(foreign_pre_chain=pre_chain, processors=final)


def configure(
    json_lines: bool | None = None, level: str = "info", flush_interval: float = 0.2, stream: BinaryIO | None = None
) -> None:
    """Configure structlog, and route the stdlib's records (uvicorn, asyncio, aiohttp,
    httpx...) through it. `json_lines=None` picks JSON unless stdout is a terminal."""
    global _writer, _handler, _configured_level
    if json_lines is None:
        json_lines = not sys.stdout.isatty()
    timestamper = _IsoTimestamp()
    processors: list[Any] = [
        structlog.processors.add_log_level,
        timestamper,
        _our_logger_name,
    ]
    if _writer is not None:
        _writer.flush()  # configured again (the app factory after uvicorn's log_config): keep what was said
    if json_lines:
        _writer = BufferedLines(stream or sys.stdout.buffer, flush_interval)
        # Frames without their local variables: locals hold enrollment keys, tokens,
        # ERPNext credentials and sale payloads (structlog's dict_tracebacks shows them).
        processors.append(structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)))
        processors.append(structlog.processors.JSONRenderer(serializer=orjson.dumps))
        factory: Any = _writer
    else:
        _writer = None
        processors.append(structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
        factory = structlog.WriteLoggerFactory(sys.stdout)
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _handler = _StdlibHandler()
    _handler.setFormatter(_stdlib_formatter(json_lines, timestamper))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(_handler)
    root.setLevel(numeric)
    for name in _LIBRARY_LOGGERS:
        lib = logging.getLogger(name)
        lib.handlers = []
        lib.propagate = True
    logging.captureWarnings(True)  # warnings.warn() too: a line like the others, not text on stderr
    _configured_level = level
    _flush_at_exit()


_exit_hooked = False


def _flush_at_exit() -> None:
    """Flush the buffer when the process ends (registered once, whatever the writer)."""
    global _exit_hooked
    if not _exit_hooked:
        _exit_hooked = True
        atexit.register(flush)


def stdlib_handler(log_level: str = "info") -> logging.Handler:
    """dictConfig handler factory for uvicorn's `log_config` (see uvicorn_log_config):
    configures logging in this process unless done, and returns the root's handler."""
    if _handler is None or _configured_level != log_level:
        configure(level=log_level)
    assert _handler is not None
    return _handler


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """The `log_config` for uvicorn.run: without one uvicorn installs its own text
    handlers, in the parent and in every `--workers` child (it applies this dict in
    each, so it must be plain data: the handler is built by name, in the process)."""
    to_root = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"structlog": {"()": "edge.logs.stdlib_handler", "log_level": level}},
        "root": {"handlers": ["structlog"], "level": level.upper()},
        "loggers": {name: dict(to_root) for name in _LIBRARY_LOGGERS},
    }


def flush() -> None:
    """Write out buffered log lines now (shut-down)."""
    if _writer is not None:
        _writer.flush()


def access_log(log: Any, ctx: Any, method: str, path: str, status: int, quiet: bool = False) -> None:
    """The one line per request: who, what, how it ended and how long it took. A `quiet`
    request (a health probe, a scrape: gateway.logging.quiet_paths) is logged at debug
    unless it failed with a 5xx, so probes every few seconds do not drown the log."""
    write = log.debug if quiet and status < 500 else log.info
    write(
        "request",
        request_id=ctx.request_id,
        tenant=ctx.tenant.key if ctx.tenant else None,
        device=ctx.device_id,
        method=method,
        path=path,
        status=status,
        duration_ms=round((time.perf_counter() - ctx.started) * 1000, 2),
        upstream_ms=ctx.upstream_ms,
    )
