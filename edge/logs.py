"""structlog set-up: JSON lines in production, console format in a terminal."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog


def configure(json_lines: bool | None = None, level: str = "info") -> None:
    """Configure structlog (and route stdlib logging through the same stream).

    `json_lines=None` picks JSON unless stdout is a terminal.
    """
    if json_lines is None:
        json_lines = not sys.stdout.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )


def access_log(
    log: Any, ctx: Any, method: str, path: str, status: int
) -> None:
    """The one line per request: who, what, how it ended and how long it took."""
    log.info(
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
