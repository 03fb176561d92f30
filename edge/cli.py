"""`pos-edge`: serve | worker | check | config show/schema | devices | sync | erpnext setup | admin hash-password |
demo-erpnext."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import Sequence
from typing import Any

import structlog

from edge import config as config_mod

DEFAULT_CONFIG = "tenants.yaml"


def _config_path(args: argparse.Namespace) -> str:
    return args.config or os.environ.get("POS_EDGE_CONFIG") or DEFAULT_CONFIG


def _load_or_exit(path: str) -> config_mod.LoadedConfig:
    try:
        return config_mod.load(path)
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Validate the config, then run uvicorn with the app factory."""
    path = _config_path(args)
    cfg = _load_or_exit(path)  # fail fast, with the full error list, before uvicorn starts
    if cfg.defaulted_secrets and not _is_loopback(args.host):
        # A ${VAR:-default} secret is printed in a file anyone can read: fine for a
        # demo on 127.0.0.1, never for a listener others can reach.
        print(
            f"refusing to listen on {args.host}: these secrets use the default written in {path}: "
            f"{', '.join(cfg.defaulted_secrets)}; set their environment variables",
            file=sys.stderr,
        )
        return 1
    if not _store_reachable(cfg, args.store_wait):
        return 1
    os.environ["POS_EDGE_CONFIG"] = path
    os.environ["POS_EDGE_WORKERS"] = str(args.workers)
    os.environ["POS_EDGE_LOG_LEVEL"] = args.log_level
    os.environ["POS_EDGE_GRACE"] = str(args.grace)
    # a reload must not bring in defaulted secrets once the listener is public
    os.environ["POS_EDGE_PUBLIC"] = "0" if _is_loopback(args.host) else "1"
    from edge.server import ENV as SERVER_ENV

    os.environ[SERVER_ENV] = cfg.gateway.server.model_dump_json()  # read by each worker process's protocol
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down gracefully, to end with the
    # signal's default status; a graceful stop is a success, so the re-raised signal
    # lands in a handler that ignores it, and serve exits 0.
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    from edge.logs import uvicorn_log_config

    options: dict[str, Any] = dict(
        factory=True,
        # httptools with header limits, client timeouts and a connection cap (edge/server.py)
        http="edge.server:BoundedHttpToolsProtocol",
        timeout_keep_alive=cfg.gateway.server.idle_timeout,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # pos-edge writes its own line per request
        proxy_headers=False,  # X-Forwarded-* are trusted only per gateway.trusted_proxies
        server_header=False,
        log_level=args.log_level,
        # uvicorn's and the libraries' records as pos-edge's JSON lines, in every process
        log_config=uvicorn_log_config(args.log_level),
        timeout_graceful_shutdown=args.grace,
    )
    from edge.supervisor import PortInUse, serve

    try:
        serve("edge.app:create_app", options)
    except PortInUse as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _store_reachable(cfg: config_mod.LoadedConfig, wait: float) -> bool:
    """Fail fast, with a clear message, when the state store does not answer within `wait` s."""
    from edge.store import redacted, wait_for_store

    error = asyncio.run(wait_for_store(cfg.gateway.store, wait))
    if error is not None:
        print(f"cannot reach the state store {redacted(cfg.gateway.store)} (gave up after {wait:g} s): {error}",
              file=sys.stderr)
        return False
    return True


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_check(args: argparse.Namespace) -> int:
    """Validate a tenants.yaml; print every error with its path."""
    path = args.path or _config_path(args)
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{path}: OK ({len(cfg.tenants)} tenant(s): {', '.join(cfg.tenants) or '-'})")
    from edge.erpnext.setup import STANDARD_FIELDS

    entries: dict[str, Any] = dict(cfg.tenants)  # with the plugins' keys (POS), which the core model's type lacks
    for key, tenant in entries.items():
        if tenant.registration.enrollment_key is None:
            print(f"  warning: tenants.{key}.registration.enrollment_key is not set: registration is open")
        if tenant.pos_enabled and tenant.reference_field in STANDARD_FIELDS:
            print(f"  warning: tenants.{key}.reference_field: {tenant.reference_field} is not unique in ERPNext: "
                  "exactly-once rests on the gateway's store, and a sale whose posting outcome is unknown is posted "
                  f"again only after erpnext.commit_grace ({tenant.erpnext.commit_grace:g} s); a unique Custom Field "
                  "(the default, made by pos-edge erpnext setup) avoids the wait. /readyz shows each tenant's field.")
    if cfg.defaulted_variables:
        print(f"  warning: defaults used for unset variables: {', '.join(cfg.defaulted_variables)}")
    if cfg.defaulted_secrets:
        print(f"  warning: secrets from defaults (serve binds only to loopback): {', '.join(cfg.defaulted_secrets)}")
    return _check_online(cfg) if args.online else 0


def _check_online(cfg: config_mod.LoadedConfig) -> int:
    """Look up in each tenant's ERPNext every name its config gives; one line per problem."""
    from edge.erpnext.client import ErpnextClient
    from edge.erpnext.preflight import preflight
    from edge.upstream import Upstreams

    async def run() -> int:
        upstreams = Upstreams(pool_size=8)
        try:
            results = await asyncio.gather(*(preflight(key, t, ErpnextClient(upstreams, t.erpnext))
                                             for key, t in cfg.tenants.items()))
        finally:
            await upstreams.close()
        problems = 0
        for key, findings in zip(cfg.tenants, results, strict=True):
            for finding in findings:
                print(f"  {finding}", file=sys.stdout if finding.warning else sys.stderr)
                problems += not finding.warning
            if not any(not f.warning for f in findings):
                print(f"  tenants.{key}: ERPNext at {cfg.tenants[key].erpnext.url} holds everything it names")
        if problems:
            print(f"{problems} problem(s) found in ERPNext", file=sys.stderr)
        return 1 if problems else 0

    return asyncio.run(run())


def cmd_config_show(args: argparse.Namespace) -> int:
    """Print the effective configuration: defaults merged into each tenant, secrets masked."""
    from edge.config_view import effective

    cfg = _load_or_exit(_config_path(args))
    print(f"# effective configuration of {cfg.source} (defaults applied, secrets masked)")
    print(effective(cfg), end="")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    """Print the JSON Schema of tenants.yaml (the committed tenants.schema.json)."""
    from edge.config_schema import text

    sys.stdout.write(text())
    return 0


def _cli_actor() -> str:
    """Who ran an admin command here, for the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def cmd_devices(args: argparse.Namespace) -> int:
    """List, block, unblock, reset or delete devices in the configured store."""
    from edge.admin import audit, terminals
    from edge.store import open_store

    cfg = _load_or_exit(_config_path(args))
    if args.tenant not in cfg.tenants:
        print(f"unknown tenant: {args.tenant}", file=sys.stderr)
        return 1

    async def run() -> int:
        store = open_store(cfg.gateway.store)
        await store.open()
        try:
            if args.action == "list":
                devices = await store.list_devices(args.tenant)
                print(f"{'DEVICE_ID':<24} {'STATUS':<8} {'GEN':>4} {'BRANCH':<16} NAME")
                now = time.time()
                for d in devices:
                    name = _printable(d.device_name)
                    status = "reset" if d.status == "active" and d.code_pending(now) else d.status
                    print(f"{d.device_id:<24} {status:<8} {d.generation:>4} {d.branch_id:<16} {name}")
                return 0
            if args.action == "reset":
                return await _reset_device(store, args.tenant, args.device_id, args.hours)
            if args.action == "delete":
                existing = await store.get_device(args.tenant, args.device_id)
                return await _delete_device(store, args.tenant, args.device_id, existing, args.force)
            # the admin API's own action (edge.admin.terminals), recorded in the same audit log
            changed, unknown = await terminals.set_blocked(store, args.tenant, args.device_id,
                                                           args.action == "block", time.time())
            if changed is None:
                print(f"no device {args.device_id} in tenant {args.tenant}", file=sys.stderr)
                return 1
            await _audited(audit, store, args.tenant, args.action, args.device_id)
            print(f"{changed.device_id}: {changed.status}")
            if unknown:
                # Deliberate: a stolen till's id can be blocked before it ever enrols. A typo
                # leaves a record behind, which `devices delete` removes.
                print(f"  note: {args.device_id} was never registered in tenant {args.tenant}; it is now blocked "
                      f"from enrolling (a mistyped id? pos-edge devices delete --tenant {args.tenant} {args.device_id})")
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


async def _delete_device(store: Any, tenant: str, device_id: str, existing: Any, force: bool) -> int:
    """Remove a device record (edge.admin.terminals.delete, as the admin API does)."""
    from edge.admin import audit, terminals

    if existing is None:
        print(f"no device {device_id} in tenant {tenant}", file=sys.stderr)
        return 1
    if not await terminals.delete(store, tenant, existing, force):
        print(f"{device_id} is a registered till (token generation {existing.generation}); deleting it ends its "
              "tokens and lets its id enrol again without proof. Block it instead, or repeat with --force.",
              file=sys.stderr)
        return 1
    await _audited(audit, store, tenant, "delete", device_id)
    print(f"{device_id}: deleted")
    return 0


async def _reset_device(store: Any, tenant: str, device_id: str, hours: float) -> int:
    """Retire a device's tokens and print a one-time enrollment code for it."""
    from edge.admin import audit, terminals

    device, code = await terminals.reset(store, tenant, device_id, hours, time.time())
    if device is None:
        print(f"no device {device_id} in tenant {tenant}", file=sys.stderr)
        return 1
    await _audited(audit, store, tenant, "reset", device_id)
    print(f"{device_id}: its tokens are retired; register it again within {hours:g} h with the one-time "
          f"enrollment code {code} (as enrollment_code, or in the enrollment key field)")
    if device.status == "blocked":
        print(f"  note: {device_id} is blocked; unblock it first: pos-edge devices unblock --tenant {tenant} {device_id}")
    return 0


async def _audited(audit: Any, store: Any, tenant: str, action: str, target: str) -> None:
    """Record a CLI admin action in the tenant's audit log (its log line goes to stderr)."""
    await audit.record(store, structlog.wrap_logger(structlog.PrintLogger(sys.stderr)), tenant, actor=_cli_actor(),
                       role="operator", action=action, target=target, address="local (CLI)")


def cmd_worker(args: argparse.Namespace) -> int:
    """Run sync workers in this process until SIGTERM/SIGINT."""
    import signal

    import structlog

    from edge import logs
    from edge.erpnext.setup import ReferenceFields
    from edge.metrics import Metrics
    from edge.ratelimit_storage import rate_limit_storage
    from edge.reload import ConfigWatcher, LiveConfig
    from edge.routes.health import MetricsListener, scrape
    from edge.runtime import build_runtime
    from edge.shield import Shields
    from edge.store import open_store
    from edge.sync.worker import SyncWorker
    from edge.upstream import Upstreams

    cfg = _load_or_exit(_config_path(args))
    metrics_sock = None
    if args.metrics_port:
        # Bound first: a port taken by another process must stop the worker before it
        # waits for the store or posts anything, not leave it running unscraped.
        try:
            metrics_sock = _listen(args.metrics_host, args.metrics_port)
        except OSError as exc:
            print(f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 1
    if not _store_reachable(cfg, args.store_wait):
        if metrics_sock is not None:
            metrics_sock.close()
        return 1
    logs.configure(level=args.log_level)
    log = structlog.get_logger("pos_edge")

    async def run() -> int:
        store = open_store(cfg.gateway.store)
        await store.open()
        await store.ping()
        upstreams = Upstreams()
        limiter = rate_limit_storage("memory://")  # unused by workers: they are not rate-limited
        metrics = Metrics()
        shields = Shields(cfg.gateway, store, log, metrics)
        runtime = build_runtime(cfg, store, limiter, upstreams, log, shields=shields)
        references = ReferenceFields(log)
        # Before the first posting: a tenant without the field must not be posted to blind.
        await references.check_all(runtime.services.tenants)
        # tenants.yaml changes reach workers too (a moved ERPNext, a new tenant)
        live = LiveConfig(cfg, runtime, store, limiter, metrics, log, references)
        listener = None
        if metrics_sock is not None:
            # no HTTP server in this process otherwise: this worker's counters, and the
            # store's queue and whether it answers, read at scrape time as serve does
            listener = MetricsListener(lambda: scrape(metrics, store, list(live.config.tenants), shields),
                                       sock=metrics_sock)
            await listener.start()
        rechecks = asyncio.create_task(references.watch(lambda: live.runtime.services.tenants))
        worker = SyncWorker(store, lambda: live.runtime, references, log, metrics)
        live.on_swap.append(worker.wake)
        watcher = ConfigWatcher(cfg.source, live.reload, log)
        watcher.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(worker.run())
        log.info("worker_started", tenants=len(cfg.tenants), config=cfg.source, pid=os.getpid())
        await stop.wait()
        await watcher.stop()
        rechecks.cancel()
        await worker.stop(grace=args.grace)
        task.cancel()
        if listener is not None:
            await listener.stop()
        await upstreams.close()
        await store.close()
        log.info("worker_stopped", pid=os.getpid())
        logs.flush()
        return 0

    return asyncio.run(run())


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (raises OSError, or socket.gaierror for a host
    that does not resolve, with the system's reason as its strerror)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def cmd_sync(args: argparse.Namespace) -> int:
    """Inspect the sync queue and re-queue failed jobs."""
    from edge.admin import audit, terminals
    from edge.routes.sync import status_view
    from edge.store import open_store

    cfg = _load_or_exit(_config_path(args))
    if args.tenant and args.tenant not in cfg.tenants:
        print(f"unknown tenant: {args.tenant}", file=sys.stderr)
        return 1
    tenants = [args.tenant] if args.tenant else list(cfg.tenants)

    async def run() -> int:
        store = open_store(cfg.gateway.store)
        await store.open()
        try:
            if args.action == "failed":
                jobs = await store.failed_jobs(args.tenant)
                print(f"{'JOB_ID':<32} {'BATCH':<36} {'TYPE':<7} {'TRIES':>5} {'CLIENT_TXN_ID':<24} LAST_ERROR")
                for j in jobs:
                    print(f"{j.job_id:<32} {j.batch_uuid:<36} {j.type:<7} {j.attempts:>5} {j.client_txn_id:<24} "
                          f"{_printable(j.last_error or '')}")
                return 0
            for tenant in tenants:
                if args.action == "status":
                    batch = await store.get_batch(tenant, args.id)
                    if batch is None:
                        continue
                    view = await status_view(store, batch, time.time())
                    print(f"batch {view.batch_uuid}  tenant {tenant}  device {batch.device}  status {view.status}  "
                          + "  ".join(f"{k} {v}" for k, v in view.summary.items()))
                    print(f"{'JOB_ID':<32} {'TYPE':<7} {'STATUS':<8} {'TRIES':>5} {'CLIENT_TXN_ID':<24} "
                          f"{'INVOICE':<22} LAST_ERROR")
                    for v in view.jobs:
                        print(f"{v.job_id:<32} {v.type:<7} {v.status:<8} {v.attempts:>5} {v.client_txn_id:<24} "
                              f"{v.invoice_id or '-':<22} {_printable(v.last_error or '')}")
                    return 0
                job = await store.get_job(tenant, args.id)
                if job is not None:
                    ids = [job.job_id]
                else:
                    batch = await store.get_batch(tenant, args.id)
                    if batch is None:
                        continue
                    ids = [j.job_id for j in batch.jobs]
                n = await terminals.retry_jobs(store, tenant, ids, time.time())  # the admin API's own action
                if n:
                    await _audited(audit, store, tenant, "retry", args.id)
                print(f"requeued {n} failed job(s) of tenant {tenant}" + ("" if n else " (none of them had failed)"))
                return 0
            print(f"no job or batch {args.id}" + (f" in tenant {args.tenant}" if args.tenant else ""), file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(run())


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def cmd_erpnext_setup(args: argparse.Namespace) -> int:
    """Create the tenant's invoice reference field, and its Webhooks, in its ERPNext."""
    from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable
    from edge.erpnext.setup import create_reference_field
    from edge.erpnext.webhooks import ensure_webhooks
    from edge.upstream import Upstreams

    cfg = _load_or_exit(_config_path(args))
    tenant = cfg.tenants.get(args.tenant)
    if tenant is None:
        print(f"unknown tenant: {args.tenant}", file=sys.stderr)
        return 1

    async def run() -> int:
        upstreams = Upstreams(pool_size=4)
        client = ErpnextClient(upstreams, tenant.erpnext)
        try:
            print(await create_reference_field(client, tenant))
            secret, public = tenant.erpnext.webhook_secret, cfg.gateway.public_url
            if secret is None or public is None:
                missing = [name for name, value in (("gateway.public_url", public),
                                                    (f"tenants.{args.tenant}.erpnext.webhook_secret", secret))
                           if value is None]
                print(f"Webhooks: none (set {' and '.join(missing)} to have them); tills hear of master-data "
                      f"changes when the gateway polls (masterdata.freshness: {tenant.masterdata.freshness:g} s)")
                return 0
            for line in await ensure_webhooks(client, args.tenant, str(public), secret.get_secret_value()):
                print(line)
            return 0
        except (FrappeError, Unreachable) as exc:
            print(f"ERPNext refused or could not be reached: {exc}", file=sys.stderr)
            return 1
        finally:
            await upstreams.close()

    return asyncio.run(run())


def cmd_admin_hash_password(args: argparse.Namespace) -> int:
    """Print a password's scrypt hash (never take the password from the command line: it
    would be in the shell history and the process list)."""
    import getpass

    from edge.admin.principals import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("the passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        print("a password needs at least 12 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def cmd_demo_erpnext(args: argparse.Namespace) -> int:
    """Run the ERPNext STAND-IN with demo data for the example tenants.yaml."""
    import uvicorn

    from edge.standin import build_app
    from edge.standin.demo import demo_standin

    print(
        f"pos-edge demo-erpnext: an ERPNext STAND-IN for tests and demos, NOT ERPNext, on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    standin = demo_standin()
    if args.workers:  # a site of that many gunicorn workers (edge.standin.capacity)
        standin.set_capacity(args.workers, args.write_time, args.read_time)
        print(f"  serving like {args.workers} ERPNext worker(s): a write takes {args.write_time:g} s, "
              f"a read {args.read_time:g} s; the rest wait in line", file=sys.stderr)
    uvicorn.run(build_app(standin), host=args.host, port=args.port, log_level="warning", lifespan="off")
    return 0


def _config_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help=f"tenants.yaml (default: $POS_EDGE_CONFIG or ./{DEFAULT_CONFIG})")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (public for tests and docs).

    Every action is its own sub-command with its own positionals, so options may come
    before or after them (`devices block --tenant T ID` and `devices block ID --tenant T`)."""
    from edge import __version__

    p = argparse.ArgumentParser(prog="pos-edge", description="Multi-tenant POS gateway in front of ERPNext")
    p.add_argument("--version", action="version", version=f"pos-edge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    levels = ["critical", "error", "warning", "info", "debug"]

    s = sub.add_parser("serve", help="run the gateway under uvicorn")
    _config_option(s)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--log-level", default="info", choices=levels)
    s.add_argument("--grace", type=float, default=30.0, help="seconds to finish in-flight requests on shut-down")
    s.add_argument("--store-wait", type=float, default=30.0, help="seconds to wait for the state store at start-up")
    s.set_defaults(func=cmd_serve)

    w = sub.add_parser("worker", help="run sync workers (post queued offline transactions) in this process")
    _config_option(w)
    w.add_argument("--log-level", default="info", choices=levels)
    w.add_argument("--grace", type=float, default=30.0, help="seconds to finish postings in flight on shut-down")
    w.add_argument("--store-wait", type=float, default=30.0, help="seconds to wait for the state store at start-up")
    w.add_argument("--metrics-port", type=int, default=0, help="serve this worker's Prometheus metrics on this port")
    w.add_argument("--metrics-host", default="127.0.0.1")
    w.set_defaults(func=cmd_worker)

    c = sub.add_parser("check", help="validate a tenants.yaml (every error with its path)")
    c.add_argument("path", nargs="?", help="the file (default: --config, $POS_EDGE_CONFIG or ./tenants.yaml)")
    c.add_argument("--online", action="store_true",
                   help="also ask each tenant's ERPNext: company, POS Profiles, warehouses, cost centers, price "
                        "lists, modes of payment (with an account), customer, items and the reference field exist")
    _config_option(c)
    c.set_defaults(func=cmd_check)

    g = sub.add_parser("config", help="the configuration")
    gs = g.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = gs.add_parser("show", help="print the effective configuration (defaults merged, secrets masked)")
    _config_option(show)
    show.set_defaults(func=cmd_config_show)
    schema = gs.add_parser("schema", help="print the JSON Schema of tenants.yaml (for editors: tenants.schema.json)")
    schema.set_defaults(func=cmd_config_schema)

    d = sub.add_parser("devices", help="list, block, unblock, reset or delete registered tills")
    ds = d.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions = {
        "list": "the tenant's devices",
        "block": "refuse the device's tokens and registrations (an unknown id is blocked from enrolling)",
        "unblock": "let a blocked device in again",
        "reset": "retire a device's tokens and print a one-time enrollment code for it",
        "delete": "forget a device record (a mistyped id; a registered till needs --force)",
    }
    for action, text in actions.items():
        a = ds.add_parser(action, help=text, description=text)
        if action != "list":
            a.add_argument("device_id", metavar="DEVICE_ID")
        a.add_argument("--tenant", required=True)
        _config_option(a)
        if action == "reset":
            a.add_argument("--hours", type=float, default=24.0, help="how long the enrollment code stays valid")
        if action == "delete":
            a.add_argument("--force", action="store_true", help="delete a device that has registered")
        a.set_defaults(func=cmd_devices)

    y = sub.add_parser("sync", help="offline sync queue: batch status, failed jobs, retry")
    ys = y.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = ys.add_parser("status", help="a batch and every job, with last errors")
    status.add_argument("id", metavar="BATCH_UUID")
    failed = ys.add_parser("failed", help="the tenant's failed jobs")
    retry = ys.add_parser("retry", help="re-queue failed jobs (fresh attempt count)")
    retry.add_argument("id", metavar="JOB_ID|BATCH_UUID")
    for a in (status, failed, retry):
        a.add_argument("--tenant", required=a is failed,
                       help="the tenant" + ("" if a is failed else " (default: every tenant is searched)"))
        _config_option(a)
        a.set_defaults(func=cmd_sync)

    x = sub.add_parser("erpnext", help="prepare a tenant's ERPNext")
    xs = x.add_subparsers(dest="erpnext_command", required=True, metavar="ACTION")
    xsetup = xs.add_parser("setup", help="create the invoice reference field (a unique Custom Field) and the "
                                               "master-data Webhooks (with gateway.public_url and erpnext.webhook_secret)")
    xsetup.add_argument("--tenant", required=True)
    _config_option(xsetup)
    xsetup.set_defaults(func=cmd_erpnext_setup)

    adm = sub.add_parser("admin", help="admin principals (tenants.<key>.admins, gateway.operators)")
    adms = adm.add_subparsers(dest="admin_action", required=True, metavar="ACTION")
    hashp = adms.add_parser("hash-password", help="read a password (twice, not echoed; or one line on stdin) and "
                                                  "print its password_scrypt value for tenants.yaml")
    hashp.set_defaults(func=cmd_admin_hash_password)

    e = sub.add_parser("demo-erpnext", help="run the ERPNext stand-in (NOT ERPNext) for the example config")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=8001)
    e.add_argument("--workers", type=int, default=0, help="serve like a site of this many gunicorn workers "
                                                        "(0: every request at once)")
    e.add_argument("--write-time", type=float, default=0.3, help="seconds a write holds a worker (with --workers)")
    e.add_argument("--read-time", type=float, default=0.0, help="seconds a read holds a worker (with --workers)")
    e.set_defaults(func=cmd_demo_erpnext)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point."""
    from edge.store.base import StoreUnusable

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StoreUnusable as exc:  # from any command's store.open(): a message, not a traceback
        print(f"cannot use the state store: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
