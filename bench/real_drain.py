"""Real-ERPNext drain benchmark: sales queued through pos-edge's /sync/batch and drained by a
``pos-edge worker``, against the same Sales Invoices posted straight to ERPNext's REST API.

NOT a test. It books real invoices (and, with update_stock, moves real stock) on the site.
One run, alternating (b, a, b, a), ``--jobs`` (500) sales each:

(b) direct: the exact Sales Invoice documents pos-edge sends (built by pos-edge's own
    ``edge.erpnext.documents.invoice`` from the tenant's config, with the accounts and
    ``disable_rounded_total`` it resolves, serialised as ``ErpnextClient`` does: customer,
    company, is_pos, pos_profile, update_stock, docstatus 1, items with warehouse and
    cost_center, payments with account, the reference field ``custom_pos_edge_txn_id``),
    POSTed to ``/api/resource/Sales Invoice`` by ``--concurrency`` (4) concurrent aiohttp
    clients over keep-alive connections, the same headers pos-edge sends. Timed from the
    first request sent to the last answer read.
(a) pos-edge: the same sales as one ``POST /sync/batch`` of ``--jobs`` transactions (at
    most 500 per upload) to ``pos-edge serve`` (``gateway.sync.in_process_workers: false``),
    drained by one separate ``pos-edge worker`` process with the default
    ``gateway.sync.tenant_concurrency`` 4 (so ERPNext sees 4 concurrent inserts in both)
    and the default poll interval (0.5 s). Timed from the 202 to the last job's settle
    (its ``updated_at`` in the queue, watched read-only in the SQLite file every 0.1 s, so
    that nothing asks pos-edge meanwhile); then each batch's ``/sync/status`` is checked.

Also measured per run: CPU ms per invoice of ERPNext (its gunicorn and MariaDB processes,
found in /proc by command line, only read), of pos-edge's serve and worker, and of the bench.

Checks, each run: every insert answered 200 / every job synced, and ERPNext holds exactly
one submitted invoice per reference (read back over REST). After the first (a), one invoice
of (a) and one of (b) are compared field by field (they must differ only in names,
timestamps and the reference). Before anything, the item's stock is read: SUGAR-1KG, or
POSHO-5KG, whichever holds enough for every run (2 x rounds x jobs units, qty 1 per sale);
with neither, invoices are posted with update_stock 0, and the report says so.

    POS_EDGE_REAL_ERPNEXT_KEY=... POS_EDGE_REAL_ERPNEXT_SECRET=... \\
    .venv/bin/python bench/real_drain.py [--url http://127.0.0.1:8100] [--site pos.localhost]
        [--jobs 500] [--rounds 2] [--concurrency 4] [--keys-file /root/erp/keys.env] [--json] [--keep-tmp]

Nothing is pinned to a core: ERPNext (gunicorn, MariaDB), pos-edge and the bench share the
machine, as they would on a small shop server. Exit status: 0 when every check passed,
1 otherwise (or when a process failed), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from proxy import POS_EDGE, BenchError, Child, _interrupt, cpu_seconds, free_port, wait_http  # noqa: E402 (after sys.path)

COMPANY = "Shop One Ltd"
PROFILE = "Shop One Main"
WAREHOUSE = "Stores - S1"
COST_CENTER = "Main - S1"
CUSTOMER = "Walk-in Customer"
ITEMS = {"SUGAR-1KG": "5000", "POSHO-5KG": "24000"}  # item -> rate (UGX), in order of preference
TENANT = "bench"
BASE_DOMAIN = "drain.bench"
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
REFERENCE_FIELD = "custom_pos_edge_txn_id"
MAX_BATCH = 500
STORE_POLL = 0.1


@dataclass
class Run:
    label: str  # "b1", "a1", ...
    kind: str  # "direct" or "pos-edge"
    jobs: int
    seconds: float
    per_s: float
    upload_s: float | None = None  # (a): POST /sync/batch until its 202
    answers: dict[str, int] = field(default_factory=dict)  # (b): HTTP status -> count
    retried: int = 0  # (a): jobs that took more than one attempt
    erpnext_invoices: int = 0
    erpnext_distinct_references: int = 0
    cpu_ms_per_invoice: dict[str, float] = field(default_factory=dict)  # erpnext / pos-edge / bench
    ok: bool = True
    problems: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- ERPNext, directly


class Site:
    """The real site's REST API (synchronous; for checks, never for the timed part)."""

    def __init__(self, url: str, site: str, key: str, secret: str) -> None:
        import httpx

        self.url, self.site, self.key, self.secret = url.rstrip("/"), site, key, secret
        self.http = httpx.Client(base_url=self.url, timeout=120,
                                 headers={"Host": site, "Authorization": f"token {key}:{secret}"})

    def get(self, path: str, **params: Any) -> Any:
        r = self.http.get(path, params={k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
        if r.status_code != 200:
            raise BenchError(f"ERPNext GET {path} -> {r.status_code}: {r.text[:500]}")
        return r.json()

    def rows(self, doctype: str, filters: list[list[Any]], fields: list[str]) -> list[dict[str, Any]]:
        return list(self.get(f"/api/resource/{doctype}", filters=filters, fields=fields, limit_page_length="0")["data"])

    def doc(self, doctype: str, name: str) -> dict[str, Any]:
        return dict(self.get(f"/api/resource/{doctype}/{name}")["data"])

    def stock(self, item: str) -> float:
        rows = self.rows("Bin", [["item_code", "=", item], ["warehouse", "=", WAREHOUSE]], ["actual_qty"])
        return float(rows[0]["actual_qty"]) if rows else 0.0

    def held(self, prefix: str) -> tuple[int, int, dict[str, str]]:
        """(submitted invoices, distinct references, reference -> name) whose reference starts with `prefix`."""
        rows = self.rows("Sales Invoice", [[REFERENCE_FIELD, "like", f"{prefix}%"], ["docstatus", "=", 1]],
                         ["name", REFERENCE_FIELD])
        return len(rows), len({r[REFERENCE_FIELD] for r in rows}), {r[REFERENCE_FIELD]: r["name"] for r in rows}


# --------------------------------------------------------------------------- CPU


def erpnext_roots() -> list[int]:
    """The site's processes, found by their command lines (read from /proc, never touched):
    gunicorn serving frappe.app (the master; its workers are its descendants) and MariaDB."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(argv)
        if (b"gunicorn" in text and b"frappe.app:application" in text) or (argv and argv[0].endswith((b"mariadbd",
                                                                                                      b"mysqld"))):
            out.append(int(entry))
    # keep the roots only: a gunicorn worker is counted with its master
    return [pid for pid in out if _ppid(pid) not in out]


def _ppid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
        return int(raw[raw.rindex(b")") + 2:].split()[1])
    except (OSError, ValueError):
        return None


class Cpu:
    """CPU seconds of ERPNext, pos-edge's serve and worker, and this bench, between two snapshots."""

    def __init__(self, erpnext: list[int], serve: int, worker: int) -> None:
        self.groups = {"erpnext": erpnext, "serve": [serve], "worker": [worker]}

    def snapshot(self) -> dict[str, float]:
        t = os.times()
        return {**{k: sum(cpu_seconds(p) for p in pids) for k, pids in self.groups.items()},
                "bench": t.user + t.system}

    @staticmethod
    def per_invoice(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, float]:
        return {k: round(1e3 * (after[k] - before[k]) / max(n, 1), 2) for k in before}


# --------------------------------------------------------------------------- config and payloads


def write_config(tmp: Path, site: Site, update_stock: bool, concurrency: int) -> Path:
    import yaml

    config = {
        "gateway": {
            "base_domains": [BASE_DOMAIN],
            "store": f"sqlite:///{tmp}/queue.db",
            "rate_limit_storage": "memory://",
            "jwt": {"secret": JWT_SECRET},
            "metrics": {"listen": None},
            "sync": {"in_process_workers": False, "tenant_concurrency": concurrency},
        },
        "tenants": {TENANT: {
            "name": "Real drain bench",
            "erpnext": {"url": site.url, "site_name": site.site, "api_key": site.key, "api_secret": site.secret,
                        "timeout": 120},
            "rate_limit": "100000/minute",
            "company": COMPANY,
            "invoice_doctype": "Sales Invoice",
            "default_customer": CUSTOMER,
            "payment_methods": {"cash": "Cash"},
            "branches": {"main": {"pos_profile": PROFILE, "warehouse": WAREHOUSE, "cost_center": COST_CENTER}},
            "update_stock": update_stock,
            "reference_field": REFERENCE_FIELD,
        }},
    }
    path = tmp / "tenants.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def sale_payload(item: str, rate: str) -> dict[str, Any]:
    return {"items": [{"item_code": item, "qty": 1, "rate": rate}], "payments": [{"method": "cash", "amount": rate}],
            "branch_id": "main", "till_id": "bench-till"}


def direct_bodies(cfg_path: Path, site: Site, device: str, txns: list[str], item: str, rate: str) -> list[bytes]:
    """The documents pos-edge's Poster would send for these sales, as its ErpnextClient encodes them."""
    from edge.config import load
    from edge.erpnext.client import _wire_number
    from edge.erpnext.documents import invoice
    from edge.sales import Sale, reference_for

    cfg = load(cfg_path).tenants[TENANT]
    mop = cfg.payment_methods["cash"]
    accounts = [r["default_account"] for r in site.doc("Mode of Payment", mop)["accounts"]
                if r.get("company") == COMPANY and r.get("default_account")]
    if not accounts:
        raise BenchError(f"Mode of Payment {mop} has no default account for {COMPANY}")
    profile = site.doc("POS Profile", PROFILE)
    out = []
    for txn in txns:
        payload = Sale.model_validate({**sale_payload(item, rate), "client_txn_id": txn})
        doc = invoice(payload, cfg, reference_for(device, txn), {mop: accounts[0]}, CUSTOMER)
        doc["disable_rounded_total"] = int(bool(int(profile.get("disable_rounded_total") or 0)))  # as Poster.document
        out.append(json.dumps(doc, default=_wire_number).encode())
    return out


# --------------------------------------------------------------------------- (b) direct


async def post_direct(site: Site, bodies: list[bytes], concurrency: int) -> tuple[float, dict[str, int], list[str]]:
    """POST every body with `concurrency` clients; (seconds from first send to last answer, statuses, errors)."""
    import aiohttp

    headers = {"Host": site.site, "X-Frappe-Site-Name": site.site, "Accept": "application/json",
               "Authorization": f"token {site.key}:{site.secret}", "Content-Type": "application/json"}
    url = site.url + "/api/resource/Sales%20Invoice"
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    statuses: dict[str, int] = {}
    errors: list[str] = []
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as session:
        async with session.get(site.url + "/api/method/ping", headers=headers) as warm:  # open one connection first
            await warm.read()

        async def client() -> None:
            while True:
                try:
                    body = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        raw = await resp.read()
                        statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
                        if resp.status != 200 and len(errors) < 5:
                            errors.append(f"{resp.status}: {raw[:300]!r}")
                except aiohttp.ClientError as exc:
                    statuses["error"] = statuses.get("error", 0) + 1
                    if len(errors) < 5:
                        errors.append(repr(exc))

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    return seconds, statuses, errors


def run_direct(label: str, site: Site, cfg_path: Path, device: str, tag: str, args: argparse.Namespace,
               item: str, rate: str, cpu: Cpu) -> Run:
    txns = [f"{tag}-{n:04d}" for n in range(args.jobs)]
    bodies = direct_bodies(cfg_path, site, device, txns, item, rate)
    before = cpu.snapshot()
    seconds, statuses, errors = asyncio.run(post_direct(site, bodies, args.concurrency))
    used = Cpu.per_invoice(before, cpu.snapshot(), args.jobs)
    ok_count = statuses.get("200", 0)
    count, distinct, _ = site.held(f"{device}/{tag}-")
    run = Run(label, "direct", args.jobs, seconds, ok_count / seconds, answers=statuses, erpnext_invoices=count,
              erpnext_distinct_references=distinct, cpu_ms_per_invoice=used)
    if ok_count != args.jobs:
        run.problems.append(f"{ok_count} of {args.jobs} inserts answered 200: {statuses} {errors}")
    if count != args.jobs or distinct != args.jobs:
        run.problems.append(f"ERPNext holds {count} invoices ({distinct} distinct references), expected {args.jobs}")
    run.ok = not run.problems
    return run


# --------------------------------------------------------------------------- (a) through pos-edge


def run_gateway(label: str, site: Site, http: Any, token: str, device: str, tag: str, args: argparse.Namespace,
                item: str, rate: str, worker: Child, queue_db: Path, cpu: Cpu) -> Run:
    """Upload, then watch the queue drain in the store (read-only SQLite: nothing asks pos-edge
    meanwhile, so the watching costs pos-edge no CPU). The drain ends at the last job's settle
    (its updated_at), the moment pos-edge recorded the last invoice as synced."""
    import sqlite3

    txns = [f"{tag}-{n:04d}" for n in range(args.jobs)]
    batches = [txns[i:i + MAX_BATCH] for i in range(0, len(txns), MAX_BATCH)]
    headers = {"Host": f"{TENANT}.{BASE_DOMAIN}", "Authorization": f"Bearer {token}"}
    uploads = [json.dumps({"transactions": [{"type": "sale", "client_txn_id": t, "payload": sale_payload(item, rate)}
                                            for t in chunk]}, separators=(",", ":")).encode() for chunk in batches]
    batch_ids: list[str] = []
    before = cpu.snapshot()
    t_send = time.time()
    t0 = None
    for body in uploads:
        r = http.post("/sync/batch", content=body, headers={**headers, "Content-Type": "application/json"})
        if r.status_code != 202:
            raise BenchError(f"/sync/batch -> {r.status_code}: {r.text[:500]}")
        t0 = t0 or time.time()  # the first 202: the jobs are stored, the worker may start
        batch_ids.append(r.json()["batch_uuid"])
    assert t0 is not None
    upload_s = t0 - t_send
    db = sqlite3.connect(f"file:{queue_db}?mode=ro", uri=True, timeout=30, isolation_level=None)
    marks = ",".join("?" * len(batch_ids))
    deadline = time.monotonic() + args.timeout
    try:
        while db.execute(f"SELECT count(*) FROM sync_jobs WHERE batch_uuid IN ({marks}) AND status IN "
                         "('pending', 'retrying')", batch_ids).fetchone()[0]:
            if not worker.alive():
                raise BenchError(f"the worker exited {worker.proc.returncode}: {worker.stderr_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"not drained within {args.timeout:g} s")
            time.sleep(STORE_POLL)
        used = Cpu.per_invoice(before, cpu.snapshot(), args.jobs)
        last = db.execute(f"SELECT max(updated_at) FROM sync_jobs WHERE batch_uuid IN ({marks})", batch_ids).fetchone()[0]
    finally:
        db.close()
    seconds = float(last) - t0
    done = {b: http.get(f"/sync/status/{b}", headers=headers).json() for b in batch_ids}
    jobs = [j for st in done.values() for j in st["jobs"]]
    synced = [j for j in jobs if j["status"] == "synced"]
    count, distinct, by_ref = site.held(f"{device}/{tag}-")
    run = Run(label, "pos-edge", args.jobs, seconds, len(synced) / seconds, upload_s=upload_s,
              retried=sum(1 for j in jobs if j["attempts"] > 1), erpnext_invoices=count,
              erpnext_distinct_references=distinct, cpu_ms_per_invoice=used)
    if any(st["status"] != "synced" for st in done.values()):
        run.problems.append(f"batch status {[st['status'] for st in done.values()]}")
    if len(synced) != args.jobs:
        failed = [f"{j['client_txn_id']}: {j['last_error']}" for j in jobs if j["status"] != "synced"][:5]
        run.problems.append(f"{len(synced)} of {args.jobs} jobs synced; {failed}")
    if len({j["invoice_id"] for j in synced}) != len(synced):
        run.problems.append("two jobs answered with one invoice")
    if count != args.jobs or distinct != args.jobs:
        run.problems.append(f"ERPNext holds {count} invoices ({distinct} distinct references), expected {args.jobs}")
    wrong = [j["client_txn_id"] for j in synced if by_ref.get(f"{device}/{j['client_txn_id']}") != j["invoice_id"]]
    if wrong:
        run.problems.append(f"{len(wrong)} jobs name an invoice that is not the one with their reference: {wrong[:3]}")
    run.ok = not run.problems
    return run


# --------------------------------------------------------------------------- same documents?

IGNORED = {"name", "owner", "creation", "modified", "modified_by", "posting_date", "posting_time", "due_date",
           "parent", REFERENCE_FIELD, "_server_messages", "po_date",
           "actual_qty"}  # the stock left when each was booked


def diff_docs(a: dict[str, Any], b: dict[str, Any], path: str = "") -> list[str]:
    """Where two stored invoices differ, beyond names, timestamps and the reference."""
    out = []
    for key in sorted(set(a) | set(b)):
        if key in IGNORED:
            continue
        va, vb = a.get(key), b.get(key)
        if isinstance(va, list) and isinstance(vb, list) and len(va) == len(vb):
            for i, (x, y) in enumerate(zip(va, vb, strict=True)):
                if isinstance(x, dict) and isinstance(y, dict):
                    out += diff_docs(x, y, f"{path}{key}[{i}].")
                elif x != y:
                    out.append(f"{path}{key}[{i}]: {x!r} != {y!r}")
        elif va != vb:
            out.append(f"{path}{key}: {va!r} != {vb!r}")
    return out


# --------------------------------------------------------------------------- main


def read_keys(path: str) -> dict[str, str]:
    out = {}
    try:
        for line in Path(path).read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                k, v = line.split("=", 1)
                out[k.strip()] = v.strip()
    except OSError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=os.environ.get("POS_EDGE_REAL_ERPNEXT_URL", "http://127.0.0.1:8100"))
    p.add_argument("--site", default=os.environ.get("POS_EDGE_REAL_ERPNEXT_SITE", "pos.localhost"))
    p.add_argument("--keys-file", default="/root/erp/keys.env",
                   help="API_KEY=/API_SECRET= lines, used when POS_EDGE_REAL_ERPNEXT_KEY/_SECRET are not set")
    p.add_argument("--jobs", type=int, default=500, help="sales per run (default 500)")
    p.add_argument("--rounds", type=int, default=2, help="(b, a) pairs, run alternately (default 2)")
    p.add_argument("--concurrency", type=int, default=4,
                   help="direct clients, and gateway.sync.tenant_concurrency (default 4, pos-edge's default)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds a drain may take (default 900)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep-tmp", action="store_true")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    keys = read_keys(args.keys_file)
    key = os.environ.get("POS_EDGE_REAL_ERPNEXT_KEY") or keys.get("API_KEY")
    secret = os.environ.get("POS_EDGE_REAL_ERPNEXT_SECRET") or keys.get("API_SECRET")
    if not key or not secret:
        p.error("set POS_EDGE_REAL_ERPNEXT_KEY and POS_EDGE_REAL_ERPNEXT_SECRET (or --keys-file)")
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-real-drain-"))
    children: list[Child] = []
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    http = None
    runs: list[Run] = []
    try:
        import httpx

        site = Site(args.url, args.site, key, secret)
        site.get("/api/method/frappe.auth.get_logged_user")
        need = 2 * args.rounds * args.jobs
        stock = {item: site.stock(item) for item in ITEMS}
        item = next((i for i in ITEMS if stock[i] >= need * 1.05), None)
        update_stock = item is not None
        if item is None:
            item = next(iter(ITEMS))
        rate = ITEMS[item]
        stock_note = (f"{item} x1 at {rate} UGX, update_stock 1 (stock {stock[item]:,.0f} >= {need:,} needed)"
                      if update_stock else
                      f"{item} x1 at {rate} UGX, update_stock 0: stock short ({stock} < {need:,} needed)")
        print(f"site {args.url} ({args.site}); {stock_note}")

        cfg_path = write_config(tmp, site, update_stock, args.concurrency)
        port = free_port()
        serve = Child("serve", [POS_EDGE, "serve", "--config", str(cfg_path), "--host", "127.0.0.1", "--port", str(port),
                                "--grace", "5"], tmp)
        children.append(serve)
        base = f"http://127.0.0.1:{port}"
        wait_http(serve, base + "/healthz")
        worker = Child("worker", [POS_EDGE, "worker", "--config", str(cfg_path), "--grace", "30"], tmp)
        children.append(worker)
        http = httpx.Client(base_url=base, timeout=120)
        deadline = time.monotonic() + 30
        while (http.get("/readyz").json().get("reference_fields") or {}).get(TENANT) != "ok":
            if time.monotonic() > deadline:
                raise BenchError(f"{REFERENCE_FIELD} is not a unique field of Sales Invoice on the site: "
                                 f"{http.get('/readyz').text}")
            time.sleep(0.1)
        while "sync_worker_started" not in worker.stdout_path.read_text(errors="replace"):
            if not worker.alive() or time.monotonic() > deadline:
                raise BenchError(f"the worker did not start: {worker.stderr_tail()}")
            time.sleep(0.1)
        time.sleep(1.0)  # its start-up look at ERPNext (reference field, site settings) done
        device = f"drain-{uuid.uuid4().hex[:6]}"
        r = http.post("/gateway/device/register", headers={"Host": f"{TENANT}.{BASE_DOMAIN}"},
                      json={"device_id": device, "device_name": "Drain bench till", "tenant_subdomain": TENANT,
                            "branch_id": "main"})
        if r.status_code != 201:
            raise BenchError(f"register -> {r.status_code}: {r.text}")
        token = r.json()["token"]
        roots = erpnext_roots()
        cpu = Cpu(roots, serve.pid, worker.pid)
        print(f"pos-edge serve {base} (pid {serve.pid}, in_process_workers false) + pos-edge worker (pid {worker.pid}); "
              f"store sqlite; tenant_concurrency {args.concurrency}; direct clients {args.concurrency}; "
              f"{args.jobs} sales per run; device {device}")
        run_id = time.strftime("%H%M%S")
        compared = False
        for n in range(1, args.rounds + 1):
            for kind in ("b", "a"):
                tag = f"{run_id}{kind}{n}"
                if kind == "b":
                    run = run_direct(f"b{n}", site, cfg_path, device, tag, args, item, rate, cpu)
                else:
                    run = run_gateway(f"a{n}", site, http, token, device, tag, args, item, rate, worker,
                                      tmp / "queue.db", cpu)
                runs.append(run)
                extra = (f"upload {run.upload_s:.2f} s, {run.retried} jobs retried" if kind == "a"
                         else f"answers {run.answers}")
                extra += "; CPU ms/invoice " + ", ".join(f"{k} {v:g}" for k, v in run.cpu_ms_per_invoice.items())
                print(f"  ({kind}) {run.label} {run.kind:8} {run.jobs} invoices in {run.seconds:7.2f} s = "
                      f"{run.per_s:6.2f} invoices/s  [{extra}; ERPNext holds {run.erpnext_invoices} "
                      f"({run.erpnext_distinct_references} distinct references)]"
                      + ("" if run.ok else "  PROBLEMS: " + "; ".join(run.problems)))
                if kind == "a" and not compared and run.ok:
                    compared = True
                    _, _, ref_a = site.held(f"{device}/{run_id}a{n}-0000")
                    _, _, ref_b = site.held(f"{device}/{run_id}b{n}-0000")
                    da, db = site.doc("Sales Invoice", next(iter(ref_a.values()))), site.doc(
                        "Sales Invoice", next(iter(ref_b.values())))
                    diffs = diff_docs(da, db)
                    print(f"  stored documents of (a) {da['name']} and (b) {db['name']}: "
                          + ("identical but for names, timestamps and the reference" if not diffs
                             else f"DIFFER: {diffs[:8]}"))
                    if diffs:
                        run.ok = False
                        run.problems.append(f"documents differ: {diffs[:8]}")

        print()
        print(f"real ERPNext drain, {args.jobs} Sales Invoices per run, {args.concurrency} concurrent inserts "
              f"(python {platform.python_version()}, nproc {os.cpu_count()}, nothing pinned)")
        print(f"  ERPNext processes measured for CPU: {len(roots)} roots (gunicorn master + workers, MariaDB)")
        print(f"  {'run':4} {'path':9} {'wall s':>8} {'invoices/s':>10}   CPU ms per invoice: ERPNext | pos-edge serve "
              "+ worker | bench")
        for r_ in runs:
            c = r_.cpu_ms_per_invoice
            print(f"  {r_.label:4} {r_.kind:9} {r_.seconds:8.2f} {r_.per_s:10.2f}   "
                  f"{c.get('erpnext', 0):7.1f} | {c.get('serve', 0):5.2f} + {c.get('worker', 0):5.2f} | "
                  f"{c.get('bench', 0):5.2f}")
        for n in range(1, args.rounds + 1):
            a_ = next(x for x in runs if x.label == f"a{n}")
            b_ = next(x for x in runs if x.label == f"b{n}")
            print(f"  ratio a{n}/b{n} = {a_.per_s / b_.per_s:.3f}")
        ma = statistics.mean(x.per_s for x in runs if x.kind == "pos-edge")
        mb = statistics.mean(x.per_s for x in runs if x.kind == "direct")
        print(f"  mean (a) {ma:.2f} / mean (b) {mb:.2f} invoices/s = {ma / mb:.3f}")
        ok = all(x.ok for x in runs)
        print("verified: every insert 200 / every job synced; ERPNext holds exactly one invoice per reference"
              if ok else "FAILED: " + "; ".join(f"{x.label}: {x.problems}" for x in runs if not x.ok))
        if args.json:
            print(json.dumps({"stock": stock_note, "runs": [asdict(x) for x in runs]}, indent=2))
        return 0 if ok else 1
    except BenchError as exc:
        print(f"\nbenchmark invalid: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        if http is not None:
            http.close()
        for child in reversed(children):
            try:
                child.stop(grace=30)
            except Exception as exc:
                print(f"stopping {child.name}: {exc!r}", file=sys.stderr)
        signal.signal(signal.SIGTERM, previous_term)
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
