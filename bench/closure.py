"""Benchmark: how long a till's end-of-day closure takes as the day's invoices grow.

NOT a test. One run starts the ERPNext stand-in in its own process, on core 1, with
one site holding `--invoices` submitted POS Sales Invoices of one POS Profile on
one day (each paid in one or two methods, some with change), then `pos-edge
serve` on core 0, and times `POST /v1/closure` for that day, `--repeat` times
(each with a new client_txn_id, so nothing is replayed). It prints the wall time
of each closure, the ERPNext calls it made (counted by the stand-in), and checks
the totals against the ones the stand-in's documents add up to.

    .venv/bin/python bench/closure.py [--invoices 5000] [--repeat 3] [--json]

The target (issue 10): a 5,000-invoice closure in under 2 s against the stand-in.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from proxy import (  # bench/proxy.py: process helpers shared by the benchmarks
    JWT_SECRET,
    LOAD_CORE,
    POS_EDGE,
    PYTHON,
    SUT_CORE,
    BenchError,
    Child,
    free_port,
    pinned,
    wait_http,
)

SITE = "shop1.closure.bench"
DAY = "2026-11-20"
PROFILE = "Shop One Main"


def serve_standin(port: int, invoices: int) -> None:
    """The stand-in with `invoices` submitted POS Sales Invoices on DAY, plus /__bench/stats."""
    import uvicorn

    from edge.standin import StandIn, StandInSite, build_app, seed_pos

    site = StandInSite(SITE, users={"key-b": ("secret-b", "api@bench")})
    seed_pos(site, "Shop One Ltd", suffix="S1", pos_profile=PROFILE, invoice_doctype="Sales Invoice")
    rng = random.Random(7)
    totals: dict[str, float] = collections.defaultdict(float)
    grand = 0.0
    for i in range(invoices):
        amount = round(rng.uniform(1, 200), 2)
        change = round(rng.choice([0, 0, 0.5, 1.25]), 2)
        if rng.random() < 0.3:  # split payment
            cash = round(amount / 2 + change, 2)
            payments = [("Cash", cash), ("Mobile Money", round(amount - cash + change, 2))]
        else:
            payments = [("Cash", round(amount + change, 2))]
        minute = i * 600 // max(invoices, 1)  # spread over 10 hours of the day
        site.insert("Sales Invoice", {
            "name": f"ACC-SINV-B-{i:06d}", "customer": "Walk-in Customer", "company": "Shop One Ltd", "is_pos": 1,
            "pos_profile": PROFILE, "docstatus": 1, "status": "Paid", "posting_date": DAY,
            "posting_time": f"{8 + minute // 60}:{minute % 60:02d}:00", "grand_total": amount, "net_total": amount,
            "total_qty": 1, "change_amount": change,
            "payments": [{"name": f"p{i}-{k}", "idx": k + 1, "mode_of_payment": mop, "amount": amt,
                          "parent": f"ACC-SINV-B-{i:06d}", "parentfield": "payments", "parenttype": "Sales Invoice",
                          "doctype": "Sales Invoice Payment"} for k, (mop, amt) in enumerate(payments)],
        })
        grand += amount
        left = change
        for mop, amt in payments:
            if mop == "Cash" and left:
                amt, left = amt - left, 0
            totals[mop] += amt
    standin = StandIn([site])
    standin.requests = collections.deque(maxlen=64)  # type: ignore[assignment]
    inner = build_app(standin)
    counts: collections.Counter[str] = collections.Counter()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/__bench/stats":
            body = json.dumps({"requests": dict(counts), "grand_total": grand, "by_mode": totals}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            counts[f"{scope['method']} {scope['path'].split('/')[3] if scope['path'].count('/') > 2 else scope['path']}"] += 1
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def tenants_yaml(tmp: Path, port: int) -> Path:
    path = tmp / "tenants.yaml"
    path.write_text(f"""\
gateway:
  base_domains: [closure.bench]
  store: sqlite:///{tmp}/bench.db
  jwt: {{secret: {JWT_SECRET}}}
  metrics: {{listen: null}}
tenants:
  shop1:
    name: Bench Shop
    erpnext: {{url: "http://127.0.0.1:{port}", site_name: {SITE}, api_key: key-b, api_secret: secret-b, timeout: 60}}
    company: Shop One Ltd
    default_customer: Walk-in Customer
    payment_methods: {{cash: Cash, momo: Mobile Money}}
    branches: {{main: {{pos_profile: {PROFILE}, warehouse: Stores - S1}}}}
    rate_limit: 100000/minute
""")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--invoices", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve-standin", nargs=2, type=int, metavar=("PORT", "INVOICES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_standin:
        serve_standin(*args.serve_standin)
        return 0
    import httpx

    use_taskset = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-closure-"))
    children: list[Child] = []
    try:
        sport = free_port()
        standin = Child("standin", pinned(LOAD_CORE, [PYTHON, str(Path(__file__).resolve()), "--serve-standin",
                                                      str(sport), str(args.invoices)], use_taskset), tmp)
        children.append(standin)
        wait_http(standin, f"http://127.0.0.1:{sport}/__bench/stats", timeout=300)
        port = free_port()
        edge = Child("pos-edge", pinned(SUT_CORE, [POS_EDGE, "serve", "--config", str(tenants_yaml(tmp, sport)),
                                                    "--port", str(port)], use_taskset), tmp)
        children.append(edge)
        base = f"http://127.0.0.1:{port}"
        wait_http(edge, base + "/healthz")
        host = {"Host": "shop1.closure.bench"}
        reg = httpx.post(base + "/gateway/device/register", headers=host, timeout=30, json={
            "device_id": "bench-till", "device_name": "Bench", "tenant_subdomain": "shop1", "branch_id": "main"})
        if reg.status_code != 201:
            raise BenchError(f"register -> {reg.status_code}: {reg.text}")
        auth = {**host, "Authorization": f"Bearer {reg.json()['token']}"}
        expected = httpx.get(f"http://127.0.0.1:{sport}/__bench/stats").json()
        times, calls = [], []
        for i in range(args.repeat):
            before = sum(httpx.get(f"http://127.0.0.1:{sport}/__bench/stats").json()["requests"].values())
            body = {"till_id": "t1", "client_txn_id": f"close-{i}-{time.time_ns()}", "period_start": f"{DAY}T00:00:00",
                    "period_end": f"{DAY}T23:59:59", "balances": [{"method": "cash", "closing_amount": "0"},
                                                                  {"method": "momo", "closing_amount": "0"}]}
            t0 = time.perf_counter()
            r = httpx.post(base + "/v1/closure", headers=auth, json=body, timeout=300)
            times.append(time.perf_counter() - t0)
            if r.status_code != 201:
                raise BenchError(f"closure -> {r.status_code}: {r.text[:500]}")
            out = r.json()
            after = sum(httpx.get(f"http://127.0.0.1:{sport}/__bench/stats").json()["requests"].values())
            calls.append(after - before)
            if out["invoice_count"] != args.invoices or abs(out["grand_total"] - expected["grand_total"]) > 0.01:
                raise BenchError(f"wrong totals: {out['invoice_count']} invoices, {out['grand_total']}")
            for m in out["methods"]:
                want = Decimal(str(expected["by_mode"][m["mode_of_payment"]]))
                if abs(Decimal(str(m["erpnext_amount"])) - want) > Decimal("0.05"):
                    raise BenchError(f"{m['mode_of_payment']}: {m['erpnext_amount']} != {want}")
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
    result = {"invoices": args.invoices, "seconds": [round(t, 3) for t in times], "median_s": round(statistics.median(times), 3),
              "erpnext_calls": calls}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"closure of {args.invoices} invoices: {', '.join(f'{t:.2f} s' for t in times)} "
              f"(median {result['median_s']:.2f} s), ERPNext calls per closure: {calls}; totals checked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
