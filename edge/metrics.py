"""Prometheus metrics (prometheus-client), one registry per process.

Labels are bounded: a tenant is a configured tenant key (or "-" for a Host no
tenant serves), a route group one of edge.runtime.ROUTE_GROUPS (or "other"), a
status its class ("2xx"). Never a device id or a path. The per-request
figures are plain numbers, turned into Prometheus form only when scraped.

No `*_created` series: prometheus-client adds one per Counter and Histogram
child, the collectors here keep no creation time, and a series
that some counters have and others not is worse than none; so they are off for
the whole process.

The sync queue's gauges are the store's figures, the same whichever process is
scraped; they carry `scope="store"`, and are aggregated with max(), not sum().
"""

from __future__ import annotations

import platform
import time
from bisect import bisect_left
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

disable_created_metrics()  # process-wide; see the module docstring

NO_TENANT = "-"
STORE_SCOPE = "store"  # the `scope` label of figures read from the shared store
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class _Histogram:
    """Observations of one label set: per-bucket counts (not cumulative), count, sum."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(LATENCY_BUCKETS, value)] += 1  # first bound >= value: Prometheus' `le`
        self.count += 1
        self.total += value


class _RequestCollector:
    """Exposes the per-request figures, which are kept as plain numbers: recording them
    must cost the hot path well under a microsecond (prometheus-client's own metric
    objects take a lock and re-check labels on every call: about 8 µs/request, 6 %
    of the proxy's CPU, in bench/proxy.py)."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def describe(self) -> list[Any]:
        return []  # no eager collect at registration

    def collect(self) -> Any:
        m = self.m
        requests = CounterMetricFamily("pos_edge_requests", "Requests answered, by tenant, route group and status class",
                                       labels=["tenant", "route_group", "status_class"])
        for key, n in list(m.request_counts.items()):
            requests.add_metric(list(key), n)
        yield requests
        yield _histogram("pos_edge_request_duration_seconds", "Time to answer a request",
                         ["tenant", "route_group"], m.request_latency)
        yield _histogram("pos_edge_upstream_duration_seconds", "Time ERPNext took to answer a proxied call",
                         ["tenant"], {(k,): v for k, v in list(m.upstream_latency.items())})
        limited = CounterMetricFamily("pos_edge_rate_limited", "Requests refused by the rate limiter", labels=["tenant"])
        for tenant, n in list(m.rate_limited.items()):
            limited.add_metric([tenant], n)
        yield limited
        errors = CounterMetricFamily("pos_edge_upstream_errors", "ERPNext calls that failed, by kind",
                                     labels=["tenant", "kind"])
        for ekey, n in list(m.upstream_errors.items()):
            errors.add_metric(list(ekey), n)
        yield errors


def _histogram(name: str, doc: str, labels: list[str], series: dict[Any, _Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=labels)
    bounds = [*(repr(float(b)) for b in LATENCY_BUCKETS), "+Inf"]
    for key, h in list(series.items()):
        cumulative, running = [], 0
        for bound, n in zip(bounds, h.buckets, strict=True):
            running += n
            cumulative.append((bound, running))
        family.add_metric(list(key), cumulative, h.total)
    return family


class Metrics:
    """Every metric pos-edge exports, and the cheap ways to record them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # per request (the hot path): plain numbers, exported by _RequestCollector
        self.request_counts: dict[tuple[str, str, str], int] = {}
        self.request_latency: dict[tuple[str, str], _Histogram] = {}
        self.upstream_latency: dict[str, _Histogram] = {}
        self.rate_limited: dict[str, int] = {}
        self.upstream_errors: dict[tuple[str, str], int] = {}
        r.register(_RequestCollector(self))
        # everything else: prometheus-client's own metrics
        self.reloads = Counter("pos_edge_config_reloads", "tenants.yaml reloads, by result", ["result"], registry=r)
        self.sync_outcomes = Counter("pos_edge_sync_attempts", "Sync job attempts in this process, by outcome",
                                     ["tenant", "outcome"], registry=r)
        # store-wide: every scraped process reports the same figures (scope="store": use max())
        self.sync_jobs = Gauge("pos_edge_sync_jobs", "Sync jobs in the store, by state (store-wide: aggregate with max)",
                               ["scope", "tenant", "state"], registry=r)
        self.sync_depth = Gauge("pos_edge_sync_queue_depth",
                                "Sync jobs not yet synced or failed (store-wide: aggregate with max)",
                                ["scope", "tenant"], registry=r)
        self.sync_oldest = Gauge("pos_edge_sync_oldest_pending_age_seconds",
                                 "How long the most overdue queued job has been due (store-wide: aggregate with max)",
                                 ["scope", "tenant"], registry=r)
        self.store_up = Gauge("pos_edge_store_up", "1 when the state store answered this process's last scrape",
                              registry=r)
        self.booked_unpaid = Counter("pos_edge_sales_booked_unpaid",
                                     "Sales ERPNext booked as not fully paid on tenants without credit sales",
                                     ["tenant"], registry=r)
        self.webhooks = Counter("pos_edge_webhooks", "ERPNext Webhooks received, by tenant and outcome "
                                "(accepted, signature_missing, signature_mismatch; not_configured without a tenant)",
                                ["tenant", "outcome"], registry=r)
        # per tenant and process: what this process has learnt about the tenant's ERPNext (edge.shield)
        self.concurrency_limit = Gauge("pos_edge_sync_concurrency_limit",
                                       "Sync postings this process lets a tenant's ERPNext have at once (adaptive)",
                                       ["tenant"], registry=r)
        self.breaker_state = Gauge("pos_edge_erpnext_breaker_state",
                                   "A tenant's ERPNext circuit breaker in this process: 0 closed, 1 half-open, 2 open",
                                   ["tenant"], registry=r)
        self.breaker_transitions = Counter("pos_edge_erpnext_breaker_transitions",
                                           "Circuit breaker changes in this process, by the state entered",
                                           ["tenant", "state"], registry=r)
        for result in ("ok", "failed"):
            self.reloads.labels(result)  # both series exist from the start, at 0
        # what any Python service exports: CPU, memory, open fds, start time; the
        # interpreter; collections per generation (process_*, python_*)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        Info("pos_edge_build", "The running pos-edge", registry=r).info(
            {"version": _version(), "python": platform.python_version()})

    def observe(self, ctx: Any, status: int) -> None:
        """Record one answered request (called once per request, next to its log line)."""
        tenant = ctx.tenant.key if ctx.tenant is not None else NO_TENANT
        group = ctx.group
        key = (tenant, group, _CLASSES.get(status // 100, "other"))
        counts = self.request_counts
        counts[key] = counts.get(key, 0) + 1
        pair = (tenant, group)
        hist = self.request_latency.get(pair)
        if hist is None:
            hist = self.request_latency[pair] = _Histogram()
        hist.observe(time.perf_counter() - ctx.started)
        if ctx.upstream_ms is not None:
            up = self.upstream_latency.get(tenant)
            if up is None:
                up = self.upstream_latency[tenant] = _Histogram()
            up.observe(ctx.upstream_ms / 1000)
        elif status == 429:  # no upstream call was made: the gateway's own limiter said no
            self.rate_limited[tenant] = self.rate_limited.get(tenant, 0) + 1
        if ctx.upstream_error is not None:
            ekey = (tenant, ctx.upstream_error)
            self.upstream_errors[ekey] = self.upstream_errors.get(ekey, 0) + 1

    def webhook(self, tenant: str, outcome: str) -> None:
        """Count one Webhook (`tenant` only once it names a configured one: the path is the caller's)."""
        self.webhooks.labels(tenant or NO_TENANT, outcome).inc()

    def set_queue(self, stats: dict[str, dict[str, float]]) -> None:
        """Publish the store's queue figures (tenant -> queued, in_flight, failed, oldest_due_age)."""
        for tenant, s in stats.items():
            for state in ("queued", "in_flight", "failed"):
                self.sync_jobs.labels(STORE_SCOPE, tenant, state).set(s.get(state, 0))
            self.sync_depth.labels(STORE_SCOPE, tenant).set(s.get("queued", 0) + s.get("in_flight", 0))
            self.sync_oldest.labels(STORE_SCOPE, tenant).set(s.get("oldest_due_age", 0))

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)


def _version() -> str:
    try:
        return version("pos-edge")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


_CLASSES = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
