"""The ASGI application: routes, lifespan (store, pools, limiter) and dispatch.

`/erpnext/...` is dispatched before Starlette sees the request (raw ASGI, the
hot path); every other route is a plain Starlette route.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from edge import config as config_mod
from edge import logs
from edge.bodies import CLIENT_CLOSED, ClientGone
from edge.chain import Context
from edge.config import LoadedConfig
from edge.erpnext.setup import ReferenceFields
from edge.logs import access_log
from edge.masterdata.collections import COLLECTIONS
from edge.masterdata.events import Feeds
from edge.masterdata.service import MasterData
from edge.metrics import Metrics
from edge.openapi import openapi_json
from edge.posting_guard import PostingGuard
from edge.problems import Problem, problem_response
from edge.ratelimit_storage import rate_limit_storage
from edge.reload import ConfigWatcher, LiveConfig
from edge.routes import admin, erpnext
from edge.routes.console import console_file, console_page, console_redirect
from edge.routes.devices import register
from edge.routes.docs import docs_init, docs_page, errors_page, swagger_ui_static
from edge.routes.health import MetricsListener, healthz, metrics, metrics_text, readyz
from edge.routes.hooks import post_erpnext_hook
from edge.routes.masterdata import get_collection, get_events, get_init
from edge.routes.pos import post_document
from edge.routes.sync import get_status, post_batch
from edge.runtime import Runtime, build_runtime
from edge.shield import Shields
from edge.store import open_store
from edge.sync.worker import SyncWorker
from edge.upstream import Upstreams

_ERPNEXT = erpnext.PREFIX


# SaleFlex GATE's route family, answered by the same handlers (with and without the slash),
# so a SaleFlex/PyPOS terminal can use pos-edge unchanged.
SALEFLEX = {
    "/pos/register": (register, "POST"),
    "/pos/init": (get_init, "GET"),
    "/pos/products": (get_collection, "GET"),
    "/pos/campaigns": (get_collection, "GET"),
    "/pos/transactions": (post_batch, "POST"),
    "/pos/closures": (post_document, "POST"),
}


def _saleflex_routes() -> list[Route]:
    return [Route(path + slash, handler, methods=[method])
            for path, (handler, method) in SALEFLEX.items() for slash in ("", "/")]


class EdgeApp:
    """pos-edge as one ASGI callable."""

    def __init__(self, config: LoadedConfig, workers: int = 1) -> None:
        self._config = config
        self.workers = workers
        self.log = structlog.get_logger("pos_edge")
        self.store = open_store(config.gateway.store)
        self.upstreams = Upstreams()
        self.metrics = Metrics()
        self.shields = Shields(config.gateway, self.store, self.log, self.metrics)
        self.live: LiveConfig | None = None
        # the invoice reference field per POS tenant, checked at start-up
        self.reference_fields = ReferenceFields(self.log)
        # one posting per transaction, /v1 and sync workers alike
        self.postings = PostingGuard(self.store, self.reference_fields, lambda: self.config.gateway, self.log)
        self.worker: SyncWorker | None = None
        # tills' master data, refreshed from ERPNext, and their event streams
        self.masterdata = MasterData(self.store, self.log, self._tenants)
        self.feeds = Feeds(self.store, self.log)  # one reader of each tenant's event log per process
        self.stopping = asyncio.Event()  # set on SIGTERM/SIGINT: event streams end so shut-down is not held up
        self._tenant_configs: dict[str, Any] = {}
        self._announcing: set[asyncio.Task[None]] = set()
        self.starlette = Starlette(
            routes=[
                Route("/gateway/device/register", register, methods=["POST"]),
                Route("/v1/sale", post_document, methods=["POST"]),
                Route("/v1/return", post_document, methods=["POST"]),
                Route("/v1/closure", post_document, methods=["POST"]),
                Route("/v1/opening", post_document, methods=["POST"]),
                Route("/sync/batch", post_batch, methods=["POST"]),
                Route("/sync/status/{batch_uuid}", get_status, methods=["GET"]),
                *_saleflex_routes(),
                Route("/v1/init", get_init, methods=["GET"]),
                Route("/v1/events", get_events, methods=["GET"]),
                Route("/hooks/erpnext/{tenant}", post_erpnext_hook, methods=["POST"]),
                Route("/admin", console_redirect, methods=["GET"]),
                Route("/admin/", console_page, methods=["GET"]),
                Route("/admin/static/{name}", console_file, methods=["GET"]),
                Route("/admin/login", admin.login, methods=["POST"]),
                Route("/admin/stores", admin.stores, methods=["GET", "POST"]),
                Route("/admin/terminals", admin.terminals_route, methods=["GET", "POST"]),
                Route("/admin/terminals/{device_id}", admin.delete_terminal, methods=["DELETE"]),
                Route("/admin/terminals/{device_id}/reset", admin.post_reset, methods=["POST"]),
                Route("/admin/terminals/{device_id}/move", admin.post_reset, methods=["POST"]),
                Route("/admin/terminals/{device_id}/jobs", admin.get_jobs, methods=["GET"]),
                Route("/admin/terminals/{device_id}/jobs/retry", admin.post_retry, methods=["POST"]),
                Route("/admin/terminals/{device_id}/block", admin.post_block, methods=["POST"]),
                Route("/admin/terminals/{device_id}/unblock", admin.post_block, methods=["POST"]),
                Route("/admin/audit", admin.get_audit, methods=["GET"]),
                *(Route(f"/v1/{name}", get_collection, methods=["GET"]) for name in COLLECTIONS),
                Route("/openapi.json", openapi_json, methods=["GET"]),
                Route("/docs", docs_page, methods=["GET"]),
                Route("/docs/init.js", docs_init, methods=["GET"]),
                Route("/docs/errors", errors_page, methods=["GET"]),
                Mount("/docs/static", swagger_ui_static()),
                Route("/healthz", healthz, methods=["GET"]),
                Route("/readyz", readyz, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ],
            exception_handlers={Problem: self._on_problem, HTTPException: self._on_http, ClientGone: self._on_client_gone,
                                Exception: self._on_error},
            lifespan=self._lifespan,
        )
        self.starlette.state.edge = self

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        cfg = self._config
        await self.store.open()
        await self.store.ping()
        limiter = rate_limit_storage(cfg.gateway.rate_limit_storage)
        runtime = build_runtime(cfg, self.store, limiter, self.upstreams, self.log, shields=self.shields)
        self.live = LiveConfig(cfg, runtime, self.store, limiter, self.metrics, self.log, self.reference_fields,
                               public=os.environ.get("POS_EDGE_PUBLIC") == "1")
        watcher = ConfigWatcher(cfg.source, self.live.reload, self.log)
        watcher.start()
        self._tenant_configs = dict(cfg.tenants)
        self.live.on_swap.append(self._announce_config)
        self._chain_stop_signals()
        listener = None
        if (address := cfg.gateway.metrics.address()) is not None:
            listener = MetricsListener(lambda: metrics_text(self), address)
            try:
                await listener.start()
            except OSError as exc:  # configured, so expected by a scraper: do not run without it
                self.log.error("metrics_listener_failed", listen=cfg.gateway.metrics.listen, error=exc.strerror or str(exc))
                raise
        for tenant in cfg.tenants.values():
            self.upstreams.session(tenant.erpnext.origin)
        self._startup_warnings()
        for warning in await self.store.durability_warnings():
            self.log.warning("store_not_durable", detail=warning)
        checks = asyncio.create_task(self.reference_fields.check_all(self.live.runtime.services.tenants))
        # ERPNext down (or the key refused) at start-up: looked at again, so /readyz catches up
        rechecks = asyncio.create_task(self.reference_fields.watch(self._tenants))
        worker_task = None
        if cfg.gateway.sync.in_process_workers:
            self.worker = SyncWorker(self.store, lambda: self.runtime, self.reference_fields, self.log, self.metrics)
            self.live.on_swap.append(self.worker.wake)
            worker_task = asyncio.create_task(self._run_worker(checks))
        # Everything built so far (config, models, imported modules) lives as long
        # as the process: move it out of the cyclic GC's sight, and collect young
        # objects less often. Together -10 µs CPU/request and a 3x lower p99 in
        # bench/proxy.py: full collections over a big heap were stalling requests.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        self.log.info("started", tenants=len(cfg.tenants), config=cfg.source, pid=os.getpid())
        try:
            yield
        finally:
            self._stop_streams()
            checks.cancel()
            rechecks.cancel()
            await watcher.stop()
            if listener is not None:
                await listener.stop()
            if self.worker is not None and worker_task is not None:
                # Postings in flight get the same grace as requests; the rest are handed back.
                await self.worker.stop(grace=float(os.environ.get("POS_EDGE_GRACE", "30")))
                worker_task.cancel()
            await self.masterdata.close()
            await self.shields.live.close()
            await self.upstreams.close()
            await self.store.close()
            self.log.info("stopped", pid=os.getpid())
            logs.flush()

    def _chain_stop_signals(self) -> None:
        """Set `stopping` on SIGTERM/SIGINT before uvicorn's own handler runs: uvicorn waits
        for open responses before shutting down, and an event stream never ends by itself."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if not callable(previous):  # not uvicorn's (a test harness, or nothing): leave it
                continue

            def chained(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self._stop_streams)
                previous(signum, frame)

            signal.signal(sig, chained)

    def _stop_streams(self) -> None:
        """Event streams end now: they look at `stopping` when kicked."""
        self.stopping.set()
        self.feeds.kick()

    def _announce_config(self) -> None:
        """tenants.yaml changed: tell the tills of each tenant whose entry changed (and wake
        every stream: those of a removed tenant end)."""
        self.feeds.kick()
        now = dict(self.config.tenants)
        changed = [key for key, cfg in now.items() if self._tenant_configs.get(key) != cfg]
        self._tenant_configs = now
        if changed:
            task = asyncio.ensure_future(self._append_config_changed(changed))
            self._announcing.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(self._announcing.discard)

    async def _append_config_changed(self, tenants: list[str]) -> None:
        for key in tenants:
            try:
                await self.store.ev_append(key, "config.changed", "", b'{"reload":"tenants.yaml"}', time.time())
            except Exception as exc:  # the store is away: tills see the change at their next /v1/init
                self.log.warning("event_append_failed", tenant=key, error=type(exc).__name__)

    async def _run_worker(self, checks: asyncio.Task[None]) -> None:
        # Not before the reference fields are known: a tenant without one must not be posted to blind.
        await asyncio.wait({checks})
        assert self.worker is not None
        await self.worker.run()

    def _tenants(self) -> dict[str, Any]:
        """The serving tenants (TenantRuntime by key)."""
        runtime = self.runtime
        return runtime.services.tenants if runtime is not None else {}

    @property
    def runtime(self) -> Runtime | None:
        """The serving snapshot (replaced whole by a reload); None before start-up."""
        live = self.live
        return live.runtime if live is not None else None

    @property
    def config(self) -> LoadedConfig:
        """The configuration being served."""
        return self.live.config if self.live is not None else self._config

    @property
    def last_reload(self) -> dict[str, Any] | None:
        """How the last reload went (for /readyz), None before any."""
        return self.live.last_reload if self.live is not None else None

    async def reload(self, reason: str, force: bool = False) -> bool:
        """Reload tenants.yaml now (see LiveConfig.reload)."""
        assert self.live is not None
        return await self.live.reload(reason, force)

    async def reference_field_missing(self, tenant: Any) -> bool:
        """True when the tenant's invoice reference field is known to be missing."""
        return await self.reference_fields.missing(tenant)

    def wake_workers(self) -> None:
        """Tell this process's worker that jobs were queued (others find them by polling)."""
        if self.worker is not None:
            self.worker.wake()

    def _startup_warnings(self) -> None:
        cfg = self.config
        for key, tenant in cfg.tenants.items():
            if tenant.registration.enrollment_key is None:
                self.log.warning("registration_open", tenant=key, detail="no enrollment_key: any till may register")
        if cfg.gateway.rate_limit_storage.startswith("memory://") and self.workers > 1:
            self.log.warning(
                "rate_limits_per_process",
                workers=self.workers,
                detail="memory:// counters are per worker process; use redis:// for shared limits",
            )
        if cfg.defaulted_variables:
            self.log.warning("config_defaults_used", variables=list(cfg.defaulted_variables))
        if cfg.defaulted_secrets:
            self.log.warning("insecure_default_secrets", paths=list(cfg.defaulted_secrets),
                             detail="these secrets are the defaults written in the config file")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.starlette(scope, receive, send)
            return
        ctx = Context(scope)
        if scope["path"].startswith(_ERPNEXT):
            await erpnext.handle(self, scope, receive, send, ctx)
            return
        scope["pos_edge.ctx"] = ctx
        status = 500
        rid = (b"x-request-id", ctx.request_id.encode())

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", [])
                if not any(k == b"x-request-id" for k, _ in headers):
                    message["headers"] = [*headers, rid]
            await send(message)

        try:
            await self.starlette(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            access_log(self.log, ctx, scope["method"], path, status,
                       quiet=path in self.config.gateway.logging.quiet_paths)
            self.metrics.observe(ctx, status)
            # The context refers to the scope and the scope to the context: break the
            # cycle so a request's objects (a 500-sale batch, say) go by reference
            # counting, not at a full GC run, which gc.freeze() tuning makes rare.
            del scope["pos_edge.ctx"]

    @staticmethod
    def _ctx(request: Request) -> Context:
        ctx: Context = request.scope["pos_edge.ctx"]
        return ctx

    async def _on_problem(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        ctx = self._ctx(request)
        return problem_response(exc, ctx.request_id, ctx.response_headers)

    async def _on_http(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return problem_response(Problem(code, str(exc.detail), headers=dict(exc.headers or {})), self._ctx(request).request_id)

    async def _on_client_gone(self, request: Request, exc: Exception) -> Response:
        # The till hung up mid-body: nobody reads this answer; the access line logs it as 499.
        return Response(status_code=CLIENT_CLOSED)

    async def _on_error(self, request: Request, exc: Exception) -> Response:
        ctx = self._ctx(request)
        ctx.log.exception("unhandled_error")
        return problem_response(Problem("internal_error", "an unexpected error occurred"), ctx.request_id)


def create_app() -> EdgeApp:
    """uvicorn factory: the config path comes from POS_EDGE_CONFIG (default ./tenants.yaml)."""
    logs.configure(level=os.environ.get("POS_EDGE_LOG_LEVEL", "info"))
    path = os.environ.get("POS_EDGE_CONFIG", "tenants.yaml")
    return EdgeApp(config_mod.load(path), workers=int(os.environ.get("POS_EDGE_WORKERS", "1")))
