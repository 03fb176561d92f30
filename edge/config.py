"""tenants.yaml: the models that validate it, loading, and error reporting.

Every plugin may add top-level keys to a tenant's entry through its own `Config`
model; the tenant schema is the core model below combined with those, so a
plugin's settings are validated with the same paths (`tenants.shop1.rate_limit`)
as the core ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from edge import config_yaml
from edge.admin.config import AdminPrincipal, AdminSettings, Operator
from edge.config_errors import Collector, ConfigError, Issue, field_error, from_validation, unknown_key, written_in_defaults
from edge.envsubst import substitute
from edge.masterdata.config import MasterdataConfig
from edge.rates import Rate

TENANT_KEY = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
HOST_NAME = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
PROXY_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "*"})



class Strict(BaseModel):
    """Base for config models: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class JwtKey(Strict):
    """An extra key that still verifies tokens (key rotation)."""

    kid: str = Field(min_length=1, max_length=64, description="key id of tokens this key verifies")
    secret: SecretStr = Field(description="the HMAC key those tokens were signed with")


class JwtConfig(Strict):
    """Device token signing and verification."""

    secret: SecretStr = Field(description="HMAC key, at least 32 bytes (48 for HS384, 64 for HS512)")
    kid: str = Field(default="current", min_length=1, max_length=64, description="key id written in issued tokens")
    algorithm: Literal["HS256", "HS384", "HS512"] = Field(default="HS256", description="`HS256`, `HS384` or `HS512`")
    ttl: int = Field(default=30 * 24 * 3600, gt=0, le=365 * 24 * 3600, description="token lifetime, seconds")
    leeway: int = Field(default=30, ge=0, le=300, description="clock-skew allowance, seconds")
    verification_keys: list[JwtKey] = Field(default_factory=list, description="older keys still accepted after a rotation")

    @model_validator(mode="after")
    def _keys_fit(self) -> JwtConfig:
        # Checked on the model (the length depends on `algorithm`) but reported on the
        # key at fault, so the admin is sent to the line to change.
        kids = [self.kid]
        for i, key in enumerate(self.verification_keys):
            if key.kid in kids:
                raise field_error(f"verification_keys.{i}.kid", f"kid {key.kid!r} is already used: every jwt key "
                                                                "needs its own kid")
            kids.append(key.kid)
        # RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
        need = int(self.algorithm[2:]) // 8
        secrets = [("secret", self.secret), *((f"verification_keys.{i}.secret", k.secret)
                                              for i, k in enumerate(self.verification_keys))]
        for where, secret in secrets:
            if len(secret.get_secret_value().encode()) < need:
                raise field_error(where, f"an {self.algorithm} jwt secret must be at least {need} bytes long")
        return self


class SyncConfig(Strict):
    """`gateway.sync`: the offline-sync queue and its workers."""

    backoff_base: float = Field(default=2.0, gt=0, description="seconds; retry n waits a random 0..min(cap, base*2^(n-1))")
    backoff_cap: float = Field(default=300.0, gt=0, description="longest wait between two attempts, in seconds")
    max_attempts: int = Field(default=5, ge=1, le=100, description="failed attempts before a job is `failed`")
    tenant_concurrency: int = Field(default=8, ge=1, le=64, description=(
        "most postings in flight per tenant, all workers together: the adaptive limit's upper bound"))
    min_concurrency: int = Field(default=1, ge=1, le=64, description="the adaptive limit's lower bound")
    adaptive: bool = Field(default=True, description=(
        "the limit follows ERPNext's latency between the bounds (false: always tenant_concurrency)"))
    max_queue: float = Field(default=1.0, gt=0, le=64, description=(
        "postings waiting in ERPNext's own queue (estimated from their latency) at which the limit shrinks"))
    live_hold: float = Field(default=3.0, ge=0, le=300, description=(
        "seconds after a live POS call or proxied write that the sync lane keeps room for live calls"))
    lease: float = Field(default=30.0, ge=1, description="seconds a claimed job stays with its worker without a renewal")
    poll_interval: float = Field(default=0.5, gt=0, le=30, description="seconds an idle worker waits before looking again")
    in_process_workers: bool = Field(default=True, description="`pos-edge serve` runs workers in each server process")
    retention: float = Field(default=30 * 24 * 3600, ge=1,
                             description="seconds a synced job (and a batch of only such) is kept; failed jobs stay")
    max_batch_bytes: int = Field(default=16 * 1024 * 1024, gt=0, le=256 * 1024 * 1024,
                                 description="largest /sync/batch body, bytes (413 above)")

    @model_validator(mode="after")
    def _bounds(self) -> SyncConfig:
        if self.min_concurrency > self.tenant_concurrency:
            raise field_error("min_concurrency", f"min_concurrency ({self.min_concurrency}) is above "
                                                 f"tenant_concurrency ({self.tenant_concurrency})")
        return self


class BreakerConfig(Strict):
    """`gateway.breaker`: when the gateway stops sending to a tenant's ERPNext that is down."""

    failures: int = Field(default=5, ge=1, le=1000, description=(
        "consecutive failed calls (no connection, timeout, 429, 502-504) that open the tenant's breaker"))
    open_for: float = Field(default=5.0, gt=0, le=3600, description=(
        "seconds the breaker stays open before one probe call may go; doubled after each failed probe"))
    max_open_for: float = Field(default=60.0, gt=0, le=3600, description="the longest back-off, seconds")


class ServerConfig(Strict):
    """`gateway.server`: what one connection may cost (a restart applies a change)."""

    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024,
                                  description="request line plus headers, bytes (431 above)")
    max_headers: int = Field(default=100, ge=10, le=1000, description="header fields per request (431 above)")
    idle_timeout: float = Field(default=5.0, gt=0, le=3600,
                                description="seconds a connection may wait before (or between) requests")
    header_timeout: float = Field(default=10.0, gt=0, le=600,
                                  description="seconds from a request's first byte to its last header (408 after)")
    body_timeout: float = Field(default=30.0, gt=0, le=3600,
                                description="seconds without a byte while a request body is read (then closed)")
    min_body_rate: int = Field(default=240, ge=0, le=10_000_000,
                               description="bytes/s a request body must average after its first 5 s (then closed); 0: any")
    max_connections: int = Field(default=2048, ge=1, le=1_000_000,
                                 description="connections per server process (503 and close above)")


class MetricsConfig(Strict):
    """`gateway.metrics`: where Prometheus reads /metrics (it names every tenant: keep it private)."""

    listen: str | None = Field(default="127.0.0.1:9464", description=(
        "`host:port` of a listener serving only /metrics (each server process; they share the port); null: none"))
    token: SecretStr | None = Field(default=None, description=(
        "if set, /metrics on the main listener answers `Authorization: Bearer <token>`; unset, it is 404 there"))

    @field_validator("listen")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return v
        host, sep, port = v.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536 or not host.strip("[]"):
            raise ValueError("must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464")
        return v

    def address(self) -> tuple[str, int] | None:
        """(host, port) of the metrics listener, None when there is none."""
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class LoggingConfig(Strict):
    """`gateway.logging`: how much the per-request line says."""

    quiet_paths: list[str] = Field(
        default_factory=lambda: ["/healthz", "/readyz", "/metrics"],
        description="requests to these paths (probes, scrapes) are logged at debug, not info, unless answered 5xx")

    @field_validator("quiet_paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        for path in v:
            if not path.startswith("/"):
                raise ValueError(f"{path!r} is not a path (it starts with /)")
        return v


class GatewayConfig(Strict):
    """The `gateway:` section: process-wide settings."""

    base_domains: list[str] = Field(default_factory=list, description="`<tenant>.<base-domain>` hosts map to tenants")
    store: str = Field(default="sqlite:///./pos-edge.db",
                       description=("`sqlite:///<path>` (embedded; a relative path is relative to this file) or "
                                    "`redis://host:port/db`; a restart applies a change"))
    rate_limit_storage: str = Field(default="memory://",
                                    description="`memory://` or `redis://host:port/db`; a restart applies a change")
    jwt: JwtConfig = Field(description="device tokens")
    # IPvAnyNetwork, not a union of the two: one error for a bad entry, not one per member
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-Host/For/Proto are believed")
    max_body_bytes: int = Field(default=1024 * 1024, gt=0, le=64 * 1024 * 1024,
                                description="request bodies above this are 413 (except /sync/batch)")
    device_cache_ttl: float = Field(default=5.0, ge=0, le=5.0, description="seconds a device's status may be cached")
    unauthenticated_rate_limit: Rate = Field(
        default="60/minute", description="per client address: requests refused before a device is known (no tenant, "
                                         "no or bad token, a refused registration); 429 past it")
    idempotency_ttl: int = Field(default=7 * 24 * 3600, ge=24 * 3600,
                                 description="seconds POS idempotency records and their answers are kept (at least a day)")
    claim_lease: float = Field(default=10.0, ge=2, le=300,
                               description="seconds a request's or posting's claim lasts unrenewed; renewed every third "
                                           "of it while it runs, so a crashed holder's claim is taken over this soon")
    sync: SyncConfig = Field(default_factory=SyncConfig, description="the offline-sync queue")
    breaker: BreakerConfig = Field(default_factory=BreakerConfig,
                                   description="fail fast while a tenant's ERPNext is down")
    server: ServerConfig = Field(default_factory=ServerConfig,
                                 description="what one client connection may cost (`pos-edge serve`)")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="who may read /metrics")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="the per-request log line")
    operators: list[Operator] = Field(default_factory=list, description=(
        "who operates the gateway: every admin action on every tenant (`name` and one of `key`, `key_sha256`, "
        "`password_scrypt`)"))
    admin: AdminSettings = Field(default_factory=AdminSettings, description="admin tokens and logins (/admin)")
    public_url: AnyHttpUrl | None = Field(default=None, description=(
        "the gateway's URL as ERPNext reaches it (`https://pos.example.com`): `pos-edge erpnext setup` points the "
        "tenant's Webhooks at `<public_url>/hooks/erpnext/<tenant>`; unset, no Webhooks are made"))

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: AnyHttpUrl | None) -> AnyHttpUrl | None:
        if v is not None and (v.query or v.fragment or v.username or v.password):
            raise ValueError("must be scheme://host[:port][/path]: no query, no user:password")
        return v

    @field_validator("operators")
    @classmethod
    def _operator_names(cls, v: list[Operator]) -> list[Operator]:
        names = [o.name for o in v]
        if len(names) != len(set(names)):
            raise ValueError("operator names must be unique")
        return v

    @field_validator("base_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        out = [d.strip().lower().rstrip(".") for d in v]
        for d in out:
            if not HOST_NAME.match(d):
                raise ValueError(f"{d!r} is not a host name")
        return out

    @field_validator("store")
    @classmethod
    def _store_url(cls, v: str) -> str:
        if not re.match(r"^(sqlite:///.+|rediss?://.+)$", v):
            raise ValueError("must be sqlite:///<path> or redis://host:port/db")
        return v

    @field_validator("rate_limit_storage")
    @classmethod
    def _limits_url(cls, v: str) -> str:
        if not re.match(r"^(memory://|rediss?://.+)$", v):
            raise ValueError("must be memory:// or redis://host:port/db")
        return v


class ErpnextConfig(Strict):
    """Where a tenant's ERPNext is and how to authenticate to it."""

    url: AnyHttpUrl = Field(description="ERPNext origin, `https://erp.example.com` (no path)")
    api_key: SecretStr = Field(description="the API user's key")
    api_secret: SecretStr = Field(description="the API user's secret")
    timeout: float = Field(default=10.0, gt=0, le=300, description="connect and read timeout, seconds (504 beyond)")
    site_name: str | None = Field(default=None, description="Frappe site to address (sent as Host and X-Frappe-Site-Name)")
    time_zone: str | None = Field(default=None, description=(
        "the site's time zone (e.g. Africa/Kampala) if the API user may not read System Settings; "
        "read from there otherwise"))
    webhook_secret: SecretStr | None = Field(default=None, description=(
        "signs ERPNext's Webhooks to `POST /hooks/erpnext/<tenant>` (X-Frappe-Webhook-Signature), at least 16 "
        "characters; `pos-edge erpnext setup` writes it into the Webhooks; unset, changes are found by polling"))
    commit_grace: float = Field(default=150.0, gt=0, le=3600, description=(
        "seconds after a posting whose outcome is unknown before the sale may be posted again, where the reference "
        "field is not unique: longer than ERPNext's own request timeout (gunicorn's, 120 s by default)"))

    @field_validator("webhook_secret")
    @classmethod
    def _strong(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError("a webhook secret must be at least 16 characters long")
        return v

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{v!r} is not a time zone (e.g. Africa/Kampala, Europe/Berlin, UTC)") from None
        return v

    @model_validator(mode="after")
    def _grace_outlasts_timeout(self) -> ErpnextConfig:
        if self.commit_grace <= self.timeout:
            # at commit_grace if it is written, else at the timeout that outgrew its default
            where = "commit_grace" if "commit_grace" in self.model_fields_set else "timeout"
            raise field_error(where, f"commit_grace ({self.commit_grace:g} s) must be longer than timeout "
                                     f"({self.timeout:g} s): ERPNext may still commit a post the gateway gave up on")
        return self

    @field_validator("url")
    @classmethod
    def _origin_only(cls, v: AnyHttpUrl) -> AnyHttpUrl:
        if v.path not in (None, "", "/") or v.query or v.fragment or v.username or v.password:
            raise ValueError("must be the site's origin only (scheme://host[:port]): no path, no user:password")
        return v

    @field_validator("site_name")
    @classmethod
    def _site(cls, v: str | None) -> str | None:
        if v is not None and not HOST_NAME.match(v.lower()):
            raise ValueError(f"{v!r} is not a site (host) name")
        return v

    @property
    def origin(self) -> str:
        """`scheme://host[:port]` without a trailing slash."""
        return str(self.url).rstrip("/")


class RegistrationConfig(Strict):
    """Device enrollment. Without a key, registration is open (Till King contract)."""

    enrollment_key: SecretStr | None = Field(
        default=None, description="required from tills at registration; absent = open registration (warned)")


class ProxyConfig(Strict):
    """What `/erpnext/...` may do beyond GET on resources."""

    allow: list[str] = Field(default_factory=list, description="`\"<METHOD> <DocType>\"`, `\"<METHOD> <DocType>:run_method\"` "
                             "or `\"<METHOD> method:<dotted.path>\"` rules")

    @field_validator("allow")
    @classmethod
    def _rules(cls, v: list[str]) -> list[str]:
        for rule in v:
            method, _, target = rule.strip().partition(" ")
            if method.upper() not in PROXY_METHODS or not target.strip():
                raise ValueError(
                    f"{rule!r}: a rule is '<METHOD> <DocType>', '<METHOD> <DocType>:run_method' "
                    "or '<METHOD> method:<dotted.path>'"
                )
        return v

    def rules(self) -> frozenset[tuple[str, str]]:
        """The rules as (METHOD, target) pairs."""
        pairs = (rule.strip().partition(" ") for rule in self.allow)
        return frozenset((m.upper(), t.strip()) for m, _, t in pairs)


class CoreTenantConfig(Strict):
    """A tenant's own keys; plugins add theirs through their Config models."""

    name: str = Field(min_length=1, description="display name")
    status: Literal["active", "suspended"] = Field(default="active", description="`active` or `suspended` (403)")
    hosts: list[str] = Field(default_factory=list, description="extra full host names for this tenant")
    erpnext: ErpnextConfig = Field(description="the tenant's ERPNext")
    registration: RegistrationConfig = Field(default_factory=RegistrationConfig, description="device enrollment")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig, description="what /erpnext/... may do beyond GET")
    masterdata: MasterdataConfig = Field(default_factory=MasterdataConfig,
                                         description="master data for tills (/v1/init, /v1/products, ...)")
    admins: list[AdminPrincipal] = Field(default_factory=list, description=(
        "who administers this tenant's stores and terminals (/admin): `name`, `role`, `branches`, and one of "
        "`key` (from the environment), `key_sha256`, `password_scrypt`"))

    @model_validator(mode="after")
    def _admins_fit(self) -> CoreTenantConfig:
        names = [a.name for a in self.admins]
        if len(names) != len(set(names)):
            raise field_error("admins", "admin names must be unique within a tenant")
        branches = getattr(self, "branches", None) or {}  # the POS mapping's (a plugin's key)
        for i, admin in enumerate(self.admins):
            unknown = [b for b in admin.branches if b not in branches]
            if unknown:
                raise field_error(f"admins.{i}.branches", f"no such branch: {', '.join(unknown)} "
                                                         f"(branches: {', '.join(sorted(branches)) or 'none'})")
        return self

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        out = [h.strip().lower().rstrip(".") for h in v]
        for h in out:
            if not HOST_NAME.match(h):
                raise ValueError(f"{h!r} is not a host name")
        return out


@cache
def tenant_model() -> type[CoreTenantConfig]:
    """The tenant schema: the core model plus every plugin's Config."""
    from plugins import DEFAULT_PLUGINS

    extras: tuple[type[BaseModel], ...] = tuple(p.Config for p in DEFAULT_PLUGINS if p.Config.model_fields)
    model: type[BaseModel] = create_model("TenantConfig", __base__=(CoreTenantConfig, *extras))
    model.model_config["extra"] = "forbid"
    model.model_rebuild(force=True)
    return cast(type[CoreTenantConfig], model)  # the core model, plus the plugins' fields


SECRET_KEYS = frozenset({"secret", "api_key", "api_secret", "enrollment_key", "token", "webhook_secret", "key"})


@dataclass(frozen=True)
class LoadedConfig:
    """A validated configuration and what the loader noticed on the way."""

    gateway: GatewayConfig
    tenants: dict[str, CoreTenantConfig]
    source: str
    defaulted_variables: tuple[str, ...] = ()
    # paths of secrets that came from a ${VAR:-default} fallback (a value printed in a file)
    defaulted_secrets: tuple[str, ...] = ()


def load(path: str | Path, env: dict[str, str] | None = None) -> LoadedConfig:
    """Read, substitute and validate a tenants.yaml; raise ConfigError with every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [("", f"cannot read file: {exc.strerror or exc}")]) from None
    loaded = parse(text, source, env)
    return replace(loaded, gateway=_anchored(loaded.gateway, Path(path).parent))


def _anchored(gateway: GatewayConfig, base: Path) -> GatewayConfig:
    """A relative SQLite path is relative to the config file, not the working directory:
    a worker started from elsewhere must open the gateway's database, not a new empty one."""
    prefix = "sqlite:///"
    if not gateway.store.startswith(prefix):
        return gateway
    db = Path(gateway.store.removeprefix(prefix))
    if db.is_absolute() or str(db) == ":memory:":
        return gateway
    return gateway.model_copy(update={"store": prefix + str((base / db).resolve())})


SECTIONS = ("gateway", "defaults", "tenants")


def parse(text: str, source: str = "<string>", env: dict[str, str] | None = None) -> LoadedConfig:
    """Validate tenants.yaml content; see load()."""
    try:
        doc = config_yaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        at = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise ConfigError(source, [Issue("", f"YAML syntax error: {problem}", *at)]) from None
    raw = doc.data
    if not isinstance(raw, dict):
        raise ConfigError(source, [("", "the file must be a mapping with gateway: and tenants:")])

    found = Collector(doc)
    for dup in doc.duplicates:
        *rest, last = dup.lines
        lines = f"{', '.join(map(str, rest))} and {last}"
        found.add(dup.path, f"duplicate key (lines {lines})")
    defaulted: list[tuple[str, str]] = []
    for loc in _keys_in_clear(raw):
        found.add(loc, "an admin key never stands in the file in clear: give it from the environment (${VAR}) "
                       "or as key_sha256", value=False)
    raw, missing = substitute(raw, env, defaulted=defaulted)
    for m in missing:
        found.add(m.loc, f"environment variable {m.variable} is not set", value=True)

    for k in raw:
        if k not in SECTIONS:
            hint = unknown_key(k, list(SECTIONS)).removeprefix("unknown key")
            found.add((k,), f"unknown section (expected {', '.join(SECTIONS)}){hint}")
    gateway: GatewayConfig | None = None
    try:
        gateway = GatewayConfig.model_validate(raw.get("gateway"))
    except ValidationError as exc:
        found.extend(from_validation(exc, GatewayConfig), ("gateway",))
    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        found.add(("defaults",), "must be a mapping", value=True)
        defaults = {}
    entries = raw.get("tenants")
    if not isinstance(entries, dict):
        found.add(("tenants",), "must be a mapping of subdomain -> tenant", value=True)
        entries = {}

    model = tenant_model()
    _check_defaults(model, defaults, found)
    tenants: dict[str, CoreTenantConfig] = {}
    for key, body in entries.items():
        if not isinstance(key, str) or not TENANT_KEY.match(key):
            found.add(("tenants", key), "a tenant key is a lower-case DNS label (a-z, 0-9, -)")
            continue
        if not isinstance(body, dict):
            found.add(("tenants", key), "must be a mapping", value=True)
            continue
        try:
            tenants[key] = model.model_validate(_merge(defaults, body))
        except ValidationError as exc:
            for f in from_validation(exc, model):
                # a mistake inherited from defaults: is reported where it is written, once
                inherited = f.kind != "missing" and written_in_defaults(f.loc, body, defaults)
                where = ("defaults",) if inherited else ("tenants", key)
                found.add((*where, *f.loc), f.message, value=f.value)
    if gateway is not None:
        for loc, message in _host_conflicts(gateway, tenants):
            found.add(loc, message, value=True)
    # A missing variable's empty stand-in value fails validation too (at its own path, or
    # in a check of the model holding it, e.g. the jwt secret's length): report it once.
    found.drop_under({m.loc for m in missing}, keep="environment variable")
    errors = found.issues()
    if errors or gateway is None:
        raise ConfigError(source, list(errors))
    names = tuple(dict.fromkeys(name for _, name in defaulted))
    secrets = tuple(path for path, _ in defaulted if path.rsplit(".", 1)[-1] in SECRET_KEYS)
    return LoadedConfig(gateway, tenants, source, names, secrets)


def _keys_in_clear(raw: dict[Any, Any]) -> list[tuple[Any, ...]]:
    """Where an admin's or operator's `key` is written as the key itself, not as ${VAR}."""
    gateway = raw.get("gateway")
    places: list[tuple[Any, Any]] = [(("gateway", "operators"), gateway.get("operators") if isinstance(gateway, dict)
                                      else None)]
    tenants = raw.get("tenants")
    if isinstance(tenants, dict):
        places += [(("tenants", k, "admins"), t.get("admins")) for k, t in tenants.items() if isinstance(t, dict)]
    out = []
    for base, entries in places:
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            key = entry.get("key") if isinstance(entry, dict) else None
            if isinstance(key, str) and "${" not in key:
                out.append((*base, i, "key"))
    return out


def _check_defaults(model: type[CoreTenantConfig], defaults: dict[str, Any], found: Collector) -> None:
    """Validate `defaults:` on its own, so that a mistake in it is reported even where
    every tenant overrides the key. What only a whole tenant has (its name, its ERPNext
    url) is not required here: the tenants' own checks report it if it is missing."""
    if not defaults:
        return
    try:
        model.model_validate(defaults)
    except ValidationError as exc:
        found.extend([f for f in from_validation(exc, model) if f.kind != "missing"], ("defaults",))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge a tenant's entry over the `defaults:` section."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _host_conflicts(gateway: GatewayConfig, tenants: dict[str, CoreTenantConfig]) -> list[tuple[tuple[str, ...], str]]:
    seen: dict[str, str] = {}
    errors: list[tuple[tuple[str, ...], str]] = []
    for key, t in tenants.items():
        for host in [f"{key}.{d}" for d in gateway.base_domains] + t.hosts:
            if host in seen and seen[host] != key:
                errors.append((("tenants", key, "hosts"), f"{host} is already served by tenant {seen[host]}"))
            seen[host] = key
    return errors
