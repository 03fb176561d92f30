"""Shield benchmark: live sales, queued drains and the adaptive limit against an ERPNext of W workers
(the stand-in's capacity model, or a real ERPNext with --erpnext).

NOT a test. One run (defaults: W = 4 stand-in workers, 0.05 s an invoice, so a capacity of
W / write_time = 80 invoices/s; 10,000-sale drains; a 5,000-sale big till):

1. starts the ERPNext stand-in (``edge.standin``) in its own process, on core 1: one
   Frappe site (``shop1.erp.bench``) seeded with ``seed_pos``, served through the
   capacity model (``StandIn.set_capacity``: at most W requests at once, the rest in
   line, a write holding a worker ``--write-time`` s), plus a ``/__bench/`` control
   path (invoices per till, the model's counters, how long each invoice waited in line).
   In that process the stand-in's two scans of every stored invoice per insert (the
   unique reference check, "has a submitted return") are replaced by indexed look-ups
   (``index_standin_scans``; ``--standin-scans`` keeps them): unindexed, an insert costs
   the stand-in ~17 ms of CPU at 10,000 invoices, and it, not its W workers, becomes the limit;
2. writes a tenants.yaml (one POS tenant, the SQLite store or ``--store redis``,
   in-process sync workers, ``poll_interval: 0.05``, the adaptive limit at its defaults
   but ``tenant_concurrency`` = ``--concurrency``, a metrics listener) and starts
   ``pos-edge serve`` on core 0; registers one till per role; a sampler thread reads the
   stand-in's counters every 0.25 s and the gateway's
   ``pos_edge_sync_concurrency_limit{tenant="shop1"}`` gauge every 0.5 s;
3. idle: ``--idle-sales`` (60) sequential ``POST /v1/sale`` from one till, nothing else
   running (after 5 unmeasured warm-up sales): p50/p95 latency as the till sees it;
4. drain, no live traffic: ``--sales`` queued sales from one till, uploaded as
   ``/sync/batch`` batches of 500 (the workers drain while the rest is uploaded: timed from
   the first upload); invoices/s over the 10-90 % stretch against the capacity; the
   stand-in's busy worker-seconds / (W x seconds) as its utilisation; the adaptive
   limit's trajectory (the knee it should find is W);
5. drain with live traffic: the same again from another till, while a third till sends
   sequential ``/v1/sale`` calls from 20 % to 80 % of that drain: their p50/p95 against the
   idle p95, and the drain's invoices/s meanwhile;
6. fairness: a ``--big`` (5,000) sale till uploads its batches, then a small till its 10
   sales: seconds until the small till's batch is all synced, and how many of the big
   till's were synced by then; then the big till drains to the end.

7. ``--baseline`` (either mode): after the rest, phase 5 once more through a second
   ``pos-edge serve`` (the first one stopped; its own SQLite store, new tills) whose sync lane
   is the one of before issue 14: ``gateway.sync`` ``adaptive: false``,
   ``tenant_concurrency: 4``, ``live_hold: 0`` (no live priority, a fixed 4 in flight); same
   sizes; its live p95 ratio and drain rate are printed next to the adaptive ones. Fairness
   (round-robin claims across tills) is in the store and cannot be switched off; a live call
   under way in the same process still takes one from the cap when the worker claims.

Checks: every batch's ``/sync/status`` (all synced, distinct invoice ids) and the
stand-in's invoices per till (exactly one per sale, live sales included).

    .venv/bin/python bench/shield.py [--sales 10000] [--big 5000] [--workers 4] [--write-time 0.05]
                                     [--concurrency 8] [--store sqlite|redis] [--quick] [--baseline] [--json]
                                     [--keep-tmp] [--tmpdir /dev/shm] [--standin-scans]

A default run takes about 7 minutes: its 25,000 queued invoices alone need 5 at 80/s.
``--quick``: 1,000-sale drains and a 500-sale big till (about a minute). ``--store redis``
uses redis://127.0.0.1:6379/14 (deleting the ``pos-edge:*`` keys of db 14 first: that
database is this benchmark's own).

Real-ERPNext mode, ``--erpnext URL --site NAME [--keys-file /root/erp/keys.env]`` (keys from
POS_EDGE_REAL_ERPNEXT_KEY/_SECRET first, as bench/real_drain.py). NOT a test either: it books
real invoices on the site (about 2,000 with the defaults and --baseline; no stock is moved).
No stand-in and nothing pinned: ERPNext (gunicorn, MariaDB), pos-edge and the bench share the
machine. The tenant is bench/real_drain.py's ("Shop One Ltd", POS profile "Shop One Main",
"Stores - S1", "Main - S1", "Walk-in Customer", Sales Invoice, reference field
``custom_pos_edge_txn_id``), every sale its sale (one SUGAR-1KG at 5,000 UGX, cash), with
``update_stock: false`` (kept simple: no stock is needed). Smaller defaults, for a site that
books a few invoices a second: ``--sales 400``, ``--big 300``, ``--idle-sales 30`` (the small
till still 10). Before the phases above:

- ``pos-edge erpnext setup --tenant shop1`` once (creates the reference field if it is missing);
- the capacity, MEASURED: ``--capacity-invoices`` (120) of the Sales Invoice documents pos-edge
  sends (built by pos-edge's own ``edge.erpnext.documents.invoice``, as real_drain's direct
  path) POSTed straight to ``/api/resource/Sales Invoice`` by 8 concurrent clients; the
  invoices/s between the 10 % and the 90 % answer is the capacity every ratio is against.

Then phases 3-7 as above, with these differences: progress (invoices per till) is read from
the gateway's SQLite queue (jobs synced; read-only, so that nothing asks the gateway or
ERPNext), hence ``--store sqlite`` only; there is no capacity model, so no utilisation and no
per-invoice waits in a line (not in the report); the knee the limit should find is read as
ERPNext's gunicorn workers (from /proc); ERPNext's CPU (its gunicorn master + workers and
MariaDB, read from /proc, never touched) is reported per phase, in % of a core and ms per
invoice. Device ids carry a per-run suffix. Checks at the end, over REST: for each of the
run's tills (and the capacity's direct device), ERPNext holds exactly one submitted Sales
Invoice per reference "<device>/...", none in another docstatus, each the invoice the gateway
named for that sale.

    .venv/bin/python bench/shield.py --erpnext http://127.0.0.1:8100 --site pos.localhost \\
        --keys-file /root/erp/keys.env [--baseline] [--sales 400] [--big 300] [--idle-sales 30] \\
        [--capacity-invoices 120] [--concurrency 8] [--json] [--keep-tmp]

With the defaults and --baseline it takes about 10 minutes on a site of ~3.5 invoices/s.

Exit status: 0 when every sale synced exactly once (whatever the figures against their
aims), 1 otherwise (or when a process failed or a drain timed out), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from proxy import (  # noqa: E402 (after sys.path) bench/proxy.py: process helpers shared by the benchmarks
    CLK_TCK,
    POS_EDGE,
    PYTHON,
    BenchError,
    Child,
    _interrupt,
    cpu_seconds,
    free_port,
    pinned,
    process_tree,
    wait_http,
)
from real_drain import (  # noqa: E402 bench/real_drain.py: the real site's REST API, its processes, its master data
    COMPANY,
    COST_CENTER,
    CUSTOMER,
    PROFILE,
    REFERENCE_FIELD,
    WAREHOUSE,
    Site,
    erpnext_roots,
    read_keys,
)

GATEWAY_CORE = "0"  # pos-edge serve (and its in-process sync workers)
STANDIN_CORE = "1"  # the stand-in and the bench itself
TENANT = "shop1"
BASE_DOMAIN = "pos.bench"
SITE = f"{TENANT}.erp.bench"
API_KEY, API_SECRET = f"key-{TENANT}", f"secret-{TENANT}"
REDIS_URL = "redis://127.0.0.1:6379/14"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
MAX_BATCH = 500
WARMUP = 5  # live sales before the idle measurement, not counted
SAMPLE_PERIOD = 0.25  # the stand-in's counters; the limit gauge every other sample (0.5 s)
LIVE_FROM, LIVE_TO = 0.2, 0.8  # the live sales run while the second drain is between these fractions
SMALL = 10
# aims (issue 14)
AIM_LIVE_RATIO = 1.2  # live p95 during a drain / idle p95
AIM_DRAIN_RATIO = 0.9  # drain invoices/s with no live traffic / capacity
AIM_SMALL_SECONDS = 5.0  # "a few seconds"
# the tills, one per role (each run adds its own suffix: a real site keeps every run's invoices);
# none is a prefix of another (invoices are told apart by "<device>/")
DEVICES = {"idle": "bench-idle", "drain": "bench-drain-a", "drain_live": "bench-drain-b", "live": "bench-live",
           "big": "bench-big", "small": "bench-small"}
BASELINE_DEVICES = {"drain_live": "bench-drain-c", "live": "bench-live-c"}  # --baseline's tills
# --baseline: the gateway's sync lane before issue 14 (no live priority, no adaptive limit, a fixed 4)
BASELINE_SYNC = {"adaptive": False, "tenant_concurrency": 4, "live_hold": 0}
# the real mode (--erpnext): the sale (the one of bench/real_drain.py), its defaults, the capacity measurement
REAL_ITEM, REAL_RATE = "SUGAR-1KG", "5000"  # UGX; update_stock 0: no stock is moved, none is needed
REAL_DEFAULTS = {"sales": 400, "big": 300, "idle_sales": 30}
CAPACITY_CLIENTS = 8  # concurrent direct clients measuring the site's capacity
EXPECTED = {"registration_open"}  # gateway warnings this set-up causes on purpose (open registration)
REF_RE = re.compile(rb'"custom_pos_edge_txn_id"\s*:\s*"([^"/]+)/')
LIMIT_RE = re.compile(r'^pos_edge_sync_concurrency_limit\{tenant="' + TENANT + r'"\} (\S+)$', re.M)


# --------------------------------------------------------------------------- stand-in process


class _Index:
    """value -> names of the documents of one doctype holding it, caught up with the docs dict on
    each look-up (new entries only: exact while documents are only added, as in this benchmark;
    rebuilt if the dict shrank)."""

    def __init__(self, key: Any) -> None:
        self.key = key
        self.seen = 0
        self.by: dict[Any, set[str]] = collections.defaultdict(set)

    def names(self, docs: dict[str, dict[str, Any]], value: Any) -> set[str]:
        if len(docs) < self.seen:
            self.seen, self.by = 0, collections.defaultdict(set)
        for doc in itertools.islice(docs.values(), self.seen, None):
            k = self.key(doc)
            if k not in (None, ""):
                self.by[k].add(str(doc.get("name")))
        self.seen = len(docs)
        return self.by.get(value, set())


def index_standin_scans() -> None:
    """Replace the stand-in's two per-insert scans of every invoice (the unique reference
    field's check, and "has a submitted return" for the status) with indexed look-ups in
    this process. Unpatched, an insert costs ~1.7 ms of the stand-in's CPU per 1,000
    invoices held (17 ms at 10,000), inside the capacity model's worker slot: the stand-in,
    not its W workers, would become the limit within one drain. A conflict found through the
    index still goes through the stand-in's own check (same error, same answer)."""
    from edge.standin import invoices

    original_unique = invoices._check_unique
    indexes: dict[tuple[int, str], _Index] = {}

    def index(docs: dict[str, Any], what: str, key: Any) -> _Index:
        found = indexes.get((id(docs), what))
        if found is None:
            found = indexes[(id(docs), what)] = _Index(key)
        return found

    def check_unique(site: Any, doctype: str, doc: dict[str, Any], name: str) -> None:
        docs = site.docs.get(doctype, {})
        for fieldname, cf in invoices.custom_fields(site, doctype).items():
            value = doc.get(fieldname)
            if not invoices.cint(cf.get("unique")) or value in (None, ""):
                continue
            names = index(docs, fieldname, lambda d, f=fieldname: d.get(f)).names(docs, value)
            if any(n != name and (docs.get(n) or {}).get(fieldname) == value for n in names):
                original_unique(site, doctype, doc, name)  # raises UniqueValidationError

    def has_submitted_return(site: Any, doctype: str, name: str) -> bool:
        docs = site.docs.get(doctype, {})
        names = index(docs, "return_against",
                      lambda d: d.get("return_against") if invoices.cint(d.get("is_return")) else None).names(docs, name)
        cint = invoices.cint
        return any(cint(d.get("is_return")) and d.get("return_against") == name and cint(d.get("docstatus")) == 1
                   for d in (docs.get(n) or {} for n in names))

    invoices._check_unique = check_unique
    invoices._has_submitted_return = has_submitted_return


def serve_standin(port: int, workers: int, write_time: float, scans: bool) -> None:
    """The stand-in (one seeded site) behind the capacity model, plus /__bench/count, /stats, /mark, /waits."""
    from urllib.parse import unquote

    import uvicorn

    from edge.standin import StandIn, StandInSite, build_app, seed_pos

    if not scans:
        index_standin_scans()

    site = StandInSite(SITE, users={API_KEY: (API_SECRET, f"api@{TENANT}.bench")})
    seed_pos(site, "Shop One Ltd", suffix="S1", pos_profile="Shop One Main", invoice_doctype="Sales Invoice")
    standin = StandIn([site])
    standin.requests = collections.deque(maxlen=64)  # type: ignore[assignment]  # the log is for tests: keep it small
    capacity = standin.set_capacity(workers=workers, write_time=write_time, read_time=0.0)
    inner = build_app(standin)
    counts: collections.Counter[str] = collections.Counter()
    per_device: collections.Counter[str] = collections.Counter()
    seen = [0]  # invoices already counted per device (the dict only grows: nothing is deleted here)

    def device_of(doc: dict[str, Any]) -> str:
        return str(doc.get("custom_pos_edge_txn_id") or "").split("/", 1)[0]

    def tally() -> int:
        docs = site.docs.get("Sales Invoice", {})
        for doc in itertools.islice(docs.values(), seen[0], None):
            per_device[device_of(doc)] += 1
        seen[0] = len(docs)
        return seen[0]

    def count() -> dict[str, Any]:
        return {"invoices": tally(), "devices": dict(per_device), "capacity": capacity.stats()}

    def stats() -> dict[str, Any]:
        docs = site.docs.get("Sales Invoice", {})
        refs: dict[str, set[str]] = collections.defaultdict(set)
        for doc in docs.values():
            refs[device_of(doc)].add(str(doc.get("custom_pos_edge_txn_id")))
        return {**count(), "distinct_names": len(docs), "distinct_references": sum(len(r) for r in refs.values()),
                "device_references": {d: len(r) for d, r in refs.items()}, "requests": dict(counts)}

    def waits() -> dict[str, Any]:
        """How long each invoice waited in line for a worker, per till (then forgotten: bounded memory)."""
        out: dict[str, list[float]] = collections.defaultdict(list)
        for body, wait in capacity.waits:
            m = REF_RE.search(body)
            out[m.group(1).decode() if m else "-"].append(round(wait, 4))
        capacity.waits.clear()
        return {"waits": out}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.startswith("/__bench/"):
                if path == "/__bench/mark":  # a phase starts: its maxima from here
                    capacity.max_in_flight, capacity.max_waiting = capacity.in_flight, capacity.waiting
                what = {"/__bench/stats": stats, "/__bench/waits": waits}.get(path, count)
                body = json.dumps(what()).encode()
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
            parts = path.split("/")  # "", "api", "resource"|"method", doctype, [name]
            what_ = unquote(parts[3]) if len(parts) > 3 else path
            if len(parts) > 4 and parts[4]:
                what_ += "/<name>"
            counts[f"{scope['method']} {what_}"] += 1
        await inner(scope, receive, send)

    # keep-alive like nginx in front of a real ERPNext (uvicorn's default is 5 s)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off",
                backlog=2048, timeout_keep_alive=75)


# --------------------------------------------------------------------------- config and payloads


def tenants_yaml(tmp: Path, upstream: int | Site, metrics_port: int, args: argparse.Namespace, baseline: bool = False) -> Path:
    """The gateway's config: one tenant, on the stand-in (`upstream` is its port) or on the real
    site (`upstream` is the Site: bench/real_drain.py's tenant, update_stock false). `baseline`:
    the sync lane of before issue 14 (BASELINE_SYNC), in a store of its own (SQLite)."""
    import yaml

    store = f"sqlite:///{queue_db(tmp, baseline)}" if args.store == "sqlite" else REDIS_URL
    sync: dict[str, Any] = {"in_process_workers": True, "poll_interval": 0.05, "tenant_concurrency": args.concurrency}
    if baseline:
        sync.update(BASELINE_SYNC)
    tenant: dict[str, Any]
    if isinstance(upstream, Site):
        tenant = {
            "name": "Shop One (real ERPNext)",
            "erpnext": {"url": upstream.url, "site_name": upstream.site, "api_key": upstream.key,
                        "api_secret": upstream.secret, "timeout": 120},
            "rate_limit": "100000/minute",
            "company": COMPANY,
            "invoice_doctype": "Sales Invoice",
            "default_customer": CUSTOMER,
            "payment_methods": {"cash": "Cash"},
            "branches": {"main": {"pos_profile": PROFILE, "warehouse": WAREHOUSE, "cost_center": COST_CENTER}},
            "update_stock": False,
            "reference_field": REFERENCE_FIELD,
        }
    else:
        tenant = {
            "name": "Shop One",
            "erpnext": {"url": f"http://127.0.0.1:{upstream}", "site_name": SITE, "api_key": API_KEY,
                        "api_secret": API_SECRET, "timeout": 30},
            "rate_limit": "100000/minute",
            "company": "Shop One Ltd",
            "invoice_doctype": "Sales Invoice",
            "default_customer": "Walk-in Customer",
            "payment_methods": {"cash": "Cash", "momo": "Mobile Money", "card": "Credit Card"},
            "branches": {"main": {"pos_profile": "Shop One Main", "warehouse": "Stores - S1", "cost_center": "Main - S1"}},
            "item_codes": {"cof": "COFFEE"},
        }
    config = {
        "gateway": {
            "base_domains": [BASE_DOMAIN],
            "store": store,
            "rate_limit_storage": "memory://",
            "unauthenticated_rate_limit": "100000/minute",
            "jwt": {"secret": JWT_SECRET},
            "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
            "sync": sync,
        },
        "tenants": {TENANT: tenant},
    }
    path = tmp / ("tenants-baseline.yaml" if baseline else "tenants.yaml")
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def queue_db(tmp: Path, baseline: bool = False) -> Path:
    return tmp / ("queue-baseline.db" if baseline else "queue.db")


def payload(n: int, real: bool = False) -> dict[str, Any]:
    """A sale (a /v1/sale body without its client_txn_id): on the real site, bench/real_drain.py's
    (one SUGAR-1KG at 5,000 UGX, cash), for the stand-in two lines and two payments."""
    if real:
        return {"items": [{"item_code": REAL_ITEM, "qty": 1, "rate": REAL_RATE}],
                "payments": [{"method": "cash", "amount": REAL_RATE}], "branch_id": "main", "till_id": "till-01"}
    return {
        "items": [{"item_code": "cof", "item_name": "Coffee", "qty": 1 + n % 3, "rate": "2.50"},
                  {"item_code": "BREAD", "qty": 1, "rate": "1.20"}],
        "payments": [{"method": "cash", "amount": f"{2.5 * (1 + n % 3):.2f}"}, {"method": "momo", "amount": "1.20"}],
        "branch_id": "main",
        "till_id": "till-01",
    }


def batches(tag: str, count: int, real: bool = False) -> list[bytes]:
    """`count` queued sales as /sync/batch bodies of <= 500."""
    out = []
    for start in range(0, count, MAX_BATCH):
        txns = [{"type": "sale", "client_txn_id": f"{tag}-{k:06d}", "payload": payload(k, real)}
                for k in range(start, min(count, start + MAX_BATCH))]
        out.append(json.dumps({"transactions": txns}, separators=(",", ":")).encode())
    return out


# --------------------------------------------------------------------------- measuring


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


@dataclass
class Latency:
    n: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    mean_ms: float
    errors: dict[str, int] = field(default_factory=dict)  # status/code -> count (not in the figures)

    @staticmethod
    def of(seconds: list[float], errors: dict[str, int] | None = None) -> Latency:
        ms = [1e3 * s for s in seconds]
        return Latency(len(ms), pct(ms, 50), pct(ms, 95), max(ms, default=float("nan")),
                       statistics.fmean(ms) if ms else float("nan"), errors or {})


@dataclass
class Waits:
    """How long invoices waited in the stand-in's line for a free worker."""

    n: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    waited: float  # share that waited more than 2 ms

    @staticmethod
    def of(seconds: list[float]) -> Waits:
        ms = [1e3 * s for s in seconds]
        return Waits(len(ms), pct(ms, 50), pct(ms, 95), max(ms, default=float("nan")),
                     sum(1 for w in ms if w > 2) / len(ms) if ms else float("nan"))


@dataclass
class Sample:
    t: float
    devices: dict[str, int]
    busy: float = 0.0  # the stand-in's capacity model (0 on the real site)
    served: int = 0
    in_flight: int = 0
    waiting: int = 0


class Progress:
    """Invoices per till, as far as the bench can see them without asking the gateway: held by the
    stand-in (its /__bench/count, with the capacity model's counters), or, on the real site,
    synced in the gateway's SQLite queue (read-only; nothing asks ERPNext either). Live sales
    are not in the queue: on the real site they are not counted here."""

    def __init__(self, standin_url: str | None = None, db: Path | None = None) -> None:
        self.standin_url, self.db = standin_url, db

    def read(self, http: Any = None) -> tuple[dict[str, int], dict[str, Any] | None]:
        """(invoices per till, the stand-in's capacity counters or None)."""
        if self.standin_url is not None:
            import httpx

            url = self.standin_url + "/__bench/count"
            body = (http.get(url) if http is not None else httpx.get(url, timeout=60.0)).json()
            return dict(body["devices"]), dict(body["capacity"])
        import sqlite3

        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30, isolation_level=None)
        try:
            rows = db.execute("SELECT device, count(*) FROM sync_jobs WHERE tenant = ? AND status = 'synced' "
                              "GROUP BY device", (TENANT,)).fetchall()
        finally:
            db.close()
        return {str(d): int(n) for d, n in rows}, None

    def count(self, device: str) -> int:
        return self.read()[0].get(device, 0)


class Sampler(threading.Thread):
    """Reads the invoices per till (Progress) every SAMPLE_PERIOD s and the limit gauge every other time."""

    def __init__(self, progress: Progress, metrics_url: str) -> None:
        super().__init__(name="sampler", daemon=True)
        self.progress, self.metrics_url = progress, metrics_url
        self.samples: list[Sample] = []
        self.limits: list[tuple[float, float]] = []
        self.errors: collections.Counter[str] = collections.Counter()
        self._halt = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=5.0) as s, httpx.Client(timeout=5.0) as m:
            nxt = time.monotonic()
            for k in itertools.count():
                if self._halt.is_set():
                    return
                try:
                    a = time.monotonic()
                    devices, cap = self.progress.read(s)
                    t = (a + time.monotonic()) / 2
                    self.samples.append(Sample(t, devices) if cap is None else
                                        Sample(t, devices, cap["busy"], cap["served"], cap["in_flight"], cap["waiting"]))
                except Exception as exc:
                    self.errors["progress " + type(exc).__name__] += 1
                if k % 2 == 0:
                    try:
                        a = time.monotonic()
                        found = LIMIT_RE.search(m.get(self.metrics_url).text)
                        if found:
                            self.limits.append(((a + time.monotonic()) / 2, float(found.group(1))))
                    except Exception as exc:
                        self.errors["metrics " + type(exc).__name__] += 1
                nxt += SAMPLE_PERIOD
                self._halt.wait(max(0.0, nxt - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def latest(self, device: str) -> int:
        return self.samples[-1].devices.get(device, 0) if self.samples else 0

    def _series(self, since: float) -> list[Sample]:
        return [s for s in self.samples if s.t >= since - 2 * SAMPLE_PERIOD]

    def time_when(self, device: str, target: float, since: float) -> float:
        """When `device`'s invoices reached `target` (interpolated between samples)."""
        prev = None
        for s in self._series(since):
            c = s.devices.get(device, 0)
            if c >= target:
                if prev is None or c == prev[1]:
                    return s.t
                return prev[0] + (s.t - prev[0]) * (target - prev[1]) / (c - prev[1])
            prev = (s.t, c)
        return float("nan")

    def value_at(self, t: float, get: Any) -> float:
        """get(sample) at `t`, interpolated."""
        prev = None
        for s in self.samples:
            if s.t >= t:
                if prev is None or s.t == prev.t:
                    return float(get(s))
                return float(get(prev) + (get(s) - get(prev)) * (t - prev.t) / (s.t - prev.t))
            prev = s
        return float(get(self.samples[-1])) if self.samples else float("nan")

    def limits_between(self, t0: float, t1: float) -> list[tuple[float, float]]:
        return [(round(t - t0, 2), v) for t, v in self.limits if t0 <= t <= t1]


@dataclass
class PhaseCpu:
    """CPU over a phase, in % of one core: the upstream (the stand-in process, or ERPNext's
    gunicorn master + workers and MariaDB), pos-edge serve, this bench, every other process
    (noise: the figures are not this run's alone then)."""

    seconds: float
    invoices: int
    upstream_pct: float
    serve_pct: float
    bench_pct: float
    other_pct: float
    upstream_s: float  # CPU seconds of the upstream
    upstream_ms_per_invoice: float

    def per(self, invoices: int) -> PhaseCpu:
        """The same, per `invoices` invoices."""
        return replace(self, invoices=invoices, upstream_ms_per_invoice=1e3 * self.upstream_s / max(invoices, 1))


class CpuMeter:
    """Snapshots of the CPU seconds of the upstream's processes, pos-edge serve, this bench and the machine."""

    def __init__(self, upstream: list[int], serve: int | None = None) -> None:
        self.upstream, self.serve = upstream, serve

    def snap(self) -> tuple[float, float, float, float, float]:
        return (time.monotonic(), sum(cpu_seconds(p) for p in self.upstream),
                cpu_seconds(self.serve) if self.serve is not None else 0.0, own_cpu(), machine_cpu())

    @staticmethod
    def between(a: tuple[float, ...], b: tuple[float, ...], invoices: int) -> PhaseCpu:
        wall = max(b[0] - a[0], 1e-9)
        up, serve, bench, machine = (b[i] - a[i] for i in range(1, 5))
        return PhaseCpu(seconds=wall, invoices=invoices, upstream_pct=100 * up / wall, serve_pct=100 * serve / wall,
                        bench_pct=100 * bench / wall, other_pct=100 * (machine - up - serve - bench) / wall,
                        upstream_s=up, upstream_ms_per_invoice=1e3 * up / max(invoices, 1))


@dataclass
class Capacity:
    """The real site's capacity, measured: the documents pos-edge sends, POSTed straight to its REST API."""

    invoices: int
    clients: int
    seconds: float  # first request sent to the last answer
    per_s: float  # invoices (answered 200) / seconds
    per_s_10_90: float  # between the 10 % and the 90 % answer: the capacity the ratios are against
    latency_p50_ms: float
    latency_p95_ms: float
    answers: dict[str, int]
    errors: list[str]
    cpu: PhaseCpu


@dataclass
class Drain:
    label: str
    sales: int
    upload_s: float  # first upload sent to the last 202
    seconds: float  # first upload sent to the last invoice in the stand-in (synced in the queue, on the real site)
    per_s: float
    per_s_10_90: float
    ratio_10_90: float  # per_s_10_90 / capacity
    cpu: PhaseCpu
    limits: list[tuple[float, float]] = field(default_factory=list)  # (s since the first upload, limit)
    # the stand-in's capacity model (None on the real site)
    utilisation: float | None = None  # stand-in busy worker-seconds / (W x seconds), whole drain
    utilisation_10_90: float | None = None
    busy_ms_per_invoice: float | None = None  # stand-in busy worker-seconds per request served: write_time + its own
    effective_capacity: float | None = None  # W / that: what the stand-in really serves at most
    standin_max_in_flight: int | None = None
    standin_max_waiting: int | None = None
    waits: Waits | None = None  # the drain's invoices in the stand-in's line


@dataclass
class LivePhase:
    label: str
    latency: Latency
    ratio_p95: float  # to the idle p95
    seconds: float
    sales_per_s: float
    drain_per_s: float  # the drain's invoices/s while the live sales ran
    drain_ratio: float  # ... / capacity
    total_ratio: float  # (drain + live) invoices/s / capacity
    drain: Drain  # the whole drain the live sales ran in
    waits: Waits | None = None  # the live sales in the stand-in's line (None on the real site)
    limits: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class Fairness:
    big: int
    small: int
    big_upload_s: float
    small_seconds: float  # the small batch's 202 to all 10 synced (its /sync/status)
    small_seconds_from_big: float  # the big till's first upload to the same moment
    big_synced_at_small_upload: int
    big_synced_at_small_done: int
    small_status: str
    cpu: PhaseCpu | None = None  # the big till's upload to its last sale synced


# --------------------------------------------------------------------------- the gateway


class Till:
    def __init__(self, http: Any, device: str, token: str, real: bool = False) -> None:
        self.http, self.device, self.token, self.real = http, device, token, real
        self.headers = {"Host": f"{TENANT}.{BASE_DOMAIN}", "Authorization": f"Bearer {token}"}
        self.batches: list[str] = []  # batch_uuid of each upload
        self.expected = 0  # sales that must be invoices in the end
        self.live_n = 0
        self.invoices: dict[str, str] = {}  # client_txn_id -> the invoice the gateway named (live, then synced)

    def upload(self, body: bytes) -> str:
        r = self.http.post("/sync/batch", content=body, headers={**self.headers, "Content-Type": "application/json"})
        if r.status_code != 202:
            raise BenchError(f"POST /sync/batch ({self.device}) -> {r.status_code}: {r.text[:800]}")
        self.batches.append(r.json()["batch_uuid"])
        self.expected += int(r.json()["enqueued"])
        return str(r.json()["batch_uuid"])

    def sale(self) -> tuple[float, int, str]:
        """One live sale: (seconds, status, problem code or "")."""
        txn = f"live-{self.live_n:06d}"
        body = {**payload(self.live_n, self.real), "client_txn_id": txn}
        self.live_n += 1
        t = time.perf_counter()
        r = self.http.post("/v1/sale", json=body, headers=self.headers)
        took = time.perf_counter() - t
        if r.status_code == 201:
            self.expected += 1
            self.invoices[txn] = str(r.json().get("invoice_id"))
            return took, 201, ""
        try:
            code = str(r.json().get("code", ""))
        except ValueError:
            code = r.text[:80]
        return took, r.status_code, code

    def status(self, batch: str) -> dict[str, Any]:
        r = self.http.get(f"/sync/status/{batch}", headers=self.headers)
        if r.status_code != 200:
            raise BenchError(f"GET /sync/status/{batch} ({self.device}) -> {r.status_code}: {r.text[:300]}")
        return dict(r.json())


def register(http: Any, device: str, real: bool = False) -> Till:
    r = http.post("/gateway/device/register", headers={"Host": f"{TENANT}.{BASE_DOMAIN}"},
                  json={"device_id": device, "device_name": f"Bench till {device}", "tenant_subdomain": TENANT,
                        "branch_id": "main"})
    if r.status_code != 201:
        raise BenchError(f"registering {device} -> {r.status_code}: {r.text[:500]}")
    return Till(http, device, r.json()["token"], real)


def live_sales(till: Till, n: int) -> tuple[list[float], dict[str, int]]:
    took, errors = [], collections.Counter[str]()
    for _ in range(n):
        t, status, code = till.sale()
        if status == 201:
            took.append(t)
        else:
            errors[f"{status} {code}"] += 1
    return took, dict(errors)


def own_cpu() -> float:
    """CPU seconds of this process (every thread)."""
    t = os.times()
    return t.user + t.system


def machine_cpu() -> float:
    """CPU seconds every core of the machine has spent busy (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return float("nan")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def standin_get(base: str, what: str) -> dict[str, Any]:
    import httpx

    r = httpx.get(f"{base}/__bench/{what}", timeout=60.0)
    r.raise_for_status()
    return dict(r.json())


@dataclass
class Ctx:
    """What the phases share; `serve`, `sampler` and `cpu.serve` change with the --baseline gateway."""

    args: argparse.Namespace
    capacity: float  # invoices/s: W / write_time, or measured on the real site
    knee: int  # the limit the adaptive limit should settle at: W, or ERPNext's gunicorn workers
    cpu: CpuMeter
    serve: Child
    sampler: Sampler
    standin_url: str | None = None  # None: the real site

    @property
    def real(self) -> bool:
        return self.standin_url is None

    @property
    def where(self) -> str:
        return "synced" if self.real else "in the stand-in"

    def waits(self) -> dict[str, list[float]]:
        """The stand-in's per-invoice waits in its line since the last call, per till ({} on the real site)."""
        return {} if self.standin_url is None else dict(standin_get(self.standin_url, "waits")["waits"])


def wait_drained(ctx: Ctx, till: Till, target: int, deadline: float) -> None:
    while ctx.sampler.latest(till.device) < target:
        if not ctx.serve.alive():
            raise BenchError(f"pos-edge serve exited {ctx.serve.proc.returncode}:\n{ctx.serve.stderr_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{till.device}: {ctx.sampler.latest(till.device):,} of {target:,} sales {ctx.where} "
                             f"when the time ran out")
        time.sleep(0.05)


def run_drain(ctx: Ctx, label: str, till: Till, n: int, during: Any = None) -> tuple[Drain, Any]:
    """Upload `n` sales for `till` and wait until they are all invoices (in the stand-in; on the
    real site: synced in the queue). `during(t0)`, if given, runs (in this thread) once the
    uploads are in; its result is returned."""
    args, sampler = ctx.args, ctx.sampler
    bodies = batches(f"{re.sub(r'[^A-Za-z0-9]+', '-', label)}-{uuid.uuid4().hex[:6]}", n, ctx.real)
    start = standin_get(ctx.standin_url, "mark") if ctx.standin_url is not None else None
    cpu0 = ctx.cpu.snap()
    t0 = time.monotonic()
    for body in bodies:
        till.upload(body)
    upload_s = time.monotonic() - t0
    print(f"  [{label}] {n:,} sales uploaded in {len(bodies)} batches ({upload_s:.2f} s)", flush=True)
    deadline = t0 + args.timeout
    extra = during(t0) if during is not None else None
    last_print = time.monotonic()
    while sampler.latest(till.device) < n:
        if not ctx.serve.alive():
            raise BenchError(f"pos-edge serve exited {ctx.serve.proc.returncode}:\n{ctx.serve.stderr_tail()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{till.device}: {sampler.latest(till.device):,} of {n:,} sales {ctx.where} "
                             f"after {args.timeout:g} s")
        if time.monotonic() - last_print >= 10:
            last_print = time.monotonic()
            print(f"    {last_print - t0:5.1f} s: {sampler.latest(till.device):,}/{n:,} invoiced", flush=True)
        time.sleep(0.05)
    t_end = sampler.time_when(till.device, n, t0)
    cpu1 = ctx.cpu.snap()
    time.sleep(2 * SAMPLE_PERIOD)  # a sample after the end, for the interpolation
    wall = t_end - t0
    t10, t90 = sampler.time_when(till.device, 0.1 * n, t0), sampler.time_when(till.device, 0.9 * n, t0)
    rate = 0.8 * n / (t90 - t10) if t90 > t10 else float("nan")
    d = Drain(label=label, sales=n, upload_s=upload_s, seconds=wall, per_s=n / wall, per_s_10_90=rate,
              ratio_10_90=rate / ctx.capacity, cpu=CpuMeter.between(cpu0, cpu1, n), limits=sampler.limits_between(t0, t_end))
    if start is not None and ctx.standin_url is not None:
        end = standin_get(ctx.standin_url, "count")
        busy = lambda s: s.busy  # noqa: E731
        served = end["capacity"]["served"] - start["capacity"]["served"]
        per_invoice = (end["capacity"]["busy"] - start["capacity"]["busy"]) / max(served, 1)
        d.utilisation = (sampler.value_at(t_end, busy) - start["capacity"]["busy"]) / (args.workers * wall)
        d.utilisation_10_90 = (sampler.value_at(t90, busy) - sampler.value_at(t10, busy)) / (args.workers * (t90 - t10))
        d.busy_ms_per_invoice = 1e3 * per_invoice
        d.effective_capacity = args.workers / per_invoice
        d.standin_max_in_flight = int(end["capacity"]["max_in_flight"])
        d.standin_max_waiting = int(end["capacity"]["max_waiting"])
        print(f"  [{label}] drained in {wall:.2f} s: {rate:.1f} invoices/s over 10-90 % ({d.ratio_10_90:.2f} x capacity), "
              f"stand-in utilisation {d.utilisation_10_90:.2f}", flush=True)
    else:
        print(f"  [{label}] drained in {wall:.2f} s: {rate:.2f} invoices/s over 10-90 % ({d.ratio_10_90:.2f} x capacity), "
              f"ERPNext CPU {d.cpu.upstream_pct:.0f} % of a core", flush=True)
    return d, extra


def run_live_phase(ctx: Ctx, label: str, drain_till: Till, live_till: Till, n: int, idle_p95_ms: float) -> LivePhase:
    """A drain of `n` sales from `drain_till`, with sequential live sales from `live_till` while
    it is between LIVE_FROM and LIVE_TO: their latency against the idle p95, the drain's rate meanwhile."""
    sampler = ctx.sampler

    def live_during(t0: float) -> tuple[list[float], dict[str, int], float, float]:
        deadline = t0 + ctx.args.timeout
        wait_drained(ctx, drain_till, int(LIVE_FROM * n), deadline)
        took, errors = [], collections.Counter[str]()
        t_start = time.monotonic()
        while sampler.latest(drain_till.device) < LIVE_TO * n:
            if time.monotonic() > deadline:
                raise BenchError(f"the {label} drain did not reach its {100 * LIVE_TO:.0f} % in time")
            t, status, code = live_till.sale()
            if status == 201:
                took.append(t)
            else:
                errors[f"{status} {code}"] += 1
        return took, dict(errors), t_start, time.monotonic()

    d, (took, errors, ls, le) = run_drain(ctx, label, drain_till, n, during=live_during)
    all_waits = ctx.waits()
    d.waits = Waits.of(all_waits[drain_till.device]) if drain_till.device in all_waits else None
    d.cpu = d.cpu.per(n + len(took))
    lat = Latency.of(took, errors)
    secs = le - ls
    count = lambda t: sampler.value_at(t, lambda s: s.devices.get(drain_till.device, 0))  # noqa: E731
    drain_rate = (count(le) - count(ls)) / secs
    live = LivePhase(label=label, latency=lat, ratio_p95=lat.p95_ms / idle_p95_ms, seconds=secs,
                     sales_per_s=lat.n / secs, drain_per_s=drain_rate, drain_ratio=drain_rate / ctx.capacity,
                     total_ratio=(drain_rate + lat.n / secs) / ctx.capacity, drain=d,
                     waits=Waits.of(all_waits[live_till.device]) if live_till.device in all_waits else None,
                     limits=sampler.limits_between(ls, le))
    print(f"  [{label}] {lat.n} live sales: p50 {lat.p50_ms:.1f} ms, p95 {lat.p95_ms:.1f} ms "
          f"({live.ratio_p95:.2f} x idle p95); drain meanwhile {drain_rate:.2f} invoices/s"
          + (f"; errors {lat.errors}" if lat.errors else ""), flush=True)
    return live


# --------------------------------------------------------------------------- the real site


def gunicorn_workers(roots: list[int]) -> int:
    """How many workers ERPNext's gunicorn runs (the children of its master, among `roots`)."""
    for pid in roots:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"gunicorn" in argv:
            return len(process_tree(pid)) - 1
    return 0


def direct_bodies(cfg_path: Path, site: Site, device: str, txns: list[str]) -> list[bytes]:
    """The documents pos-edge's Poster would send for these sales, as its ErpnextClient encodes them
    (as bench/real_drain.py's direct_bodies, for this bench's tenant)."""
    from edge.config import load
    from edge.erpnext.client import _wire_number
    from edge.erpnext.documents import invoice
    from edge.sales import Sale, reference_for

    cfg: Any = load(cfg_path).tenants[TENANT]  # the POS plugin's keys are on it
    mop = cfg.payment_methods["cash"]
    accounts = [r["default_account"] for r in site.doc("Mode of Payment", mop)["accounts"]
                if r.get("company") == COMPANY and r.get("default_account")]
    if not accounts:
        raise BenchError(f"Mode of Payment {mop} has no default account for {COMPANY}")
    profile = site.doc("POS Profile", PROFILE)
    out = []
    for n, txn in enumerate(txns):
        sale = Sale.model_validate({**payload(n, real=True), "client_txn_id": txn})
        doc = invoice(sale, cfg, reference_for(device, txn), {mop: accounts[0]}, CUSTOMER)
        doc["disable_rounded_total"] = int(bool(int(profile.get("disable_rounded_total") or 0)))  # as Poster.document
        out.append(json.dumps(doc, default=_wire_number).encode())
    return out


async def post_timed(site: Site, bodies: list[bytes], clients: int) -> tuple[list[float], list[float], dict[str, int],
                                                                              list[str], float]:
    """POST every body with `clients` concurrent clients over keep-alive connections (the headers
    pos-edge sends, as bench/real_drain.py's post_direct): (when each 200 came, in s from the first
    send; each 200's latency; statuses; errors; seconds from the first send to the last answer)."""
    import aiohttp

    headers = {"Host": site.site, "X-Frappe-Site-Name": site.site, "Accept": "application/json",
               "Authorization": f"token {site.key}:{site.secret}", "Content-Type": "application/json"}
    url = site.url + "/api/resource/Sales%20Invoice"
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    statuses: collections.Counter[str] = collections.Counter()
    errors: list[str] = []
    done: list[float] = []
    took: list[float] = []
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients), timeout=timeout) as session:
        async with session.get(site.url + "/api/method/ping", headers=headers) as warm:  # open one connection first
            await warm.read()
        t0 = time.perf_counter()

        async def client() -> None:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                sent = time.perf_counter()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        raw = await resp.read()
                        statuses[str(resp.status)] += 1
                        if resp.status == 200:
                            now = time.perf_counter()
                            done.append(now - t0)
                            took.append(now - sent)
                        elif len(errors) < 5:
                            errors.append(f"{resp.status}: {raw[:300]!r}")
                except aiohttp.ClientError as exc:
                    statuses["error"] += 1
                    if len(errors) < 5:
                        errors.append(repr(exc))

        await asyncio.gather(*(client() for _ in range(clients)))
        seconds = time.perf_counter() - t0
    return sorted(done), took, dict(statuses), errors, seconds


def measure_capacity(site: Site, cfg_path: Path, device: str, n: int, cpu: CpuMeter) -> Capacity:
    """`n` of the Sales Invoices pos-edge sends, POSTed straight to the site by CAPACITY_CLIENTS
    clients: invoices/s between the 10 % and the 90 % answer = the site's capacity."""
    bodies = direct_bodies(cfg_path, site, device, [f"cap-{k:04d}" for k in range(n)])
    c0 = cpu.snap()
    done, took, statuses, errors, seconds = asyncio.run(post_timed(site, bodies, CAPACITY_CLIENTS))
    used = CpuMeter.between(c0, cpu.snap(), len(done))
    if len(done) < 10:
        raise BenchError(f"measuring the capacity: {len(done)} of {n} inserts answered 200: {statuses} {errors}")
    i10, i90 = math.ceil(0.1 * len(done)) - 1, math.ceil(0.9 * len(done)) - 1
    rate = (i90 - i10) / (done[i90] - done[i10])
    lat = Latency.of(took)
    return Capacity(invoices=n, clients=CAPACITY_CLIENTS, seconds=seconds, per_s=len(done) / seconds, per_s_10_90=rate,
                    latency_p50_ms=lat.p50_ms, latency_p95_ms=lat.p95_ms, answers=statuses, errors=errors, cpu=used)


def erpnext_setup(cfg: Path) -> str:
    """`pos-edge erpnext setup` for the bench's tenant: the unique reference field (exists already: said so)."""
    import subprocess

    r = subprocess.run([POS_EDGE, "erpnext", "setup", "--tenant", TENANT, "--config", str(cfg)], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=300)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0:
        raise BenchError(f"pos-edge erpnext setup --tenant {TENANT} -> exit {r.returncode}: {out[-1500:]}")
    return out.splitlines()[0] if out else ""


# --------------------------------------------------------------------------- report


def trajectory(limits: list[tuple[float, float]], knee: int, what: str = "W") -> list[str]:
    """Lines describing the limit's course: its changes, and min/median/max, the settled value, time per value."""
    if not limits:
        return ["  (no samples of pos_edge_sync_concurrency_limit)"]
    changes, last = [], None
    for t, v in limits:
        if v != last:
            changes.append(f"t={t:.1f}s {v:g}")
            last = v
    shown = changes if len(changes) <= 30 else [*changes[:20], f"... ({len(changes) - 25} more changes) ...", *changes[-5:]]
    values = [v for _, v in limits]
    tail = values[len(values) // 2:]
    settled = statistics.median(tail)
    share = collections.Counter(values)
    first_knee = next((t for t, v in limits if v >= knee), None)
    out = ["  changes: " + ", ".join(shown)]
    out.append(f"  min {min(values):g} / median {statistics.median(values):g} / max {max(values):g}; settled (median of "
               f"the second half) {settled:g}; knee {what} = {knee}: "
               + (f"first reached at t={first_knee:.1f}s" if first_knee is not None else "never reached")
               + f"; above {what} {100 * sum(1 for v in values if v > knee) / len(values):.0f} % of the time, "
               f"below {what} {100 * sum(1 for v in values if v < knee) / len(values):.0f} %")
    out.append("  time at each value: " + ", ".join(f"{v:g}: {100 * c / len(values):.0f} %" for v, c in sorted(share.items())))
    return out


def aim(ok: bool) -> str:
    return "met" if ok else "MISSED"


def fmt_waits(w: Waits | None) -> str:
    if w is None or not w.n:
        return "-"
    return (f"p50 {w.p50_ms:.1f} / p95 {w.p95_ms:.1f} / max {w.max_ms:.1f} ms, {100 * w.waited:.0f} % waited > 2 ms "
            f"({w.n} invoices)")


def fmt_cpu(c: PhaseCpu, upstream: str) -> str:
    return (f"{upstream} {c.upstream_pct:.0f}, pos-edge serve {c.serve_pct:.0f}, bench {c.bench_pct:.0f}, "
            f"other processes {c.other_pct:.0f}")


def sync_text(sync: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {json.dumps(v)}" for k, v in sync.items())


def print_report(info: dict[str, Any], idle: Latency, idle_waits: Waits | None, d1: Drain, live: LivePhase,
                 fair: Fairness, checks: dict[str, Any], capacity: Capacity | None = None,
                 baseline: LivePhase | None = None, phases: dict[str, PhaseCpu] | None = None) -> None:
    cap = info["capacity"]
    real = capacity is not None
    up = "ERPNext" if real else "stand-in"
    knee, knee_what = info["knee"], "W"
    print()
    if capacity is not None:
        print(f"pos-edge shield benchmark on a REAL ERPNext: {info['erpnext']} (site {info['site']}), "
              f"{knee} gunicorn workers; nproc={info['nproc']}, nothing pinned; python {info['python']}")
        print(f"capacity, measured first: {capacity.invoices} of pos-edge's Sales Invoice documents POSTed straight to "
              f"/api/resource/Sales Invoice by {capacity.clients} clients: {capacity.per_s_10_90:.2f} invoices/s over "
              f"10-90 % of the answers (= the capacity below; {capacity.per_s:.2f} over the whole {capacity.seconds:.1f} s); "
              f"latency p50 {capacity.latency_p50_ms:.0f} / p95 {capacity.latency_p95_ms:.0f} ms; answers "
              f"{capacity.answers}; ERPNext CPU {capacity.cpu.upstream_pct:.0f} % of a core, "
              f"{capacity.cpu.upstream_ms_per_invoice:.0f} ms per invoice"
              + (f"; errors {capacity.errors}" if capacity.errors else ""))
        print(f"sales: {info['sale']}; store {info['store']}")
    else:
        print(f"pos-edge shield benchmark: stand-in of W={info['workers']} workers x {1e3 * info['write_time']:g} ms an "
              f"invoice = capacity {cap:g} invoices/s; store {info['store']}")
    print(f"gateway.sync: tenant_concurrency {info['concurrency']} (upper bound), min_concurrency 1, adaptive, max_queue 1.0, "
          f"live_hold 3 s, poll_interval 0.05 s, in-process workers"
          + ("" if real else f"; nproc={info['nproc']}, pinning={info['pinning']}; python {info['python']}"))
    print()
    print(f"1. live /v1/sale, idle ({idle.n} sequential sales, one till, nothing else running):")
    print(f"   p50 {idle.p50_ms:.1f} ms, p95 {idle.p95_ms:.1f} ms, max {idle.max_ms:.1f} ms"
          + (f"; errors {idle.errors}" if idle.errors else ""))
    if not real:
        print(f"   in the stand-in's line: {fmt_waits(idle_waits)}")
    print()
    print(f"2. drain, no live traffic ({d1.sales:,} queued sales, one till; upload {d1.upload_s:.2f} s, drained "
          f"while uploading):")
    print(f"   {d1.seconds:.2f} s from the first upload = {d1.per_s:.2f} invoices/s; over 10-90 %: {d1.per_s_10_90:.2f} "
          f"invoices/s = {d1.ratio_10_90:.2f} x capacity   [aim >= {AIM_DRAIN_RATIO} x capacity: "
          f"{aim(d1.ratio_10_90 >= AIM_DRAIN_RATIO)}]")
    if d1.utilisation is not None and d1.effective_capacity is not None and d1.busy_ms_per_invoice is not None:
        print(f"   stand-in utilisation (busy worker-s / (W x s)): {d1.utilisation_10_90:.2f} over 10-90 %, "
              f"{d1.utilisation:.2f} whole drain; most in flight {d1.standin_max_in_flight}, most waiting in line "
              f"{d1.standin_max_waiting}")
        print(f"   stand-in busy per invoice {d1.busy_ms_per_invoice:.1f} ms (write_time + its own processing): effective "
              f"capacity {d1.effective_capacity:.1f} invoices/s; the drain (10-90 %) = "
              f"{d1.per_s_10_90 / d1.effective_capacity:.2f} x that")
        print(f"   the drain's invoices in the stand-in's line: {fmt_waits(d1.waits)}")
    print(f"   CPU (% of a core): {fmt_cpu(d1.cpu, up)}"
          + (f"; ERPNext {d1.cpu.upstream_ms_per_invoice:.0f} ms per invoice" if real else ""))
    print()
    lv, d2 = live.latency, live.drain
    print(f"3. live /v1/sale during a second drain ({d2.sales:,} sales, another till; {lv.n} sequential sales from a "
          f"third till from {100 * LIVE_FROM:.0f} % to {100 * LIVE_TO:.0f} % of it, {live.seconds:.1f} s):")
    print(f"   p50 {lv.p50_ms:.1f} ms, p95 {lv.p95_ms:.1f} ms, max {lv.max_ms:.1f} ms; p95 / idle p95 = "
          f"{live.ratio_p95:.2f}   [aim <= {AIM_LIVE_RATIO}: {aim(live.ratio_p95 <= AIM_LIVE_RATIO)}]"
          + (f"; errors {lv.errors}" if lv.errors else ""))
    if not real:
        print(f"   the live sales in the stand-in's line: {fmt_waits(live.waits)}")
    print(f"   drain meanwhile: {live.drain_per_s:.2f} invoices/s = {live.drain_ratio:.2f} x capacity (+ live "
          f"{live.sales_per_s:.2f} sales/s: {up} at {live.total_ratio:.2f} x capacity)")
    print(f"   whole second drain: {d2.seconds:.2f} s, {d2.per_s_10_90:.2f} invoices/s over 10-90 % "
          f"({d2.ratio_10_90:.2f} x capacity)"
          + (f", utilisation {d2.utilisation_10_90:.2f}; most in flight {d2.standin_max_in_flight}, most waiting "
             f"{d2.standin_max_waiting}" if d2.utilisation_10_90 is not None else ""))
    if live.limits:
        vals = [v for _, v in live.limits]
        print(f"   adaptive limit while the live sales ran: min {min(vals):g} / median {statistics.median(vals):g} / "
              f"max {max(vals):g}; " + trajectory(live.limits, knee, knee_what)[0].strip())
    print(f"   CPU during the second drain (% of a core): {fmt_cpu(d2.cpu, up)}"
          + (f"; ERPNext {d2.cpu.upstream_ms_per_invoice:.0f} ms per invoice (queued + live)" if real else ""))
    print()
    print(f"4. fairness: a {fair.small}-sale till uploaded right after a {fair.big:,}-sale till's batches "
          f"(uploaded in {fair.big_upload_s:.2f} s):")
    print(f"   the small till's batch {fair.small_status} {fair.small_seconds:.2f} s after its upload "
          f"({fair.small_seconds_from_big:.2f} s after the big till's first)   [aim: a few seconds (<= "
          f"{AIM_SMALL_SECONDS:g} s): {aim(fair.small_status == 'synced' and fair.small_seconds <= AIM_SMALL_SECONDS)}]")
    if real:
        print(f"   (at {cap:.2f} invoices/s, a fair share - every other posting, round-robin with the big till - "
              f"syncs {fair.small} sales in about 2 x {fair.small} / capacity = {2 * fair.small / cap:.1f} s)")
    print(f"   the big till's sales synced by then: {fair.big_synced_at_small_done:,} of {fair.big:,} "
          f"({fair.big_synced_at_small_upload:,} when the small batch was uploaded)")
    print()
    print(f"5. the adaptive limit during the no-live drain (pos_edge_sync_concurrency_limit, sampled every "
          f"{2 * SAMPLE_PERIOD:g} s, {len(d1.limits)} samples; the knee to find: {knee_what} = {knee}"
          + (", ERPNext's gunicorn workers, if nothing else in the site is the limit first)" if real else ")") + ":")
    for line in trajectory(d1.limits, knee, knee_what):
        print(line)
    if baseline is not None:
        b, bd = baseline, baseline.drain
        print()
        print(f"6. baseline: phase 3 again through a second gateway with the sync lane of before issue 14 "
              f"(gateway.sync {sync_text(BASELINE_SYNC)}: no live priority, a fixed 4 in flight); same sizes, new tills, "
              f"its own store:")
        rows = [("adaptive (phase 3)", live, d2), ("baseline (fixed 4)", b, bd)]
        print(f"   {'':20} {'live p50 ms':>11} {'p95 ms':>8} {'p95/idle':>9} {'drain/s meanwhile':>18} {'x capacity':>10} "
              f"{'drain/s 10-90 %':>16} {'live sales':>10}")
        for name, lp, dd in rows:
            print(f"   {name:20} {lp.latency.p50_ms:11.1f} {lp.latency.p95_ms:8.1f} {lp.ratio_p95:9.2f} "
                  f"{lp.drain_per_s:18.2f} {lp.drain_ratio:10.2f} {dd.per_s_10_90:16.2f} {lp.latency.n:10d}")
        if b.latency.errors:
            print(f"   baseline live errors: {b.latency.errors}")
        if b.limits:
            print(f"   baseline limit gauge while the live sales ran: {sorted({v for _, v in b.limits})}")
        print(f"   CPU during the baseline drain (% of a core): {fmt_cpu(bd.cpu, up)}")
        print("   not switched off in the baseline: fairness (round-robin claims across tills is in the store: it "
              "cannot be), and a live call under way in the same process still takes one from the cap at claim time "
              "(the worker's cap is limit - max(store demand, live calls in flight here)); live_hold 0 only stops the "
              "marks and the hold after a call")
    if real and phases:
        print()
        print(f"{'7' if baseline is not None else '6'}. ERPNext's CPU per phase (gunicorn master + workers and MariaDB, "
              f"from /proc; % of one core, the machine has {info['nproc']}):")
        print(f"   {'phase':26} {'s':>7} {'invoices':>8} {'ERPNext %':>9} {'ms/invoice':>10} {'serve %':>8} {'bench %':>8} "
              f"{'other %':>8}")
        for name, c in phases.items():
            print(f"   {name:26} {c.seconds:7.1f} {c.invoices:8d} {c.upstream_pct:9.0f} {c.upstream_ms_per_invoice:10.0f} "
                  f"{c.serve_pct:8.0f} {c.bench_pct:8.0f} {c.other_pct:8.0f}")
    print()
    if not real:
        print("stand-in requests: " + ", ".join(f"{k} {v:,}" for k, v in checks["requests"].most_common(8)))
    print(f"run took {info['seconds']:.0f} s")
    if checks["problems"]:
        print("FAILED: " + "; ".join(checks["problems"]))
    elif real:
        print(f"verified: every batch synced with distinct invoice ids, and ERPNext holds exactly one submitted Sales "
              f"Invoice per reference for this run's tills ({checks['invoices']:,}: queued and live; + "
              f"{info['capacity_invoices']} direct for the capacity), each the invoice the gateway named; no drafts "
              f"or cancelled ones")
    else:
        print(f"verified: every batch synced with distinct invoice ids, and the stand-in holds exactly one invoice per "
              f"sale ({checks['invoices']:,}: queued and live)")
    if checks["warnings"]:
        print(f"gateway warnings/errors ({len(checks['warnings'])}, 8 shown):")
        for w in checks["warnings"][:8]:
            print("  " + w[:200])


def compact_json(obj: Any) -> str:
    """JSON, indented, with lists of plain numbers (the limit's (t, value) pairs) on one line."""
    num = r"(?:-?[0-9.eE+-]+|null)"
    return re.sub(rf"\[\s*({num}(?:,\s*{num})*)\s*\]", lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]",
                  json.dumps(obj, indent=2))


# --------------------------------------------------------------------------- checks


def serve_log(serve: Child) -> tuple[collections.Counter[str], list[str]]:
    events: collections.Counter[str] = collections.Counter()
    warnings = []
    for path in (serve.stdout_path, serve.stderr_path):
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
            if rec.get("level") in ("warning", "error", "critical", "exception") and rec.get("event") not in EXPECTED:
                warnings.append(line[:300])
    return events, warnings


def verify_gateway(tills: list[Till]) -> list[str]:
    """Every batch all synced, with distinct invoice ids (through the gateway that holds them, while it
    runs); each till's invoices (client_txn_id -> invoice) completed from the jobs."""
    problems = []
    for till in tills:
        synced = 0
        ids: set[str] = set()
        for batch in till.batches:
            st = till.status(batch)
            synced += st["summary"]["synced"]
            for j in st["jobs"]:
                if j["status"] == "synced" and j["invoice_id"]:
                    ids.add(j["invoice_id"])
                    till.invoices[j["client_txn_id"]] = j["invoice_id"]
            bad = [f"{j['client_txn_id']}: {j['status']} {j['last_error']}" for j in st["jobs"] if j["status"] != "synced"]
            if bad:
                problems.append(f"{till.device} batch {batch}: {len(bad)} not synced ({bad[:2]})")
        if till.batches and len(ids) != synced:
            problems.append(f"{till.device}: {synced:,} jobs synced with {len(ids):,} distinct invoice ids")
    return problems


def verify_standin(tills: list[Till], standin_url: str) -> tuple[list[str], dict[str, Any]]:
    problems = []
    stats = standin_get(standin_url, "stats")
    for till in tills:
        held = stats["devices"].get(till.device, 0)
        refs = stats["device_references"].get(till.device, 0)
        if held != till.expected or refs != held:
            problems.append(f"{till.device}: the stand-in holds {held:,} invoices ({refs:,} distinct references), "
                            f"expected {till.expected:,}")
    total = sum(t.expected for t in tills)
    if stats["invoices"] != total or stats["distinct_names"] != total:
        problems.append(f"the stand-in holds {stats['invoices']:,} invoices ({stats['distinct_names']:,} names), "
                        f"expected {total:,}")
    return problems, stats


def verify_erpnext(site: Site, tills: list[Till], direct: dict[str, int]) -> tuple[list[str], int]:
    """Over REST: for each till (and each direct device: its expected count), exactly one submitted
    Sales Invoice per reference "<device>/...", none in another docstatus, and for a till each
    invoice the gateway named is the one carrying that sale's reference. (problems, the tills' invoices)"""
    problems = []
    held_total = 0
    wanted = [(t.device, t.expected, t.invoices, True) for t in tills] + [(d, n, {}, False) for d, n in direct.items()]
    for device, expected, named, is_till in wanted:
        rows = site.rows("Sales Invoice", [[REFERENCE_FIELD, "like", f"{device}/%"]], ["name", REFERENCE_FIELD, "docstatus"])
        submitted = [r for r in rows if int(r["docstatus"]) == 1]
        others = collections.Counter(int(r["docstatus"]) for r in rows if int(r["docstatus"]) != 1)
        by_ref = {str(r[REFERENCE_FIELD]): str(r["name"]) for r in submitted}
        held_total += len(submitted) if is_till else 0
        if len(submitted) != expected or len(by_ref) != len(submitted) or others:
            problems.append(f"{device}: ERPNext holds {len(submitted):,} submitted invoices ({len(by_ref):,} distinct "
                            f"references; other docstatus {dict(others)}), expected {expected:,}")
        wrong = [txn for txn, inv in named.items() if by_ref.get(f"{device}/{txn}") != inv]
        if wrong:
            problems.append(f"{device}: {len(wrong)} sales name an invoice that is not the one with their reference "
                            f"({wrong[:3]})")
        if named and len(named) != expected:
            problems.append(f"{device}: the gateway named {len(named):,} invoices, expected {expected:,}")
    return problems, held_total


# --------------------------------------------------------------------------- main


def start_gateway(name: str, cfg: Path, tmp: Path, args: argparse.Namespace, use_taskset: bool,
                  children: list[Child]) -> tuple[Child, Any, str]:
    """`pos-edge serve` with `cfg`; waits until its tenant's reference field is ok. (child, client, metrics url)"""
    import httpx
    import yaml

    m_port = int(yaml.safe_load(cfg.read_text())["gateway"]["metrics"]["listen"].rsplit(":", 1)[1])
    port = free_port()
    while port == m_port:
        port = free_port()
    argv_e = [POS_EDGE, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port), "--grace", "2",
              "--log-level", args.log_level]
    serve = Child(name, pinned(GATEWAY_CORE, argv_e, use_taskset), tmp)
    children.append(serve)
    base = f"http://127.0.0.1:{port}"
    wait_http(serve, base + "/healthz")
    http = httpx.Client(base_url=base, timeout=120.0)
    deadline = time.monotonic() + 30
    while (http.get("/readyz").json().get("reference_fields") or {}).get(TENANT) != "ok":
        if time.monotonic() > deadline:
            raise BenchError(f"the reference field is not ok: {http.get('/readyz').text}")
        time.sleep(0.1)
    return serve, http, f"http://127.0.0.1:{m_port}/metrics"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sales", type=int, default=None, help="queued sales per drain (default 10000; --quick 1000; "
                                                           "--erpnext 400)")
    p.add_argument("--big", type=int, default=None, help="the big till's queued sales (default 5000; --quick 500; "
                                                         "--erpnext 300)")
    p.add_argument("--idle-sales", type=int, default=None, help="sequential live sales measured idle (default 60; "
                                                                "--erpnext 30)")
    p.add_argument("--workers", type=int, default=4, help="the stand-in's workers W (default 4)")
    p.add_argument("--write-time", type=float, default=0.05, help="seconds an invoice holds a stand-in worker (default 0.05)")
    p.add_argument("--concurrency", type=int, default=8, help="gateway.sync.tenant_concurrency, the limit's upper bound "
                                                              "(default 8, the gateway's default)")
    p.add_argument("--store", choices=["sqlite", "redis"], default="sqlite")
    p.add_argument("--quick", action="store_true", help="1,000-sale drains and a 500-sale big till (stand-in only)")
    p.add_argument("--erpnext", metavar="URL", help="measure against this REAL ERPNext (e.g. http://127.0.0.1:8100) "
                                                    "instead of the stand-in")
    p.add_argument("--site", default=os.environ.get("POS_EDGE_REAL_ERPNEXT_SITE", "pos.localhost"),
                   help="the real site's name, sent as Host (default pos.localhost)")
    p.add_argument("--keys-file", default="/root/erp/keys.env",
                   help="API_KEY=/API_SECRET= lines, used when POS_EDGE_REAL_ERPNEXT_KEY/_SECRET are not set")
    p.add_argument("--capacity-invoices", type=int, default=120,
                   help=f"--erpnext: invoices POSTed straight by {CAPACITY_CLIENTS} clients to measure the capacity "
                        "(default 120)")
    p.add_argument("--baseline", action="store_true",
                   help="then phase 3 again through a gateway with the sync lane of before issue 14 "
                        "(adaptive false, tenant_concurrency 4, live_hold 0)")
    p.add_argument("--log-level", default="info", choices=["warning", "info"], help="pos-edge serve's log level")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds a drain may take (default 60 + 3 x the time at capacity)")
    p.add_argument("--json", action="store_true", help="also print a JSON summary")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, config, queue.db)")
    p.add_argument("--tmpdir", help="where the temp dir (and the SQLite queue) goes (default: $TMPDIR or /tmp)")
    p.add_argument("--standin-scans", action="store_true",
                   help="leave the stand-in's per-insert scans of every invoice as they are (see index_standin_scans: "
                        "it then slows down as invoices pile up)")
    p.add_argument("--serve-standin", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    if args.serve_standin:
        serve_standin(args.serve_standin, args.workers, args.write_time, args.standin_scans)
        return 0
    real = args.erpnext is not None
    key = secret = None
    if real:
        if args.quick:
            p.error("--quick is for the stand-in: give --sales/--big/--idle-sales instead")
        if args.store != "sqlite":
            p.error("--erpnext follows the drains in the gateway's SQLite queue: --store sqlite")
        keys = read_keys(args.keys_file)
        key = os.environ.get("POS_EDGE_REAL_ERPNEXT_KEY") or keys.get("API_KEY")
        secret = os.environ.get("POS_EDGE_REAL_ERPNEXT_SECRET") or keys.get("API_SECRET")
        if not key or not secret:
            p.error("set POS_EDGE_REAL_ERPNEXT_KEY and POS_EDGE_REAL_ERPNEXT_SECRET (or --keys-file)")
        args.sales = args.sales or REAL_DEFAULTS["sales"]
        args.big = args.big or REAL_DEFAULTS["big"]
        args.idle_sales = args.idle_sales or REAL_DEFAULTS["idle_sales"]
    else:
        args.sales = args.sales or (1_000 if args.quick else 10_000)
        args.big = args.big or (500 if args.quick else 5_000)
        args.idle_sales = args.idle_sales or 60
    if args.workers < 1 or args.write_time <= 0 or args.sales < 10 or args.big < 1 or args.idle_sales < 1 \
            or args.capacity_invoices < 20:
        p.error("--workers, --write-time, --sales (>= 10), --big, --idle-sales and --capacity-invoices (>= 20) "
                "must be positive")
    capacity = args.workers / args.write_time  # the stand-in's; measured on the real site
    if not real:
        args.timeout = args.timeout or 60 + 3 * max(args.sales, args.big) / capacity

    started = time.monotonic()
    # on the real site nothing is pinned: ERPNext (gunicorn, MariaDB), pos-edge and the bench share the machine
    use_taskset = not real and bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    if use_taskset:
        os.sched_setaffinity(0, {int(STANDIN_CORE)})  # the bench's own calls stay off core 0
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-shield-bench-", dir=args.tmpdir))
    run_id = uuid.uuid4().hex[:6]
    children: list[Child] = []
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    info: dict[str, Any] = {
        "mode": "erpnext" if real else "stand-in",
        "sales": args.sales, "big": args.big, "small": SMALL, "idle_sales": args.idle_sales,
        "concurrency": args.concurrency, "baseline": args.baseline, "run": run_id,
        "store": f"sqlite ({tmp}/queue.db)" if args.store == "sqlite" else REDIS_URL,
        "nproc": os.cpu_count(), "python": platform.python_version(), "quick": args.quick,
        "pinning": (f"taskset: serve on core {GATEWAY_CORE}; stand-in + bench on core {STANDIN_CORE}"
                    if use_taskset else "none"),
    }
    if not real:
        info.update(workers=args.workers, write_time=args.write_time)
    https: list[Any] = []
    samplers: list[Sampler] = []
    try:

        if args.store == "redis":
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            stale = list(r.scan_iter("pos-edge:*", count=1000))
            for i in range(0, len(stale), 1000):
                r.delete(*stale[i:i + 1000])
            r.close()

        site: Site | None = None
        cap: Capacity | None = None
        standin_url: str | None = None
        phases: dict[str, PhaseCpu] = {}
        upstream: int | Site
        cap_device = f"bench-cap-{run_id}"
        if real:
            assert key is not None and secret is not None
            site = Site(args.erpnext, args.site, key, secret)
            user = site.get("/api/method/frappe.auth.get_logged_user").get("message")
            upstream = site
            cfg = tenants_yaml(tmp, site, free_port(), args)
            setup = erpnext_setup(cfg)
            roots = erpnext_roots()
            if not roots:
                raise BenchError("ERPNext's processes (gunicorn frappe.app, MariaDB) were not found in /proc")
            knee = gunicorn_workers(roots)
            meter = CpuMeter(roots)
            print(f"ERPNext {site.url} (site {site.site}, as {user}): {knee} gunicorn workers; pos-edge erpnext setup: "
                  f"{setup}", flush=True)
            print(f"  [capacity] {args.capacity_invoices} Sales Invoices POSTed straight by {CAPACITY_CLIENTS} clients ...",
                  flush=True)
            cap = measure_capacity(site, cfg, cap_device, args.capacity_invoices, meter)
            capacity = cap.per_s_10_90
            phases[f"capacity ({CAPACITY_CLIENTS} direct clients)"] = cap.cpu
            print(f"  [capacity] {cap.answers} in {cap.seconds:.1f} s: {cap.per_s_10_90:.2f} invoices/s over 10-90 % "
                  f"({cap.per_s:.2f} overall); ERPNext CPU {cap.cpu.upstream_pct:.0f} % of a core", flush=True)
            if cap.answers.get("200", 0) != args.capacity_invoices:
                raise BenchError(f"measuring the capacity: answers {cap.answers}: {cap.errors}")
            args.timeout = args.timeout or 60 + 3 * max(args.sales, args.big) / capacity
            info.update(erpnext=site.url, site=site.site, capacity_invoices=args.capacity_invoices,
                        sale=f"{REAL_ITEM} x1 at {REAL_RATE} UGX, paid cash (bench/real_drain.py's sale); update_stock "
                             f"false in the tenant's config (kept simple: no stock is moved, none is needed)")
        else:
            s_port = free_port()
            argv_s = [PYTHON, str(Path(__file__).resolve()), "--serve-standin", str(s_port), "--workers",
                      str(args.workers), "--write-time", str(args.write_time),
                      *(["--standin-scans"] if args.standin_scans else [])]
            standin = Child("standin", pinned(STANDIN_CORE, argv_s, use_taskset), tmp)
            children.append(standin)
            standin_url = f"http://127.0.0.1:{s_port}"
            wait_http(standin, standin_url + "/__bench/count")
            print(f"stand-in on {standin_url} (pid {standin.pid}): W={args.workers}, write {args.write_time:g} s, "
                  f"capacity {capacity:g} invoices/s", flush=True)
            upstream = s_port
            knee = args.workers
            meter = CpuMeter([standin.pid])
            cfg = tenants_yaml(tmp, s_port, free_port(), args)
        info.update(capacity=capacity, knee=knee, timeout=args.timeout)

        # pos-edge serve
        serve, http, metrics_url = start_gateway("serve", cfg, tmp, args, use_taskset, children)
        https.append(http)
        meter.serve = serve.pid
        tills = {role: register(http, f"{device}-{run_id}", real) for role, device in DEVICES.items()}
        print(f"pos-edge serve on {http.base_url} (pid {serve.pid}), metrics on {metrics_url}; {len(tills)} tills "
              f"registered (suffix -{run_id}); drain timeout {args.timeout:.0f} s", flush=True)
        sampler = Sampler(Progress(standin_url) if standin_url else Progress(db=queue_db(tmp)), metrics_url)
        samplers.append(sampler)
        sampler.start()
        ctx = Ctx(args, capacity, knee, meter, serve, sampler, standin_url)
        hold = 3.0 + 0.5  # gateway.sync.live_hold (default) and a margin: the next phase starts without live demand

        # 1. idle live sales
        live_sales(tills["idle"], WARMUP)
        ctx.waits()  # forget the warm-up's
        c0 = meter.snap()
        took, errors = live_sales(tills["idle"], args.idle_sales)
        phases["idle live sales"] = CpuMeter.between(c0, meter.snap(), len(took))
        if not took:
            raise BenchError(f"no live sale was answered 201: {errors}")
        idle = Latency.of(took, errors)
        idle_waits = Waits.of(ctx.waits().get(tills["idle"].device, [])) if not real else None
        print(f"  [idle] {idle.n} live sales: p50 {idle.p50_ms:.1f} ms, p95 {idle.p95_ms:.1f} ms"
              + (f"; errors {errors}" if errors else ""), flush=True)
        time.sleep(hold)

        # 2. drain, no live traffic
        d1, _ = run_drain(ctx, "drain", tills["drain"], args.sales)
        if not real:
            d1.waits = Waits.of(ctx.waits().get(tills["drain"].device, []))
        phases["drain, no live traffic"] = d1.cpu
        time.sleep(1.0)

        # 3. drain with live sales in its middle
        live = run_live_phase(ctx, "drain+live", tills["drain_live"], tills["live"], args.sales, idle.p95_ms)
        phases["drain + live sales"] = live.drain.cpu
        time.sleep(hold)

        # 4. fairness: a small till behind a big one
        big, small = tills["big"], tills["small"]
        big_bodies = batches(f"big-{uuid.uuid4().hex[:6]}", args.big, real)
        small_body = batches(f"small-{uuid.uuid4().hex[:6]}", SMALL, real)[0]
        c0 = meter.snap()
        t0 = time.monotonic()
        for body in big_bodies:
            big.upload(body)
        big_upload_s = time.monotonic() - t0
        at_upload = sampler.progress.count(big.device)
        small_batch = small.upload(small_body)
        t_small = time.monotonic()
        deadline = t_small + args.timeout
        while True:
            st = small.status(small_batch)
            if st["status"] in ("synced", "failed", "partial") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        t_done = time.monotonic()
        at_done = sampler.progress.count(big.device)
        fair = Fairness(big=args.big, small=SMALL, big_upload_s=big_upload_s, small_seconds=t_done - t_small,
                        small_seconds_from_big=t_done - t0, big_synced_at_small_upload=at_upload,
                        big_synced_at_small_done=at_done, small_status=st["status"])
        print(f"  [fairness] the {SMALL}-sale batch {st['status']} after {fair.small_seconds:.2f} s; the big till had "
              f"{at_done:,}/{args.big:,} synced by then; waiting for the big till", flush=True)
        wait_drained(ctx, big, args.big, t0 + args.timeout)
        fair.cpu = CpuMeter.between(c0, meter.snap(), args.big + SMALL)
        phases["fairness (big + small till)"] = fair.cpu
        ctx.waits()
        sampler.stop()

        # checks through the gateway, while it runs
        problems = verify_gateway(list(tills.values()))
        if sampler.errors:
            print(f"sampler errors: {dict(sampler.errors)}", file=sys.stderr)
        events, warnings = serve_log(serve)

        # --baseline: phase 3 again, through a gateway with the sync lane of before issue 14
        baseline: LivePhase | None = None
        tills_b: dict[str, Till] = {}
        if args.baseline:
            time.sleep(hold)
            serve.stop()  # its in-process workers stay out of the way (and off the CPU)
            cfg_b = tenants_yaml(tmp, upstream, free_port(), args, baseline=True)
            serve_b, http_b, metrics_b = start_gateway("serve-baseline", cfg_b, tmp, args, use_taskset, children)
            https.append(http_b)
            meter.serve = serve_b.pid
            tills_b = {role: register(http_b, f"{device}-{run_id}", real) for role, device in BASELINE_DEVICES.items()}
            sampler_b = Sampler(Progress(standin_url) if standin_url else Progress(db=queue_db(tmp, True)), metrics_b)
            samplers.append(sampler_b)
            sampler_b.start()
            ctx.serve, ctx.sampler = serve_b, sampler_b
            print(f"baseline: pos-edge serve on {http_b.base_url} (pid {serve_b.pid}), gateway.sync "
                  f"{sync_text(BASELINE_SYNC)}", flush=True)
            live_sales(tills_b["live"], WARMUP)  # as the idle phase's warm-up, for this process
            ctx.waits()
            time.sleep(1.0)
            baseline = run_live_phase(ctx, "baseline drain+live", tills_b["drain_live"], tills_b["live"], args.sales,
                                      idle.p95_ms)
            phases["baseline drain + live"] = baseline.drain.cpu
            ctx.waits()
            sampler_b.stop()
            problems += verify_gateway(list(tills_b.values()))
            if sampler_b.errors:
                print(f"baseline sampler errors: {dict(sampler_b.errors)}", file=sys.stderr)
            events_b, warnings_b = serve_log(serve_b)
            events.update(events_b)
            warnings += ["[baseline] " + w for w in warnings_b]

        # checks in the upstream
        every = [*tills.values(), *tills_b.values()]
        stats: dict[str, Any] = {}
        if site is not None and cap is not None:
            found, held = verify_erpnext(site, every, {cap_device: cap.answers.get("200", 0)})
        else:
            assert standin_url is not None
            found, stats = verify_standin(every, standin_url)
            held = stats["invoices"]
        problems += found
        info["seconds"] = time.monotonic() - started
        checks = {"problems": problems, "invoices": held, "warnings": warnings,
                  "requests": collections.Counter(stats.get("requests", {}))}
        print_report(info, idle, idle_waits, d1, live, fair, checks, cap, baseline, phases)
        if args.json:
            print(compact_json({**info, "capacity_measured": asdict(cap) if cap else None, "idle": asdict(idle),
                                "idle_waits": asdict(idle_waits) if idle_waits else None, "drain": asdict(d1),
                                "live": asdict(live), "fairness": asdict(fair),
                                "baseline": asdict(baseline) if baseline else None,
                                "phases_cpu": {k: asdict(v) for k, v in phases.items()}, "problems": problems,
                                "standin": {"invoices": stats.get("invoices"), "requests": stats.get("requests"),
                                            "capacity": stats.get("capacity")} if stats else None,
                                "gateway_events": dict(events.most_common(20))}))
        return 0 if not problems else 1
    except BenchError as exc:
        print(f"\nbenchmark invalid: {exc}", file=sys.stderr)
        for c in children:
            if c.name.startswith("serve"):
                for w in serve_log(c)[1][:10]:
                    print(f"  {c.name}: {w}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for s in samplers:
            if s.is_alive():
                s.stop()
        for h in https:
            h.close()
        for child in reversed(children):
            try:
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
