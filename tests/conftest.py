"""Shared fixtures: a real Redis, the ERPNext stand-in on a loopback port, and
pos-edge itself started as a subprocess (`pos-edge serve`) on another port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import redis
import yaml

from edge.standin import StandIn, StandInServer, StandInSite
from edge.standin.server import free_port

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
JWT_SECRET = "test-jwt-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
BASE = "tillking.test"
POS_EDGE = str(Path(sys.executable).with_name("pos-edge"))

# Stand-in credentials per site. shop1 and shop2 share one stand-in server (as
# two Frappe sites on one bench), so cross-tenant leaks would be visible.
CREDS = {
    "shop1": ("key-shop1", "secret-shop1"),
    "shop2": ("key-shop2", "secret-shop2"),
}
# A site addressed by the ERPNext URL's own host (no site_name configured).
PLAIN_SITE = "127.0.0.1"
PLAIN_CREDS = ("key-plain", "secret-plain")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis database for tests."""
    # No FLUSHDB: another run may share this database. Tests use unique ids instead.
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    client.close()
    return REDIS_URL


def new_standin_server() -> StandInServer:
    """A started stand-in with sites shop1.erp.test, shop2.erp.test and the plain site."""
    sites = []
    for shop, (key, secret) in CREDS.items():
        site = StandInSite(f"{shop}.erp.test", users={key: (secret, f"api@{shop}.test")})
        site.insert("Item", {"name": f"ITEM-{shop}", "item_code": f"ITEM-{shop}", "item_name": f"Item of {shop}"})
        sites.append(site)
    sites.append(StandInSite(PLAIN_SITE, users={PLAIN_CREDS[0]: (PLAIN_CREDS[1], "api@plain.test")}))
    server = StandInServer(StandIn(sites))
    server.start()
    return server


@pytest.fixture(scope="session")
def standin_server() -> Iterator[StandInServer]:
    """The ERPNext stand-in with sites shop1.erp.test and shop2.erp.test."""
    server = new_standin_server()
    yield server
    server.stop()


@pytest.fixture
def standin(standin_server: StandInServer) -> Iterator[StandIn]:
    """The stand-in's state, with requests and faults reset around each test."""
    standin_server.standin.reset()
    yield standin_server.standin
    standin_server.standin.reset()


# POS mapping per test tenant; the stand-in sites are seeded with these names.
POS_MAPPING = {
    "shop1": {
        "company": "Shop One Ltd",
        "invoice_doctype": "Sales Invoice",
        "default_customer": "Walk-in Customer",
        "payment_methods": {"cash": "Cash", "momo": "Mobile Money", "card": "Credit Card"},
        "branches": {"main": {"pos_profile": "Shop One Main", "warehouse": "Stores - S1", "cost_center": "Main - S1"}},
        "item_codes": {"cof": "COFFEE"},
    },
    "shop2": {
        "company": "Shop Two Ltd",
        "invoice_doctype": "POS Invoice",
        "default_customer": "Walk-in Customer",
        "payment_methods": {"cash": "Cash", "momo": "Mobile Money"},
        "branches": {"front": {"pos_profile": "Shop Two Front", "warehouse": "Stores - S2", "cost_center": "Main - S2"}},
    },
}


def tenant_entry(shop: str, erp_url: str, **over: Any) -> dict[str, Any]:
    """A tenants.yaml entry for `shop` pointing at the stand-in."""
    key, secret = CREDS.get(shop, CREDS["shop1"])
    entry: dict[str, Any] = {
        "name": f"Shop {shop}",
        "erpnext": {"url": erp_url, "site_name": f"{shop}.erp.test", "api_key": key, "api_secret": secret},
        "proxy": {"allow": ["POST Item", "GET method:frappe.auth.get_logged_user"]},
        **POS_MAPPING.get(shop, {}),
    }
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(entry.get(k), dict):
            entry[k] = {**entry[k], **v}
        else:
            entry[k] = v
    return entry


def base_config(tmp: Path, erp_url: str, store: str = "sqlite", **gateway: Any) -> dict[str, Any]:
    """A working config with tenants shop1 (enrollment key) and shop2 (open registration)."""
    store_url = f"sqlite:///{tmp}/state.db" if store == "sqlite" else REDIS_URL
    return {
        "gateway": {
            "base_domains": [BASE],
            "store": store_url,
            "rate_limit_storage": "memory://",
            "device_cache_ttl": 0.2,
            "unauthenticated_rate_limit": "100000/minute",  # tests fail on purpose, all from 127.0.0.1
            "metrics": {"listen": f"127.0.0.1:{free_port()}"},
            "jwt": {"secret": JWT_SECRET, "kid": "k1"},
            # fast retries and short leases, so back-off and crash recovery fit in a test
            "sync": {"backoff_base": 0.05, "backoff_cap": 0.2, "poll_interval": 0.05, "lease": 2},
            **gateway,
        },
        "defaults": {"rate_limit": "1000/minute", "erpnext": {"timeout": 2}},
        "tenants": {
            "shop1": tenant_entry("shop1", erp_url, registration={"enrollment_key": "enrol-1"}),
            "shop2": tenant_entry("shop2", erp_url),
        },
    }


class Gateway:
    """A running `pos-edge serve` and helpers to talk to it as a till would."""

    def __init__(self, config_path: Path, port: int, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.config_path = config_path
        self.port = port
        self.proc = proc
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{port}"
        # idle connections are dropped before the gateway's own idle_timeout (5 s) closes them: a
        # request sent on a connection the server is closing at that moment gets no answer
        self.http = httpx.Client(base_url=self.url, timeout=15, limits=httpx.Limits(keepalive_expiry=2.0))
        self.tokens: dict[tuple[str, str], str] = {}  # the last token issued per (tenant, device)
        self._metrics_listen: str | None = None

    def request(self, method: str, path: str, tenant: str = "shop1", token: str | None = None, **kw: Any) -> httpx.Response:
        """Send a request with the tenant's Host (and a Bearer token when given); `headers`
        may be a dict or a list of pairs (to send a name twice)."""
        extra = kw.pop("headers", {})
        pairs = list(extra.items()) if isinstance(extra, dict) else list(extra)
        headers = [("Host", f"{tenant}.{BASE}"), *pairs]
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        return self.http.request(method, path, headers=headers, **kw)

    def register(self, device_id: str = "till-1", tenant: str = "shop1", proof: str | None = "last",
                 headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
        """POST /gateway/device/register for `device_id`. A device registered before proves
        it is itself with `proof`: by default the last token this helper got for it."""
        payload = {
            "device_id": device_id,
            "device_name": f"Till {device_id}",
            "tenant_subdomain": tenant,
            "branch_id": next(iter(POS_MAPPING.get(tenant, POS_MAPPING["shop1"])["branches"])),  # the tenant's first
            **({"enrollment_key": "enrol-1"} if tenant == "shop1" else {}),
            **body,
        }
        if proof == "last":
            proof = self.tokens.get((tenant, device_id))
        r = self.request("POST", "/gateway/device/register", tenant=tenant, json=payload, token=proof,
                         headers=headers or {})
        if r.status_code == 201:
            self.tokens[(tenant, device_id)] = r.json()["token"]
        return r

    def token(self, device_id: str = "till-1", tenant: str = "shop1") -> str:
        """Register and return the token."""
        r = self.register(device_id, tenant)
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `pos-edge` admin command against this gateway's config."""
        return subprocess.run([POS_EDGE, *args, "--config", str(self.config_path)], capture_output=True, text=True, timeout=30)

    def metrics_listen(self) -> str:
        """host:port of the gateway's metrics listener (gateway.metrics.listen as it started:
        a reload cannot move it)."""
        if self._metrics_listen is None:
            gateway = yaml.safe_load(self.config_path.read_text()).get("gateway") or {}
            self._metrics_listen = str((gateway.get("metrics") or {}).get("listen", "127.0.0.1:9464"))
        return self._metrics_listen

    def metrics(self) -> str:
        """The Prometheus text from the gateway's metrics listener."""
        r = httpx.get(f"http://{self.metrics_listen()}/metrics", timeout=10)
        assert r.status_code == 200, r.text
        return r.text

    def log_lines(self) -> list[str]:
        """What the gateway printed so far."""
        return self.log_path.read_text().splitlines()

    def wait_log(self, needle: str, timeout: float = 3.0) -> list[str]:
        """Log lines once one contains `needle` (access lines are flushed every 0.2 s)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.log_lines()
            if any(needle in line for line in lines) or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.http.close()
        terminate(self.proc)


def terminate(proc: subprocess.Popen[bytes], timeout: float = 15) -> int:
    """SIGTERM, wait up to `timeout` (then SIGKILL); returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def start_gateway(tmp: Path, config: dict[str, Any], env: dict[str, str] | None = None,
                  config_path: Path | None = None, args: Sequence[str] = ()) -> Gateway:
    """Write `config` to tmp/tenants.yaml (or serve `config_path`, already written) and run
    `pos-edge serve` on a free port (`args`: more serve options, e.g. --workers 2)."""
    path = config_path or tmp / "tenants.yaml"
    if config_path is None:
        path.write_text(yaml.safe_dump(config, sort_keys=False))
    metrics = str((config.get("gateway") or {}).get("metrics", {}).get("listen") or "")
    port = free_port()
    while metrics.endswith(f":{port}"):  # two free_port() calls can return the same port
        port = free_port()
    log_path = tmp / f"gateway-{port}.log"
    proc = subprocess.Popen(
        [POS_EDGE, "serve", "--config", str(path), "--host", "127.0.0.1", "--port", str(port), "--grace", "2",
         *args],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )
    gw = Gateway(path, port, proc, log_path)
    gw.metrics_listen()  # read now: a test may break the file later
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pos-edge exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            if gw.http.get("/healthz", timeout=1).status_code == 200:
                return gw
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    gw.stop()
    raise RuntimeError(f"pos-edge did not start:\n{log_path.read_text()}")


@pytest.fixture
def gateway_factory(tmp_path: Path, standin_server: StandInServer) -> Iterator[Callable[..., Gateway]]:
    """Start gateways with custom configs; all are stopped at the end of the test."""
    started: list[Gateway] = []

    def make(config: dict[str, Any] | None = None, env: dict[str, str] | None = None, store: str = "sqlite") -> Gateway:
        sub = tmp_path / f"gw{len(started)}"
        sub.mkdir()
        gw = start_gateway(sub, config or base_config(sub, standin_server.url, store=store), env)
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def gateway(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, standin_server: StandInServer) -> Iterator[Gateway]:
    """One gateway per module and store backend, on the standard test config."""
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    tmp = tmp_path_factory.mktemp(f"gw-{request.param}")
    gw = start_gateway(tmp, base_config(tmp, standin_server.url, store=request.param))
    yield gw
    gw.stop()


def forge(claims: dict[str, Any], secret: str = JWT_SECRET, alg: str = "HS256", kid: str = "k1") -> str:
    """A token signed outside the gateway (for expiry and tampering tests)."""
    now = int(time.time())
    base = {"sub": "till-1", "tenant": "shop1", "branch_id": "main", "gen": 1, "iat": now, "exp": now + 600, "jti": "x"}
    return jwt.encode({**base, **claims}, secret, algorithm=alg, headers={"kid": kid})


@pytest.fixture
def private_redis() -> Iterator[Callable[[], None]]:
    """A Redis server of this test's own (yields its URL via .url; call stop() to take it away)."""
    import shutil

    binary = shutil.which("redis-server")
    assert binary, "redis-server is required (.ci/run installs it)"
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    client.close()

    class Handle:
        url = f"redis://127.0.0.1:{port}/0"

        @staticmethod
        def stop() -> None:
            proc.terminate()
            proc.wait(timeout=10)

    yield Handle
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def pos_data(standin_server: StandInServer) -> None:
    """POS master data on both test sites (idempotent), named as POS_MAPPING expects."""
    from edge.standin.seed import seed_pos

    sites = standin_server.standin.sites
    seed_pos(sites["shop1.erp.test"], "Shop One Ltd", suffix="S1", pos_profile="Shop One Main", invoice_doctype="Sales Invoice")
    # POS Invoices need an open POS Opening Entry; the gateway does not open shifts yet
    seed_pos(sites["shop2.erp.test"], "Shop Two Ltd", suffix="S2", pos_profile="Shop Two Front", invoice_doctype="POS Invoice",
             open_shift=True)
