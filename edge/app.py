"""The ASGI application: routes, lifespan (store, pools, limiter) and dispatch.

`/erpnext/...` is dispatched before Starlette sees the request (raw ASGI, the
hot path); every other route is a plain Starlette route.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from edge import config as config_mod
from edge import logs
from edge.chain import Context
from edge.config import LoadedConfig
from edge.erpnext.setup import ReferenceFields
from edge.logs import access_log
from edge.metrics import Metrics
from edge.openapi import openapi_json
from edge.problems import Problem, problem_response
from edge.ratelimit_storage import rate_limit_storage
from edge.reload import ConfigWatcher
from edge.routes import erpnext
from edge.routes.devices import register
from edge.routes.health import healthz, metrics, readyz
from edge.routes.pos import post_document
from edge.routes.sync import get_status, post_batch
from edge.runtime import Runtime, build_runtime
from edge.store import open_store
from edge.sync.worker import SyncWorker
from edge.upstream import Upstreams

_ERPNEXT = erpnext.PREFIX


class EdgeApp:
    """pos-edge as one ASGI callable."""

    def __init__(self, config: LoadedConfig, workers: int = 1) -> None:
        self.config = config
        self.workers = workers
        self.log = structlog.get_logger("pos_edge")
        self.store = open_store(config.gateway.store)
        self.upstreams = Upstreams()
        self.metrics = Metrics()
        self.runtime: Runtime | None = None
        # the invoice reference field per POS tenant, checked at start-up
        self.reference_fields = ReferenceFields(self.log)
        self.worker: SyncWorker | None = None
        self.limiter_storage: Any = None
        self.last_reload: dict[str, Any] | None = None
        self._reload_lock = asyncio.Lock()
        self._config_digest = b""
        self._tasks: set[asyncio.Future[Any]] = set()
        self.starlette = Starlette(
            routes=[
                Route("/gateway/device/register", register, methods=["POST"]),
                Route("/v1/sale", post_document, methods=["POST"]),
                Route("/v1/return", post_document, methods=["POST"]),
                Route("/v1/closure", post_document, methods=["POST"]),
                Route("/sync/batch", post_batch, methods=["POST"]),
                Route("/sync/status/{batch_uuid}", get_status, methods=["GET"]),
                Route("/openapi.json", openapi_json, methods=["GET"]),
                Route("/healthz", healthz, methods=["GET"]),
                Route("/readyz", readyz, methods=["GET"]),
                Route("/metrics", metrics, methods=["GET"]),
            ],
            exception_handlers={Problem: self._on_problem, HTTPException: self._on_http, Exception: self._on_error},
            lifespan=self._lifespan,
        )
        self.starlette.state.edge = self

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        cfg = self.config
        await self.store.open()
        await self.store.ping()
        self.limiter_storage = rate_limit_storage(cfg.gateway.rate_limit_storage)
        self.runtime = build_runtime(cfg, self.store, self.limiter_storage, self.upstreams, self.log)
        self._config_digest = _digest(cfg.source)
        watcher = ConfigWatcher(cfg.source, self.reload, self.log)
        watcher.start()
        for tenant in cfg.tenants.values():
            self.upstreams.session(tenant.erpnext.origin)
        self._startup_warnings()
        for warning in await self.store.durability_warnings():
            self.log.warning("store_not_durable", detail=warning)
        checks = asyncio.create_task(self.reference_fields.check_all(self.runtime.services.tenants))
        worker_task = None
        if cfg.gateway.sync.in_process_workers:
            self.worker = SyncWorker(self.store, lambda: self.runtime, self.reference_fields, self.log, self.metrics)
            worker_task = asyncio.create_task(self.worker.run())
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
            checks.cancel()
            await watcher.stop()
            if self.worker is not None and worker_task is not None:
                # Postings in flight get the same grace as requests; the rest are handed back.
                await self.worker.stop(grace=float(os.environ.get("POS_EDGE_GRACE", "30")))
                worker_task.cancel()
            await self.upstreams.close()
            await self.store.close()
            self.log.info("stopped", pid=os.getpid())
            logs.flush()

    async def reload(self, reason: str, force: bool = False) -> bool:
        """Load tenants.yaml again and swap the whole serving configuration at once
        (a request sees the old one or the new one, never a mix). A file that does
        not load is refused: the running configuration stays, and the errors are
        logged with their paths, exactly as `pos-edge check` prints them."""
        async with self._reload_lock:
            path = self.config.source
            digest = _digest(path)
            if digest == self._config_digest and not force:
                return True
            try:
                cfg = config_mod.load(path)
                refusal = self._cannot_reload(cfg)
                if refusal:
                    raise config_mod.ConfigError(path, refusal)
                runtime = build_runtime(cfg, self.store, self.limiter_storage, self.upstreams, self.log,
                                        previous=self.runtime)
            except config_mod.ConfigError as exc:
                self._config_digest = digest  # the same broken bytes are reported once, not at every event
                self.last_reload = {"ok": False, "reason": reason, "errors": [f"{p}: {m}" if p else m for p, m in exc.errors]}
                self.metrics.reloads.labels("failed").inc()
                self.log.error("config_reload_failed", config=path, reason=reason, errors=self.last_reload["errors"])
                return False
            old = self.runtime
            assert old is not None
            self.config, self.runtime = cfg, runtime  # the swap: one reference, replaced at once
            self._config_digest = digest
            before, after = old.config.tenants, cfg.tenants
            origins = {t.erpnext.origin for t in after.values()}
            self.upstreams.keep(origins)
            for origin in origins:
                self.upstreams.session(origin)
            # pools no tenant uses any more close when their last call ends
            self.upstreams.retire({t.erpnext.origin for t in before.values()} - origins)
            changed = {k: t for k, t in runtime.services.tenants.items() if before.get(k) != t.config}
            if changed:
                self._background(self.reference_fields.check_all(changed))
            self.last_reload = {"ok": True, "reason": reason}
            self.metrics.reloads.labels("ok").inc()
            self.log.info("config_reloaded", config=path, reason=reason, tenants=len(after),
                          added=sorted(set(after) - set(before)), removed=sorted(set(before) - set(after)),
                          changed=sorted(k for k in changed if k in before))
            if self.worker is not None:
                self.worker.wake()
            return True

    def _cannot_reload(self, cfg: LoadedConfig) -> list[tuple[str, str]]:
        """What a running process cannot take from a new file."""
        out = []
        for key in ("store", "rate_limit_storage"):
            if getattr(cfg.gateway, key) != getattr(self.config.gateway, key):
                out.append((f"gateway.{key}", "cannot change while running: restart pos-edge to use the new value"))
        if cfg.defaulted_secrets and os.environ.get("POS_EDGE_PUBLIC") == "1":
            out += [(p, "comes from a ${VAR:-default} in the file; serve listens beyond loopback") for p in cfg.defaulted_secrets]
        return out

    def _background(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

        async def send_with_id(message: dict[str, Any]) -> None:
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
            access_log(self.log, ctx, scope["method"], scope["path"], status)
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
        response = problem_response(exc, ctx.request_id)
        for k, v in ctx.response_headers:
            response.headers.setdefault(k.decode(), v.decode())
        return response

    async def _on_http(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        return problem_response(Problem(code, str(exc.detail), headers=dict(exc.headers or {})), self._ctx(request).request_id)

    async def _on_error(self, request: Request, exc: Exception) -> Response:
        ctx = self._ctx(request)
        ctx.log.exception("unhandled_error")
        return problem_response(Problem("internal_error", "an unexpected error occurred"), ctx.request_id)


def _digest(path: str) -> bytes:
    try:
        return hashlib.sha256(Path(path).read_bytes()).digest()
    except OSError:
        return b""


def create_app() -> EdgeApp:
    """uvicorn factory: the config path comes from POS_EDGE_CONFIG (default ./tenants.yaml)."""
    logs.configure(level=os.environ.get("POS_EDGE_LOG_LEVEL", "info"))
    path = os.environ.get("POS_EDGE_CONFIG", "tenants.yaml")
    return EdgeApp(config_mod.load(path), workers=int(os.environ.get("POS_EDGE_WORKERS", "1")))
