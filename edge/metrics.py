"""Prometheus metrics (prometheus-client), one registry per process.

Labels are bounded: a tenant is a configured tenant key (or "-" for a Host no
tenant serves), a route group one of edge.runtime.ROUTE_GROUPS (or "other"), a
status its class ("2xx"). Never a device id or a path. Label children are
cached, so recording a request costs a few dictionary lookups.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

NO_TENANT = "-"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """Every metric pos-edge exports, and the cheap ways to record them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("pos_edge_requests", "Requests answered, by tenant, route group and status class",
                                ["tenant", "route_group", "status_class"], registry=r)
        self.latency = Histogram("pos_edge_request_duration_seconds", "Time to answer a request",
                                 ["tenant", "route_group"], buckets=LATENCY_BUCKETS, registry=r)
        self.upstream_latency = Histogram("pos_edge_upstream_duration_seconds", "Time ERPNext took to answer a proxied call",
                                          ["tenant"], buckets=LATENCY_BUCKETS, registry=r)
        self.rate_limited = Counter("pos_edge_rate_limited", "Requests refused by the rate limiter", ["tenant"], registry=r)
        self.upstream_errors = Counter("pos_edge_upstream_errors", "ERPNext calls that failed, by kind",
                                       ["tenant", "kind"], registry=r)
        self.reloads = Counter("pos_edge_config_reloads", "tenants.yaml reloads, by result", ["result"], registry=r)
        self.sync_outcomes = Counter("pos_edge_sync_attempts", "Sync job attempts in this process, by outcome",
                                     ["tenant", "outcome"], registry=r)
        self.sync_jobs = Gauge("pos_edge_sync_jobs", "Sync jobs in the store, by state", ["tenant", "state"], registry=r)
        self.sync_depth = Gauge("pos_edge_sync_queue_depth", "Sync jobs not yet synced or failed", ["tenant"], registry=r)
        self.sync_oldest = Gauge("pos_edge_sync_oldest_pending_age_seconds",
                                 "How long the most overdue queued job has been due", ["tenant"], registry=r)
        self.store_up = Gauge("pos_edge_store_up", "1 when the state store answered the last scrape", registry=r)
        for result in ("ok", "failed"):
            self.reloads.labels(result)  # both series exist from the start, at 0
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._latency: dict[tuple[str, str], Any] = {}
        self._upstream: dict[str, Any] = {}

    def observe(self, ctx: Any, status: int) -> None:
        """Record one answered request (called once per request, next to its log line)."""
        tenant = ctx.tenant.key if ctx.tenant is not None else NO_TENANT
        group = ctx.group
        key = (tenant, group, _CLASSES[status // 100] if 0 < status < 600 else "other")
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.requests.labels(*key)
        counter.inc()
        hist = self._latency.get(key[:2])
        if hist is None:
            hist = self._latency[key[:2]] = self.latency.labels(tenant, group)
        hist.observe(time.perf_counter() - ctx.started)
        if ctx.upstream_ms is not None:
            up = self._upstream.get(tenant)
            if up is None:
                up = self._upstream[tenant] = self.upstream_latency.labels(tenant)
            up.observe(ctx.upstream_ms / 1000)
        elif status == 429:  # no upstream call was made: the gateway's own limiter said no
            self.rate_limited.labels(tenant).inc()
        if ctx.upstream_error is not None:
            self.upstream_errors.labels(tenant, ctx.upstream_error).inc()

    def set_queue(self, stats: dict[str, dict[str, float]]) -> None:
        """Publish the store's queue figures (tenant -> queued, in_flight, failed, oldest_due_age)."""
        for tenant, s in stats.items():
            for state in ("queued", "in_flight", "failed"):
                self.sync_jobs.labels(tenant, state).set(s.get(state, 0))
            self.sync_depth.labels(tenant).set(s.get("queued", 0) + s.get("in_flight", 0))
            self.sync_oldest.labels(tenant).set(s.get("oldest_due_age", 0))

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
