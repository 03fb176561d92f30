"""`/healthz` (the process answers), `/readyz` (config loaded, store reachable), `/metrics`.

/metrics names every tenant and its traffic, so the main listener serves it only to
a bearer of `gateway.metrics.token` (404 without one configured); Prometheus
normally reads it from the separate `gateway.metrics.listen` listener
(MetricsListener), loopback by default.
"""

from __future__ import annotations

import asyncio
import hmac
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from edge.problems import Problem


async def healthz(request: Request) -> Response:
    """Liveness: cheap, touches nothing."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: every check named, 503 when one fails."""
    edge = request.app.state.edge
    checks: dict[str, str] = {"config": "ok" if edge.runtime is not None else "not loaded"}
    try:
        await asyncio.wait_for(edge.store.ping(), timeout=2)
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"failed: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    if edge.last_reload is not None:
        # Reported, not gating: a refused reload leaves the previous config serving.
        body["last_reload"] = edge.last_reload
    breakers = edge.shields.not_closed()
    if breakers:
        # Reported, not gating: other tenants are served, and this one's tills queue offline.
        body["erpnext_breakers"] = breakers
    if edge.reference_fields.states:
        # Reported, not gating: sales still queue while a field is missing or ERPNext is away.
        body["reference_fields"] = edge.reference_fields.states
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """/metrics on the main listener: for a bearer of gateway.metrics.token only."""
    edge = request.app.state.edge
    token = edge.config.gateway.metrics.token
    if token is None:
        raise Problem("not_found", "/metrics is served on gateway.metrics.listen, or here with gateway.metrics.token")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.get_secret_value().encode()):
        raise Problem("unauthorized", "/metrics needs the metrics token (Authorization: Bearer <token>)",
                      headers={"WWW-Authenticate": 'Bearer realm="pos-edge-metrics"'})
    return Response(await metrics_text(edge), media_type=CONTENT_TYPE_LATEST)


async def metrics_text(edge: Any) -> bytes:
    """Prometheus text format of this server process."""
    return await scrape(edge.metrics, edge.store, list(edge.runtime.config.tenants), edge.shields)


async def scrape(metrics: Any, store: Any, tenants: list[str], shields: Any = None) -> bytes:
    """Prometheus text format; the sync queue's figures are read from the store at scrape
    time (serve and worker alike), and whether that worked is `pos_edge_store_up`."""
    if shields is not None:
        shields.export()
    try:
        stats = await asyncio.wait_for(store.queue_stats(tenants, time.time()), timeout=2)
        metrics.set_queue(stats)
        metrics.store_up.set(1)
    except Exception:  # the rest of the metrics are still worth serving
        metrics.store_up.set(0)
    body: bytes = metrics.render()
    return body


class MetricsListener:
    """A listener of its own serving only GET /metrics (aiohttp's server, on this event
    loop). Several server processes share its port (SO_REUSEPORT): a scrape reads one.
    `pos-edge worker` hands it a socket it bound before starting anything else."""

    def __init__(self, render: Callable[[], Awaitable[bytes]], address: tuple[str, int] | None = None,
                 sock: socket.socket | None = None) -> None:
        self._render = render
        self._address = address
        self._sock = sock
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (raises OSError when the address cannot be bound)."""
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site: web.BaseSite
        if self._sock is not None:
            site = web.SockSite(self._runner, self._sock)
        else:
            assert self._address is not None
            site = web.TCPSite(self._runner, *self._address, reuse_port=True)
        await site.start()

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        return web.Response(body=await self._render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
