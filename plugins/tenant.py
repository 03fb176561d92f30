"""Tenant resolution from the Host header (runs first on every tenant route).

`shop1.<base-domain>` -> tenant `shop1`, or any of a tenant's extra `hosts`.
`X-Forwarded-Host/For/Proto` are believed only from `gateway.trusted_proxies`.
"""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from pydantic import BaseModel
from starlette.responses import Response

from edge.chain import Context, Services
from edge.problems import Problem, problem_response


class TenantPlugin:
    """Sets `ctx.tenant`, `ctx.host` and the client's forwarded address."""

    name: ClassVar[str] = "tenant"
    priority: ClassVar[int] = 1_000_000

    class Config(BaseModel):
        """No per-tenant keys: the tenant plugin reads `gateway:` and `hosts`."""

    def __init__(self, config: object, services: Services) -> None:
        gw = services.gateway
        self._hosts = {}
        for key, tenant in services.tenants.items():
            for domain in gw.base_domains:
                self._hosts[f"{key}.{domain}"] = tenant
            for host in tenant.config.hosts:
                self._hosts[host] = tenant
        self._trusted = tuple(gw.trusted_proxies)
        self._trust_cache: dict[str, bool] = {}

    def _is_trusted(self, ip: str) -> bool:
        hit = self._trust_cache.get(ip)
        if hit is None:
            try:
                addr = ipaddress.ip_address(ip)
                hit = any(addr in net for net in self._trusted)
            except ValueError:
                hit = False
            if len(self._trust_cache) < 10_000:
                self._trust_cache[ip] = hit
        return hit

    async def on_request(self, ctx: Context) -> Response | None:
        ctx.headers  # noqa: B018 (building them finds the repeated ones)
        if b"host" in ctx.repeated:
            # Servers disagree on which Host counts (gunicorn joins them, so Frappe fails):
            # never pick one for the till.
            return problem_response(Problem("invalid_request", "the request has more than one Host header"),
                                    ctx.request_id)
        host = self.apply_forwarding(ctx)
        name = host.decode("latin-1").lower()
        if name.startswith("["):  # IPv6 literal: never a tenant
            name = name.split("]")[0] + "]"
        else:
            name = name.split(":", 1)[0]
        name = name.rstrip(".")
        ctx.host = name
        if not name:
            return problem_response(Problem("missing_host", "the request has no Host header"), ctx.request_id)
        tenant = self._hosts.get(name)
        if tenant is None:
            return problem_response(
                Problem("tenant_not_found", f"no tenant is served at {name}"), ctx.request_id
            )
        ctx.tenant = tenant
        if tenant.config.status != "active":
            return problem_response(
                Problem("tenant_suspended", f"tenant {tenant.key} is suspended"), ctx.request_id
            )
        return None

    def apply_forwarding(self, ctx: Context) -> bytes:
        """Believe X-Forwarded-For/Proto from a trusted proxy (`ctx.forwarded_for`,
        `ctx.forwarded_proto`); returns the Host the client asked for. Also used by routes
        that name their tenant otherwise (ERPNext's webhooks), so refusals are counted per
        real client, not per proxy."""
        headers = ctx.headers
        host = headers.get(b"host", b"")
        if self._trusted and self._is_trusted(ctx.client_ip):
            host = _first(headers.get(b"x-forwarded-host")) or host
            ctx.forwarded_proto = (_first(headers.get(b"x-forwarded-proto")) or ctx.forwarded_proto.encode()).decode(
                "latin-1"
            )
            chain = headers.get(b"x-forwarded-for")
            if chain:
                ctx.forwarded_for = self._client_from_chain(chain.decode("latin-1"), ctx.client_ip)
        return host

    def _client_from_chain(self, chain: str, peer: str) -> str:
        # Walk right to left past our own proxies: the first untrusted hop is the client.
        hops = [h.strip() for h in chain.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer


def _first(value: bytes | None) -> bytes | None:
    if not value:
        return None
    return value.split(b",", 1)[0].strip() or None
