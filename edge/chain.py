"""The plugin contract: Plugin, Context, Services, and running a chain.

A chain is a tuple of plugin instances sorted by priority once, when the
configuration is loaded; running it is a plain loop.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import structlog
from pydantic import BaseModel
from starlette.responses import Response

if TYPE_CHECKING:
    from limits.aio.storage import Storage

    from edge.config import CoreTenantConfig, GatewayConfig
    from edge.devices import DeviceDirectory
    from edge.shield import TenantShield
    from edge.tokens import TokenService
    from edge.unauthenticated import UnauthenticatedLimit


_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")
# Request ids: a random per-process prefix and a counter: unique, and far cheaper
# than a uuid4 (a getrandom syscall) per request.
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> str:
    """A fresh request id (unique per process run)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):010x}"


@dataclass
class Services:
    """What plugins may use besides the request context. Built once per config."""

    gateway: GatewayConfig
    tokens: TokenService
    devices: DeviceDirectory
    rate_limit_storage: Storage
    unauthenticated: UnauthenticatedLimit
    tenants: dict[str, TenantRuntime] = field(default_factory=dict)
    log: Any = field(default_factory=lambda: structlog.get_logger("pos_edge"))


class Plugin(Protocol):
    """A step of the request chain (Kong's model: name, priority, schema, hooks)."""

    name: ClassVar[str]
    priority: ClassVar[int]  # higher runs first
    Config: ClassVar[type[BaseModel]]  # the keys this plugin adds to a tenant's entry

    def __init__(self, config: Any, services: Services) -> None: ...

    async def on_request(self, ctx: Context) -> Response | None:
        """Inspect or amend the request; return a response to end the chain."""
        ...


class TenantResolver(Plugin, Protocol):
    """The plugin that runs first on every tenant route: the tenant, and the real client."""

    def apply_forwarding(self, ctx: Context) -> bytes:
        """Believe a trusted proxy's X-Forwarded-* headers; returns the Host asked for."""
        ...


class Context:
    """Per-request state that plugins share. Slots keep creation cheap on the hot path."""

    __slots__ = (
        "_headers",
        "_log",
        "_repeated",
        "claims",
        "client_ip",
        "device_id",
        "forwarded_for",
        "forwarded_proto",
        "group",
        "host",
        "pos",
        "receive",
        "request_id",
        "response_headers",
        "scope",
        "started",
        "tenant",
        "upstream_error",
        "upstream_headers",
        "upstream_ms",
    )

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self.started = time.perf_counter()
        self._headers: dict[bytes, bytes] | None = None
        self._repeated: frozenset[bytes] = frozenset()
        # A caller's X-Request-ID is kept when it is sane, so traces join up.
        rid = self.headers.get(b"x-request-id")
        self.request_id: str = rid.decode() if rid and _REQUEST_ID.match(rid) else new_request_id()
        client = scope.get("client")
        self.client_ip: str = client[0] if client else ""
        self.host: str = ""
        self.tenant: TenantRuntime | None = None
        self.claims: dict[str, Any] | None = None
        self.device_id: str | None = None
        # headers to add to the upstream request / to the till's response
        self.upstream_headers: list[tuple[str, str]] = []
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.upstream_ms: float | None = None
        self.forwarded_for: str = self.client_ip
        self.forwarded_proto: str = scope.get("scheme", "http")
        self._log: Any = None
        self.receive: Any = None  # the ASGI receive callable, for plugins that read the body
        self.pos: Any = None  # set by the normalise plugin: the validated POS request
        self.group: str = "other"  # the route group whose chain ran (a metrics label)
        self.upstream_error: str | None = None  # how a call to ERPNext failed, if it did (a metrics label)

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Request headers by lower-case name (the last one wins), built on first use."""
        if self._headers is None:
            raw = self.scope["headers"]
            self._headers = dict(raw)
            if len(self._headers) != len(raw):  # rare: only then is the list scanned again
                seen: set[bytes] = set()
                twice: set[bytes] = set()
                for name, _ in raw:
                    (twice if name in seen else seen).add(name)
                self._repeated = frozenset(twice)
        return self._headers

    @property
    def repeated(self) -> frozenset[bytes]:
        """Names of headers the request carries more than once."""
        self.headers  # noqa: B018 (built with the dict)
        return self._repeated

    def values(self, name: bytes) -> list[bytes]:
        """Every value of header `name`, in order."""
        if name in self.repeated:
            return [v for k, v in self.scope["headers"] if k == name]
        value = self.headers.get(name)
        return [] if value is None else [value]

    @property
    def log(self) -> Any:
        """A structlog logger bound to this request (built on first use)."""
        if self._log is None:
            self._log = structlog.get_logger("pos_edge").bind(
                request_id=self.request_id,
                tenant=self.tenant.key if self.tenant else None,
                device=self.device_id,
            )
        return self._log


@dataclass(frozen=True)
class TenantRuntime:
    """A tenant's validated config with everything derived from it at load time."""

    key: str
    config: CoreTenantConfig
    chains: dict[str, tuple[Plugin, ...]]
    proxy_rules: frozenset[tuple[str, str]]
    poster: Any = None  # edge.erpnext.posting.Poster: posts this tenant's POS documents
    shield: TenantShield | None = None  # its ERPNext's breaker and sync limit (edge.shield)


async def run_chain(chain: tuple[Plugin, ...], ctx: Context) -> Response | None:
    """Run plugins in order; the first response returned ends the chain."""
    for plugin in chain:
        response = await plugin.on_request(ctx)
        if response is not None:
            return response
    return None


def sort_plugins(plugins: list[Plugin]) -> tuple[Plugin, ...]:
    """Highest priority first; ties keep declaration order."""
    return tuple(sorted(plugins, key=lambda p: -p.priority))
