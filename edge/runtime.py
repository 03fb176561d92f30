"""A loaded configuration made ready to serve: plugin chains, rules, services.

Everything a request needs that depends only on configuration is computed here,
once, so that the request path does lookups and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import aiohttp
from limits.aio.storage import Storage
from starlette.responses import Response

from edge.admin.runtime import AdminRuntime, build_admin
from edge.chain import Context, Plugin, Services, TenantResolver, TenantRuntime, run_chain, sort_plugins
from edge.config import LoadedConfig
from edge.devices import DeviceDirectory
from edge.erpnext.client import ErpnextClient
from edge.erpnext.posting import Poster
from edge.shield import Shields
from edge.store.base import Store
from edge.tokens import TokenService
from edge.unauthenticated import UnauthenticatedLimit
from edge.upstream import Upstreams, timeout_for

# Which plugins guard which group of routes (the tenant plugin always runs first).
ROUTE_GROUPS: dict[str, tuple[str, ...]] = {
    "register": ("rate_limit",),
    "erpnext": ("jwt_auth", "rate_limit", "credentials"),
    "pos": ("jwt_auth", "rate_limit", "normalise"),
    "sync": ("jwt_auth", "rate_limit", "normalise"),
    "sync_status": ("jwt_auth", "rate_limit"),
    "masterdata": ("jwt_auth", "rate_limit"),
}


@dataclass(frozen=True)
class Runtime:
    """An immutable serving snapshot of one configuration."""

    config: LoadedConfig
    services: Services
    tenant_plugin: TenantResolver
    upstreams: Upstreams  # owned by the app, not by one configuration
    timeouts: dict[str, aiohttp.ClientTimeout]
    admin: AdminRuntime  # principals, admin tokens, failed-login counters
    shields: Shields  # owned by the process, like upstreams: breakers, limits, live demand

    async def enter(self, ctx: Context, group: str) -> Response | None:
        """Resolve the tenant, then run the tenant's chain for `group`. A refusal made
        before a device is known counts against the client address's limit."""
        ctx.group = group
        response = await self.tenant_plugin.on_request(ctx)
        if response is None:
            assert ctx.tenant is not None
            response = await run_chain(ctx.tenant.chains[group], ctx)
        if response is not None and ctx.device_id is None:
            return await self.services.unauthenticated.answer(ctx, response)
        return response


def build_runtime(
    config: LoadedConfig,
    store: Store,
    rate_limit_storage: Storage,
    upstreams: Upstreams,
    log: Any,
    plugins: tuple[type[Plugin], ...] | None = None,
    previous: Runtime | None = None,
    shields: Shields | None = None,
) -> Runtime:
    """Instantiate every tenant's plugin chains from `config`. A tenant whose config is
    the same as in `previous` keeps its Poster (and so its master-data caches). `shields`
    (default: the previous runtime's, else new ones) take the config's settings."""
    if shields is None:
        shields = previous.shields if previous is not None else Shields(config.gateway, store, log)
    shields.configure(config.gateway)
    if plugins is None:
        from plugins import DEFAULT_PLUGINS

        plugins = DEFAULT_PLUGINS
    by_name = {p.name: p for p in plugins}
    services = Services(
        gateway=config.gateway,
        tokens=TokenService(config.gateway.jwt),
        devices=DeviceDirectory(store, config.gateway.device_cache_ttl),
        rate_limit_storage=rate_limit_storage,
        unauthenticated=UnauthenticatedLimit(rate_limit_storage, config.gateway.unauthenticated_rate_limit, log),
        log=log,
    )
    for key, tenant in config.tenants.items():
        chains: dict[str, tuple[Plugin, ...]] = {}
        instances: dict[str, Plugin] = {}
        for group, names in ROUTE_GROUPS.items():
            chain = []
            for name in names:
                if name not in instances:
                    instances[name] = by_name[name](tenant, services)
                chain.append(instances[name])
            chains[group] = sort_plugins(chain)
        before = previous.services.tenants.get(key) if previous is not None else None
        if before is not None and before.config == tenant:
            poster = before.poster
        else:
            poster = Poster(ErpnextClient(upstreams, tenant.erpnext, shields.of(key).breaker), tenant)
        services.tenants[key] = TenantRuntime(key, tenant, chains, tenant.proxy.rules(), poster, shields.of(key))
    timeouts = {key: timeout_for(t.erpnext.timeout) for key, t in config.tenants.items()}
    resolver = cast(TenantResolver, by_name["tenant"](config.gateway, services))
    return Runtime(config, services, resolver, upstreams, timeouts, build_admin(config, rate_limit_storage, log),
                   shields)
