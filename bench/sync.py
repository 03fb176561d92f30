"""Offline-sync benchmark: queue sales through ``/sync/batch``, drain them with ``pos-edge worker``.

NOT a test. One run (defaults: 10,000 sales, 20 tenants, a stand-in answering in 20 ms):

1. starts the ERPNext stand-in (``edge.standin``) in its own process, on core 1:
   one Frappe site per tenant (``shop01.erp.bench`` ...), each seeded with
   ``seed_pos`` (customers, items, modes of payment, POS profile, the unique
   ``custom_pos_edge_txn_id`` Custom Field), every answer held back ``--delay`` s;
2. writes a tenants.yaml (20 POS tenants, the SQLite or Redis store,
   ``gateway.sync.in_process_workers: false``, ``poll_interval: 0.05``) and starts
   ``pos-edge serve`` on core 0; registers one till per tenant;
3. per phase (1 worker; 2 workers on core 0; 2 workers, one on core 0 and one on
   core 1 next to the stand-in):
   - starts the ``pos-edge worker`` processes on an empty queue, waits until they
     idle, then SIGSTOPs them (so their start-up -- imports, reference-field
     checks -- is not counted, and the enqueue does not compete with them);
   - uploads the phase's sales (fresh client_txn_ids) as batches of up to 500, one
     tenant per batch, to ``pos-edge serve``: enqueue wall time, serve CPU per
     transaction, serve RSS as the queue grows;
   - SIGCONTs the workers and times the drain (polling the store directly:
     SQLite read-only via the partial indexes, Redis via ZCARD), sampling the
     workers' RSS; stops them; checks every batch's ``/sync/status`` (all synced,
     distinct invoice ids) and the stand-in's invoices (exactly one per sale).

Printed: gateway (worker) CPU ms per job, jobs/s (whole drain and its 10-90 %
stretch), worker RSS idle / at 10, 50, 90 % drained / peak (VmHWM), stand-in
CPU (to show when it, not the gateway, is the limit), serve CPU and RSS while
queueing.

    .venv/bin/python bench/sync.py [--jobs 10000] [--tenants 20] [--delay 0.02] [--store sqlite|redis]
                                   [--phases 1,2c0,2split] [--json] [--keep-tmp] [--tmpdir /dev/shm]
                                   [--profile /tmp/worker-profile.txt]   (needs py-spy on PATH)

``--store redis`` uses redis://127.0.0.1:6379/14 (deleting the ``pos-edge:*`` keys
of db 14 first: that database is this benchmark's own).

Exit status: 0 when every job synced and the stand-in holds exactly one invoice
per job, 1 otherwise (or when a process failed), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from proxy import (  # noqa: E402 (after sys.path) bench/proxy.py: process helpers shared by the benchmarks
    POS_EDGE,
    PYTHON,
    VENV_BIN,
    BenchError,
    Child,
    _interrupt,
    cpu_seconds,
    free_port,
    pinned,
    summarize_profile,
    wait_http,
)

GATEWAY_CORE = "0"  # pos-edge serve and the (first) worker
STANDIN_CORE = "1"  # the stand-in, the bench itself, the second worker in the "split" phase
BASE_DOMAIN = "pos.bench"
SITE_DOMAIN = "erp.bench"
REDIS_URL = "redis://127.0.0.1:6379/14"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
MAX_BATCH = 500
PAGE = 4096
PHASES = {  # name -> (label, cores of the worker processes)
    "1": ("1 worker", [GATEWAY_CORE]),
    "2c0": ("2 workers, both core 0", [GATEWAY_CORE, GATEWAY_CORE]),
    "2split": ("2 workers, cores 0 + 1", [GATEWAY_CORE, STANDIN_CORE]),
}


def shop(i: int) -> str:
    return f"shop{i:02d}"


# --------------------------------------------------------------------------- stand-in process


def serve_standin(port: int, tenants: int, delay: float) -> None:
    """The ERPNext stand-in with one seeded site per tenant, plus /__bench/stats and /__bench/clear."""
    from urllib.parse import unquote

    import uvicorn

    from edge.standin import StandIn, StandInSite, build_app, seed_pos

    sites = []
    for i in range(1, tenants + 1):
        name = shop(i)
        site = StandInSite(f"{name}.{SITE_DOMAIN}", users={f"key-{name}": (f"secret-{name}", f"api@{name}.bench")})
        seed_pos(site, f"Shop {i:02d} Ltd", suffix=f"S{i:02d}", pos_profile=f"Shop {i:02d} Main",
                 invoice_doctype="Sales Invoice")
        sites.append(site)
    standin = StandIn(sites)
    standin.delay = delay
    standin.requests = collections.deque(maxlen=64)  # type: ignore[assignment]  # the log is for tests: keep it small
    inner = build_app(standin)
    counts: collections.Counter[str] = collections.Counter()

    def stats() -> dict[str, Any]:
        invoices = refs = 0
        names: set[str] = set()
        for site in standin.sites.values():
            docs = site.docs.get("Sales Invoice", {})
            invoices += len(docs)
            refs += len({d.get("custom_pos_edge_txn_id") for d in docs.values()})
            names.update(f"{site.name}/{n}" for n in docs)
        return {"invoices": invoices, "distinct_references": refs, "distinct_names": len(names),
                "requests": dict(counts)}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/__bench/"):
                if path == "/__bench/clear":
                    for site in standin.sites.values():
                        site.docs.pop("Sales Invoice", None)
                    counts.clear()
                body = json.dumps(stats()).encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
            parts = path.split("/")  # "", "api", "resource"|"method", doctype, [name]
            what = unquote(parts[3]) if len(parts) > 3 else path
            if len(parts) > 4 and parts[4]:
                what += "/<name>"
            counts[f"{scope['method']} {what}"] += 1
        await inner(scope, receive, send)

    # keep-alive like nginx in front of a real ERPNext (uvicorn's default is 5 s)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off",
                backlog=2048, timeout_keep_alive=75)


def standin_call(base: str, what: str) -> dict[str, Any]:
    import httpx

    r = httpx.post(f"{base}/__bench/{what}", timeout=30.0) if what == "clear" else httpx.get(
        f"{base}/__bench/{what}", timeout=30.0)
    r.raise_for_status()
    return r.json()


# --------------------------------------------------------------------------- /proc


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM of a process in kB (empty when it is gone)."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def rss_mb(pid: int) -> float:
    return proc_status(pid).get("VmRSS", 0) / 1024


def hwm_mb(pid: int) -> float:
    return proc_status(pid).get("VmHWM", 0) / 1024


def pin_all_threads(pid: int, core: str) -> None:
    """Pin every thread of `pid` (taskset -a)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {int(core)})
        except OSError:
            pass


# --------------------------------------------------------------------------- config and payloads


def tenants_yaml(tmp: Path, standin_port: int, args: argparse.Namespace) -> Path:
    import yaml

    store = f"sqlite:///{tmp}/queue.db" if args.store == "sqlite" else REDIS_URL
    tenants = {}
    for i in range(1, args.tenants + 1):
        name = shop(i)
        tenants[name] = {
            "name": f"Shop {i:02d}",
            "erpnext": {"url": f"http://127.0.0.1:{standin_port}", "site_name": f"{name}.{SITE_DOMAIN}",
                        "api_key": f"key-{name}", "api_secret": f"secret-{name}", "timeout": 10},
            "rate_limit": "100000/minute",
            "company": f"Shop {i:02d} Ltd",
            "invoice_doctype": "Sales Invoice",
            "default_customer": "Walk-in Customer",
            "payment_methods": {"cash": "Cash", "momo": "Mobile Money", "card": "Credit Card"},
            "branches": {"main": {"pos_profile": f"Shop {i:02d} Main", "warehouse": f"Stores - S{i:02d}",
                                  "cost_center": f"Main - S{i:02d}"}},
            "item_codes": {"cof": "COFFEE"},
        }
    config = {
        "gateway": {
            "base_domains": [BASE_DOMAIN],
            "store": store,
            "rate_limit_storage": "memory://",
            "jwt": {"secret": JWT_SECRET},
            "sync": {"in_process_workers": False, "poll_interval": 0.05, "tenant_concurrency": args.concurrency},
        },
        "tenants": tenants,
    }
    path = tmp / "tenants.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sale(txn: str, n: int) -> dict[str, Any]:
    return {
        "type": "sale",
        "client_txn_id": txn,
        "payload": {
            "items": [{"item_code": "cof", "item_name": "Coffee", "qty": 1 + n % 3, "rate": "2.50"},
                      {"item_code": "BREAD", "qty": 1, "rate": "1.20"}],
            "payments": [{"method": "cash", "amount": f"{2.5 * (1 + n % 3):.2f}"}, {"method": "momo", "amount": "1.20"}],
            "branch_id": "main",
            "till_id": "till-01",
        },
    }


@dataclass
class Upload:
    tenant: str
    body: bytes
    size: int
    batch_uuid: str = ""


def make_uploads(phase: str, jobs: int, tenants: int) -> list[Upload]:
    """Each tenant's share of `jobs` in batches of <= 500, interleaved (one tenant per request)."""
    per = [jobs // tenants + (1 if i < jobs % tenants else 0) for i in range(tenants)]
    chunks: list[list[Upload]] = []
    for i, count in enumerate(per):
        name = shop(i + 1)
        mine = []
        for start in range(0, count, MAX_BATCH):
            txns = [sale(f"p{phase}-{name}-{k:06d}", k) for k in range(start, min(count, start + MAX_BATCH))]
            mine.append(Upload(name, json.dumps({"transactions": txns}, separators=(",", ":")).encode(), len(txns)))
        chunks.append(mine)
    out = []
    for round_ in range(max((len(c) for c in chunks), default=0)):
        out += [c[round_] for c in chunks if round_ < len(c)]
    return out


# --------------------------------------------------------------------------- queue progress (read directly)


class Progress:
    """Jobs still queued (pending/retrying, leased or not) and failed jobs, read from the store."""

    def __init__(self, store: str, tmp: Path, tenants: int) -> None:
        self.store = store
        self.db_path = str(tmp / "queue.db")
        self.tenants = [shop(i) for i in range(1, tenants + 1)]
        if store == "sqlite":
            self.db = sqlite3.connect(f"file:{tmp}/queue.db?mode=ro", uri=True, timeout=10, isolation_level=None)
        else:
            import redis

            self.r = redis.Redis.from_url(REDIS_URL)

    def counts(self) -> tuple[int, int]:
        """(queued, failed) over the whole store."""
        if self.store == "sqlite":
            # both match a partial index of the queue: cheap however many jobs are synced
            queued = self.db.execute("SELECT count(*) FROM sync_jobs WHERE status IN ('pending', 'retrying')").fetchone()[0]
            failed = self.db.execute("SELECT count(*) FROM sync_jobs WHERE status = 'failed'").fetchone()[0]
            return int(queued), int(failed)
        pipe = self.r.pipeline(transaction=False)
        for t in self.tenants:
            p = f"pos-edge:{{{t}}}"
            pipe.zcard(f"{p}:ready")
            pipe.zcard(f"{p}:leased")
            pipe.zcard(f"{p}:failed")
        res = pipe.execute()
        queued = sum(res[i] + res[i + 1] for i in range(0, len(res), 3))
        failed = sum(res[i + 2] for i in range(0, len(res), 3))
        return queued, failed

    def retrying(self) -> int | None:
        if self.store == "sqlite":
            return int(self.db.execute("SELECT count(*) FROM sync_jobs WHERE status = 'retrying'").fetchone()[0])
        return None

    def write_locked(self) -> bool:
        """True when some process holds SQLite's write lock (a stopped worker mid-claim would)."""
        if self.store != "sqlite":
            return False
        probe = sqlite3.connect(self.db_path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()

    def close(self) -> None:
        if self.store == "sqlite":
            self.db.close()
        else:
            self.r.close()


# --------------------------------------------------------------------------- results


@dataclass
class Enqueue:
    phase: str
    transactions: int
    batches: int
    seconds: float
    txn_per_s: float
    serve_cpu_s: float
    serve_cpu_us_per_txn: float
    serve_rss_mb: list[tuple[int, float]]  # (jobs queued in the store, serve VmRSS MB) after each batch
    serve_hwm_mb: float


@dataclass
class Drain:
    phase: str
    label: str
    workers: int
    cores: list[str]
    jobs: int
    seconds: float
    jobs_per_s: float
    jobs_per_s_10_90: float
    cpu_s: float
    cpu_ms_per_job: float
    worker_cpu_pct_core: float  # all workers' CPU seconds / wall seconds
    standin_cpu_pct_core: float
    worker_startup_cpu_s: float  # CPU until idle before the drain (not counted above)
    worker_idle_cpu_pct: float  # while idle on an empty queue (poll_interval 0.05)
    rss_idle_mb: list[float]
    rss_at_mb: dict[str, list[float]]  # "10%"/"50%"/"90%" -> per worker
    rss_peak_mb: list[float]  # VmHWM per worker
    synced: int
    failed: int
    retried_jobs: int  # jobs that took more than one attempt
    distinct_invoice_ids: int
    standin_invoices: int
    standin_distinct_references: int
    standin_requests: dict[str, int]
    worker_events: dict[str, int]
    worker_warnings: list[str] = field(default_factory=list)
    ok: bool = True
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- steps


def register(http: Any, tenants: int) -> dict[str, str]:
    tokens = {}
    for i in range(1, tenants + 1):
        name = shop(i)
        r = http.post("/gateway/device/register", headers={"Host": f"{name}.{BASE_DOMAIN}"},
                      json={"device_id": "bench-till", "device_name": "Bench till", "tenant_subdomain": name,
                            "branch_id": "main"})
        if r.status_code != 201:
            raise BenchError(f"registering a till for {name} -> {r.status_code}: {r.text[:500]}")
        tokens[name] = r.json()["token"]
    return tokens


def enqueue(phase: str, uploads: list[Upload], http: Any, tokens: dict[str, str], serve: Child,
            progress: Progress, already: int) -> Enqueue:
    rss: list[tuple[int, float]] = []
    queued = already
    cpu0, t0 = cpu_seconds(serve.pid), time.monotonic()
    for up in uploads:
        r = http.post("/sync/batch", content=up.body, headers={
            "Host": f"{up.tenant}.{BASE_DOMAIN}", "Authorization": f"Bearer {tokens[up.tenant]}",
            "Content-Type": "application/json"})
        if r.status_code != 202:
            raise BenchError(f"POST /sync/batch ({up.tenant}, {up.size} txns) -> {r.status_code}: {r.text[:800]}")
        body = r.json()
        if body["enqueued"] != up.size:
            raise BenchError(f"POST /sync/batch ({up.tenant}): enqueued {body['enqueued']} of {up.size}")
        up.batch_uuid = body["batch_uuid"]
        queued += up.size
        rss.append((queued, rss_mb(serve.pid)))
    t1, cpu1 = time.monotonic(), cpu_seconds(serve.pid)
    n = sum(u.size for u in uploads)
    q, _ = progress.counts()
    if q != n:
        raise BenchError(f"the store holds {q} queued jobs after the upload, expected {n}")
    return Enqueue(phase, n, len(uploads), t1 - t0, n / (t1 - t0), cpu1 - cpu0, 1e6 * (cpu1 - cpu0) / n, rss,
                   hwm_mb(serve.pid))


def wait_log(child: Child, needle: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{child.stderr_tail()}")
        try:
            if needle in child.stdout_path.read_text(errors="replace"):
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise BenchError(f"{child.name}: no {needle!r} in its log within {timeout:g} s\n{child.stderr_tail()}")


def worker_log(child: Child) -> tuple[collections.Counter[str], list[str]]:
    events: collections.Counter[str] = collections.Counter()
    warnings = []
    for path in (child.stdout_path, child.stderr_path):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                if line.strip():
                    warnings.append(line.strip()[:300])
                continue
            events[str(rec.get("event"))] += 1
            if rec.get("level") in ("warning", "error", "critical", "exception"):
                warnings.append(line[:300])
    return events, warnings


def drain(key: str, args: argparse.Namespace, tmp: Path, cfg: Path, base: str, standin_url: str, standin: Child,
          serve: Child, http: Any, tokens: dict[str, str], progress: Progress, use_taskset: bool,
          children: list[Child], queued_before: int) -> tuple[Enqueue, Drain]:
    label, cores = PHASES[key]
    if not use_taskset:
        cores = ["-"] * len(cores)
    uploads = make_uploads(key, args.jobs, args.tenants)
    standin_call(standin_url, "clear")

    # 1. workers on an empty queue; idle; stopped
    workers = []
    for i, core in enumerate(cores):
        argv = [POS_EDGE, "worker", "--config", str(cfg), "--grace", "5", "--log-level", args.log_level]
        w = Child(f"worker-{key}-{i}", pinned(core, argv, use_taskset) if core != "-" else argv, tmp)
        children.append(w)
        workers.append(w)
    for w in workers:
        wait_log(w, "worker_started")
    time.sleep(1.5)  # reference-field checks (20 GETs at --delay each) and imports settle
    idle0 = [cpu_seconds(w.pid) for w in workers]
    time.sleep(1.0)
    idle1 = [cpu_seconds(w.pid) for w in workers]
    idle_pct = 100.0 * (sum(idle1) - sum(idle0)) / len(workers)
    for _ in range(50):
        for w in workers:
            os.kill(w.pid, signal.SIGSTOP)
        time.sleep(0.05)
        if not progress.write_locked():
            break
        for w in workers:  # stopped inside a claim transaction: let it finish, try again
            os.kill(w.pid, signal.SIGCONT)
        time.sleep(0.013)
    else:
        raise BenchError("could not stop the workers outside a write transaction")
    rss_idle = [rss_mb(w.pid) for w in workers]
    startup_cpu = [cpu_seconds(w.pid) for w in workers]

    # 2. queue the phase's sales through pos-edge serve (workers stopped: serve has core 0 alone)
    enq = enqueue(key, uploads, http, tokens, serve, progress, queued_before)
    print(f"  [{label}] queued {enq.transactions:,} sales in {enq.batches} batches: {enq.seconds:.2f} s, "
          f"{enq.txn_per_s:,.0f} txn/s, serve CPU {enq.serve_cpu_us_per_txn:,.0f} us/txn", flush=True)
    _, failed_before = progress.counts()

    # 3. drain
    n = enq.transactions
    cpu0 = [cpu_seconds(w.pid) for w in workers]
    s_cpu0 = cpu_seconds(standin.pid)
    samples: list[tuple[float, int, list[float]]] = []  # (t, done, rss per worker)
    spy = start_profiler(args, workers[0], use_taskset) if args.profile and key == args.profile_phase else None
    t0 = time.monotonic()
    for w in workers:
        os.kill(w.pid, signal.SIGCONT)
    deadline = t0 + args.timeout
    last_print = t0
    while True:
        time.sleep(0.1)
        now = time.monotonic()
        queued, failed = progress.counts()
        done = n - queued
        samples.append((now - t0, done, [rss_mb(w.pid) for w in workers]))
        for w in workers:
            if not w.alive():
                raise BenchError(f"{w.name} died during the drain:\n{w.stderr_tail()}")
        if now - last_print >= 5:
            last_print = now
            print(f"    {now - t0:5.1f} s: {done:,}/{n:,} done ({failed - failed_before} failed)", flush=True)
        if queued == 0:
            break
        if now > deadline:
            raise BenchError(f"drain not finished after {args.timeout:g} s: {queued:,} jobs still queued "
                             f"(retrying: {progress.retrying()})")
    t1 = samples[-1][0] + t0
    cpu1 = [cpu_seconds(w.pid) for w in workers]
    s_cpu1 = cpu_seconds(standin.pid)
    peak = [hwm_mb(w.pid) for w in workers]
    _, failed_after = progress.counts()
    if spy is not None:
        stop_profiler(spy, args)
    for w in workers:
        w.stop()
        children.remove(w)
    events: collections.Counter[str] = collections.Counter()
    warnings: list[str] = []
    for w in workers:
        ev, warn = worker_log(w)
        events.update(ev)
        warnings += warn

    wall = t1 - t0
    cpu = sum(cpu1) - sum(cpu0)

    def time_at(frac: float) -> tuple[float, list[float]]:
        for t, d, r in samples:
            if d >= frac * n:
                return t, r
        return samples[-1][0], samples[-1][2]

    t10, r10 = time_at(0.10)
    _, r50 = time_at(0.50)
    t90, r90 = time_at(0.90)
    rate_10_90 = 0.8 * n / (t90 - t10) if t90 > t10 else float("nan")

    # 4. verify: every batch synced, distinct invoice ids, one invoice per sale in the stand-in
    problems = []
    synced = failed = retried = 0
    invoice_ids: set[str] = set()
    for up in uploads:
        r = http.get(f"/sync/status/{up.batch_uuid}", headers={
            "Host": f"{up.tenant}.{BASE_DOMAIN}", "Authorization": f"Bearer {tokens[up.tenant]}"})
        if r.status_code != 200:
            problems.append(f"GET /sync/status/{up.batch_uuid} -> {r.status_code}: {r.text[:300]}")
            continue
        st = r.json()
        synced += st["summary"]["synced"]
        failed += st["summary"]["failed"]
        for j in st["jobs"]:
            if j["attempts"] > 1:
                retried += 1
            if j["status"] == "synced" and j["invoice_id"]:
                invoice_ids.add(f"{up.tenant}/{j['invoice_id']}")
            elif j["status"] == "failed" and len(problems) < 5:
                problems.append(f"{up.tenant} {j['client_txn_id']} failed: {j['last_error']}")
    stats = standin_call(standin_url, "stats")
    if synced != n:
        problems.append(f"{synced:,} of {n:,} jobs synced ({failed:,} failed)")
    if len(invoice_ids) != n:
        problems.append(f"{len(invoice_ids):,} distinct invoice ids for {n:,} jobs")
    if stats["invoices"] != n or stats["distinct_references"] != n:
        problems.append(f"the stand-in holds {stats['invoices']:,} invoices ({stats['distinct_references']:,} "
                        f"distinct references), expected {n:,}")
    if failed_after != failed_before:
        problems.append(f"{failed_after - failed_before} jobs failed")

    d = Drain(
        phase=key, label=label, workers=len(workers), cores=cores, jobs=n, seconds=wall, jobs_per_s=n / wall,
        jobs_per_s_10_90=rate_10_90, cpu_s=cpu, cpu_ms_per_job=1e3 * cpu / n,
        worker_cpu_pct_core=100.0 * cpu / wall, standin_cpu_pct_core=100.0 * (s_cpu1 - s_cpu0) / wall,
        worker_startup_cpu_s=sum(startup_cpu) / len(workers), worker_idle_cpu_pct=idle_pct,
        rss_idle_mb=rss_idle, rss_at_mb={"10%": r10, "50%": r50, "90%": r90}, rss_peak_mb=peak,
        synced=synced, failed=failed, retried_jobs=retried, distinct_invoice_ids=len(invoice_ids),
        standin_invoices=stats["invoices"], standin_distinct_references=stats["distinct_references"],
        standin_requests=stats["requests"], worker_events=dict(events), worker_warnings=warnings[:10],
        ok=not problems, problems=problems,
    )
    print(f"  [{label}] drained {n:,} jobs in {wall:.2f} s: {d.jobs_per_s:,.0f} jobs/s, "
          f"CPU {d.cpu_ms_per_job:.2f} ms/job{'' if d.ok else '  PROBLEMS: ' + '; '.join(problems)}", flush=True)
    return enq, d


# --------------------------------------------------------------------------- profile


def start_profiler(args: argparse.Namespace, worker: Child, use_taskset: bool) -> Any:
    """py-spy record (raw, collapsed stacks) of one worker for the whole drain."""
    import subprocess

    pyspy = str(VENV_BIN / "py-spy") if (VENV_BIN / "py-spy").exists() else shutil.which("py-spy")
    if not pyspy:
        print("  py-spy is not installed (pip install py-spy, or put it on PATH): no profile", file=sys.stderr)
        return None
    argv = [pyspy, "record", "-o", args.profile, "--format", "raw", "-r", "250", "--nonblocking", "-p", str(worker.pid)]
    proc = subprocess.Popen(pinned(STANDIN_CORE, argv, use_taskset), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    time.sleep(1.0)  # attached (the worker is stopped meanwhile)
    return proc


def stop_profiler(proc: Any, args: argparse.Namespace) -> None:
    import subprocess

    proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    if not Path(args.profile).exists():
        print(f"  py-spy failed ({proc.returncode}): {(out or '').strip()[-500:]}", file=sys.stderr)
        return
    rows = summarize_profile(Path(args.profile), top=args.profile_top)
    print(f"  py-spy profile of the worker ({args.profile}; phase {args.profile_phase}, its figures include py-spy's "
          f"overhead), top functions by self time:")
    print(f"  {'self %':>7} {'total %':>8}  function")
    for name, own, tot in rows:
        print(f"  {own:>7.1f} {tot:>8.1f}  {name}")


# --------------------------------------------------------------------------- report


def fmt_max(xs: list[float]) -> str:
    return f"{max(xs):.0f}"


def print_report(info: dict[str, Any], enqs: list[Enqueue], drains: list[Drain]) -> None:
    print()
    print(f"pos-edge offline-sync benchmark: {info['jobs']:,} sales per phase across {info['tenants']} tenants, "
          f"stand-in delay {1000 * info['delay']:g} ms, store {info['store']}")
    print(f"nproc={info['nproc']}, pinning={info['pinning']}; tenant_concurrency={info['concurrency']} "
          f"(cap {info['concurrency'] * info['tenants']} postings in flight), poll_interval 0.05 s, worker log level "
          f"{info['log_level']}; python {info['python']}")
    print()
    e = enqs[0]
    print(f"enqueue (POST /sync/batch, {e.batches} x <= {MAX_BATCH}, pos-edge serve on core {GATEWAY_CORE}, workers stopped):")
    for q in enqs:
        print(f"  phase {PHASES[q.phase][0]:24} {q.transactions:>7,} txns {q.seconds:>6.2f} s {q.txn_per_s:>8,.0f} txn/s   "
              f"serve CPU {q.serve_cpu_us_per_txn:>5,.0f} us/txn")
    print()
    hdr = (f"{'drain':26} {'wall s':>7} {'jobs/s':>7} {'10-90%':>7} {'CPU ms/job':>10} {'wkr %core':>9} "
           f"{'stand-in %core':>14} {'worker RSS MB idle|10/50/90%|peak':>34} {'retried':>7} {'failed':>6}")
    print(hdr)
    print("-" * len(hdr))
    for d in drains:
        rss = (f"{fmt_max(d.rss_idle_mb)} | {fmt_max(d.rss_at_mb['10%'])}/{fmt_max(d.rss_at_mb['50%'])}/"
               f"{fmt_max(d.rss_at_mb['90%'])} | {fmt_max(d.rss_peak_mb)}")
        print(f"{d.label:26} {d.seconds:>7.2f} {d.jobs_per_s:>7,.0f} {d.jobs_per_s_10_90:>7,.0f} {d.cpu_ms_per_job:>10.2f} "
              f"{d.worker_cpu_pct_core:>8.0f}% {d.standin_cpu_pct_core:>13.0f}% {rss:>34} {d.retried_jobs:>7} {d.failed:>6}")
    print("-" * len(hdr))
    print("CPU ms/job: all worker processes' utime+stime during the drain / jobs (start-up excluded: workers are")
    print("SIGSTOPped once idle, before the upload, and SIGCONTed to start the drain). %core: CPU s / wall s.")
    print("worker RSS: VmRSS idle on an empty queue, at 10/50/90 % of the queue drained, and VmHWM (the largest worker).")
    d0 = drains[0]
    print(f"worker start-up CPU {d0.worker_startup_cpu_s:.2f} s; "
          f"idle worker on an empty queue: {d0.worker_idle_cpu_pct:.1f}% of a core")
    reqs = collections.Counter()
    for d in drains:
        reqs.update(d.standin_requests)
    total_jobs = sum(d.jobs for d in drains)
    print("stand-in requests per job: " + ", ".join(f"{k} {v / total_jobs:.3f}" for k, v in reqs.most_common(6)))
    print()
    points = [pt for q in enqs for pt in q.serve_rss_mb]
    want = sorted({points[0][0], *(q.serve_rss_mb[-1][0] for q in enqs)}
                  | {min((p for p in points if p[0] >= 0.2 * info["jobs"]), default=points[0])[0]})
    shown = ", ".join(f"{q:,}: {r:.1f}" for q, r in points if q in want)
    print(f"memory, pos-edge serve VmRSS MB after N jobs stored ({shown}); peak {max(q.serve_hwm_mb for q in enqs):.1f}")
    first = min((p for p in points if p[0] >= 0.2 * info["jobs"]), default=points[0])  # after warm-up
    last = points[-1]
    if last[0] > first[0]:
        growth = 1024 * (last[1] - first[1]) / (last[0] - first[0])
        print(f"  serve RSS growth from {first[0]:,} to {last[0]:,} jobs stored: {growth:.2f} KB per job queued "
              f"-> {'flat' if growth < 0.1 else 'NOT flat'}")
    worst = max(max(d.rss_peak_mb) - max(d.rss_at_mb["10%"]) for d in drains)
    print(f"memory, workers: peak (VmHWM) - RSS at 10 % drained, worst phase: {worst:+.1f} MB "
          f"-> {'flat' if worst < 5 else 'NOT flat'}")
    bad = [d for d in drains if not d.ok]
    print()
    if bad:
        for d in bad:
            print(f"FAILED {d.label}: " + "; ".join(d.problems))
    else:
        print(f"verified: every phase synced all {info['jobs']:,} jobs (each batch's /sync/status), distinct invoice ids, "
              f"and the stand-in holds exactly one invoice per sale")
    warns = [w for d in drains for w in d.worker_warnings]
    if warns:
        print(f"worker warnings/errors ({len(warns)} shown):")
        for w in warns[:5]:
            print("  " + w[:160])


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=10_000, help="sales queued per phase (default 10000)")
    p.add_argument("--tenants", type=int, default=20, help="tenants, one stand-in site and one till each (default 20)")
    p.add_argument("--delay", type=float, default=0.02, help="seconds the stand-in holds every answer (default 0.02)")
    p.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    p.add_argument("--phases", default="1,2c0,2split",
                   help="comma list of 1 (one worker, core 0), 2c0 (two workers on core 0), 2split (two workers, "
                        "cores 0 and 1) (default all three)")
    p.add_argument("--concurrency", type=int, default=4, help="gateway.sync.tenant_concurrency (default 4)")
    p.add_argument("--log-level", default="info", choices=["warning", "info"], help="workers' log level (default info)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a drain may take (default 120)")
    p.add_argument("--json", action="store_true", help="also print a JSON summary")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, config, queue.db)")
    p.add_argument("--tmpdir", help="where the temp dir (and the SQLite queue) goes (default: $TMPDIR or /tmp; "
                                    "/dev/shm shows what the queue's fsyncs cost)")
    p.add_argument("--profile", metavar="FILE", help="py-spy record one worker during a drain (raw format to FILE)")
    p.add_argument("--profile-phase", default="1", choices=list(PHASES), help="the drain to profile (default 1)")
    p.add_argument("--profile-top", type=int, default=25, help=argparse.SUPPRESS)
    p.add_argument("--serve-standin", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    if args.serve_standin:
        serve_standin(args.serve_standin, args.tenants, args.delay)
        return 0
    phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    if not phases or any(x not in PHASES for x in phases):
        p.error(f"--phases: choose among {', '.join(PHASES)}")
    if not 1 <= args.tenants <= 99:
        p.error("--tenants: 1 to 99")

    use_taskset = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    if use_taskset:
        os.sched_setaffinity(0, {int(STANDIN_CORE)})  # the bench's own polling and uploads stay off core 0
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-sync-bench-", dir=args.tmpdir))
    children: list[Child] = []
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    info: dict[str, Any] = {
        "jobs": args.jobs, "tenants": args.tenants, "delay": args.delay,
        "store": f"sqlite ({tmp}/queue.db, WAL, synchronous=FULL)" if args.store == "sqlite" else REDIS_URL,
        "nproc": os.cpu_count(), "concurrency": args.concurrency, "log_level": args.log_level,
        "python": platform.python_version(),
        "pinning": (f"taskset: serve + worker on core {GATEWAY_CORE}; stand-in + bench on core {STANDIN_CORE}"
                    if use_taskset else "none (taskset missing or a single core)"),
    }
    enqs: list[Enqueue] = []
    drains: list[Drain] = []
    progress: Progress | None = None
    http = None
    try:
        import httpx

        if args.store == "redis":
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            stale = list(r.scan_iter("pos-edge:*", count=1000))
            for i in range(0, len(stale), 1000):
                r.delete(*stale[i:i + 1000])
            r.close()

        # the stand-in
        s_port = free_port()
        argv_s = [PYTHON, str(Path(__file__).resolve()), "--serve-standin", str(s_port), "--tenants", str(args.tenants),
                  "--delay", str(args.delay)]
        standin = Child("standin", pinned(STANDIN_CORE, argv_s, use_taskset), tmp)
        children.append(standin)
        standin_url = f"http://127.0.0.1:{s_port}"
        wait_http(standin, standin_url + "/__bench/stats")
        print(f"stand-in: {args.tenants} sites on {standin_url} (pid {standin.pid}), delay {args.delay * 1000:g} ms", flush=True)

        # pos-edge serve
        cfg = tenants_yaml(tmp, s_port, args)
        port = free_port()
        argv_e = [POS_EDGE, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--grace", "2"]
        serve = Child("serve", pinned(GATEWAY_CORE, argv_e, use_taskset), tmp)
        children.append(serve)
        base = f"http://127.0.0.1:{port}"
        wait_http(serve, base + "/healthz")
        http = httpx.Client(base_url=base, timeout=60.0)
        tokens = register(http, args.tenants)
        print(f"pos-edge serve on {base} (pid {serve.pid}); {len(tokens)} tills registered", flush=True)
        progress = Progress(args.store, tmp, args.tenants)

        queued_total = 0
        for key in phases:
            enq, d = drain(key, args, tmp, cfg, base, standin_url, standin, serve, http, tokens, progress, use_taskset,
                           children, queued_total)
            queued_total += enq.transactions
            enqs.append(enq)
            drains.append(d)

        print_report(info, enqs, drains)
        if args.json:
            print(json.dumps({**info, "enqueue": [asdict(e) for e in enqs], "drains": [asdict(d) for d in drains]},
                             indent=2))
        return 0 if all(d.ok for d in drains) else 1
    except BenchError as exc:
        print(f"\nbenchmark invalid: {exc}", file=sys.stderr)
        for c in children:
            if c.name.startswith("worker"):
                _, warns = worker_log(c)
                for w in warns[:10]:
                    print(f"  {c.name}: {w}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if http is not None:
            http.close()
        if progress is not None:
            progress.close()
        for child in reversed(children):
            try:
                if child.alive():
                    os.kill(child.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
                child.stop()
            except Exception as exc:
                print(f"stopping {child.name}: {exc!r}", file=sys.stderr)
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
