"""`/healthz` (the process answers), `/readyz` (config loaded, store reachable), `/metrics`."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response


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
    if edge.reference_fields.states:
        # Reported, not gating: sales still queue while a field is missing or ERPNext is away.
        body["reference_fields"] = edge.reference_fields.states
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    """Prometheus text format; the sync queue's figures are read from the store at scrape time."""
    edge = request.app.state.edge
    try:
        stats = await asyncio.wait_for(edge.store.queue_stats(list(edge.runtime.config.tenants), time.time()), timeout=2)
        edge.metrics.set_queue(stats)
        edge.metrics.store_up.set(1)
    except Exception:  # the rest of the metrics are still worth serving
        edge.metrics.store_up.set(0)
    return Response(edge.metrics.render(), media_type=CONTENT_TYPE_LATEST)
