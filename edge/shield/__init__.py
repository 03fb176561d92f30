"""Spending each tenant's ERPNext well: what a process knows about the load it puts on it.

ERPNext, not the gateway, is the bottleneck: a site serves a few documents a second.
Per tenant, this process keeps a circuit breaker (stop sending while the site is
down), an adaptive limit on sync postings in flight (find the site's knee), and its
live calls (the sync lane yields to them). They belong to the process, not to one
configuration: a reload keeps what they have learnt and only changes their settings.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

from edge.config import GatewayConfig
from edge.shield.breaker import STATE_VALUE, Breaker, State
from edge.shield.limit import AdaptiveLimit
from edge.shield.live import LiveDemand
from edge.store.base import Store


@dataclass(frozen=True)
class TenantShield:
    """One tenant's breaker and limit."""

    breaker: Breaker
    limit: AdaptiveLimit


class Shields:
    """Every tenant's TenantShield in this process, and its live demand."""

    def __init__(self, gateway: GatewayConfig, store: Store, log: Any, metrics: Any = None) -> None:
        self._gateway = gateway
        self.log = log
        self.metrics = metrics  # edge.metrics.Metrics (None in tools that export nothing)
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.live = LiveDemand(store, owner, gateway.sync.live_hold, log)
        self._tenants: dict[str, TenantShield] = {}

    def of(self, tenant: str) -> TenantShield:
        """The tenant's shield (made on first use)."""
        shield = self._tenants.get(tenant)
        if shield is None:
            s = self._gateway.sync
            breaker = Breaker(self._gateway.breaker, on_change=lambda a, b: self._changed(tenant, a, b))
            limit = AdaptiveLimit(s.min_concurrency, s.tenant_concurrency, s.max_queue, s.adaptive)
            shield = TenantShield(breaker, limit)
            self._tenants[tenant] = shield
        return shield

    def configure(self, gateway: GatewayConfig) -> None:
        """Apply a reloaded configuration's settings, keeping what was learnt."""
        self._gateway = gateway
        s = gateway.sync
        self.live.hold = s.live_hold
        for shield in self._tenants.values():
            shield.breaker.settings = gateway.breaker
            shield.limit.configure(s.min_concurrency, s.tenant_concurrency, s.max_queue, s.adaptive)

    def not_closed(self) -> dict[str, dict[str, Any]]:
        """Tenants whose breaker is open or half-open: their state and seconds to the next try."""
        return {key: {"state": s.breaker.state, "retry_after": round(s.breaker.retry_after(), 1)}
                for key, s in sorted(self._tenants.items()) if s.breaker.state != "closed"}

    def export(self) -> None:
        """Set the per-tenant gauges (at scrape time)."""
        if self.metrics is None:
            return
        for key, s in self._tenants.items():
            self.metrics.concurrency_limit.labels(key).set(s.limit.limit)
            self.metrics.breaker_state.labels(key).set(STATE_VALUE[s.breaker.state])

    def _changed(self, tenant: str, before: State, after: State) -> None:
        # open is a warning (the shop's ERPNext is down); the rest is the way back
        write = self.log.warning if after == "open" else self.log.info
        write("erpnext_breaker_" + after, tenant=tenant, previous=before,
              retry_after=round(self._tenants[tenant].breaker.retry_after(), 1))
        if self.metrics is not None:
            self.metrics.breaker_transitions.labels(tenant, after).inc()
            self.metrics.breaker_state.labels(tenant).set(STATE_VALUE[after])
