"""Benchmark: master data for tills (issue 12) against the ERPNext stand-in.

NOT a test. One run starts the stand-in on core 1 with one site holding `--items`
sales items, each with a Standard Selling price, then `pos-edge serve` on core 0
(SQLite store, the default), and measures:

1. The first `/v1/init` of a catalogue never loaded (the gateway fills its store from
   ERPNext): time until it answers, the ERPNext list calls it took, and reading the whole
   catalogue through `next` links (every item once, checked), with the gateway's peak RSS.
2. Cached `/v1/products` first pages per second, vs. the same page fetched from the
   stand-in directly (`GET /api/resource/Item?...&limit_page_length=500`), same client,
   same concurrency, in one run: the ratio says what the cache saves ERPNext and tills.
3. `--streams` concurrent `/v1/events` connections on the one process: the gateway's
   memory per connection, and, after one item is added in ERPNext, the time for its
   `products.changed` to reach every stream (p50/p99/max), counted from the insert
   (this includes waiting for the next refresh: `masterdata.freshness` is 1 s here).

    .venv/bin/python bench/masterdata.py [--items 20000] [--streams 2000] [--seconds 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
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

SITE = "shop1.md.bench"
PROFILE = "Shop One Main"
HOST = "shop1.md.bench"
KEY, SECRET = "key-b", "secret-b"


def serve_standin(port: int, items: int) -> None:
    """The stand-in with `items` items and prices, plus /__bench/stats and /__bench/touch."""
    import uvicorn

    from edge.standin import StandIn, StandInSite, build_app, seed_pos

    site = StandInSite(SITE, users={KEY: (SECRET, "api@bench")})
    seed_pos(site, "Shop One Ltd", suffix="S1", pos_profile=PROFILE, invoice_doctype="Sales Invoice", items=())
    for i in range(items):
        code = f"ITEM-{i:06d}"
        site.insert("Item", {"name": code, "item_code": code, "item_name": f"Item number {i}", "item_group": "Products",
                             "stock_uom": "Nos", "disabled": 0, "is_sales_item": 1, "has_variants": 0})
        site.insert("Item Price", {"name": f"ip-{i:06d}", "item_code": code, "price_list": "Standard Selling",
                                   "price_list_rate": 1 + i % 500, "currency": "GHS", "uom": "Nos", "selling": 1})
    standin = StandIn([site])
    standin.requests = collections.deque(maxlen=64)  # type: ignore[assignment]
    inner = build_app(standin)
    counts: collections.Counter[str] = collections.Counter()
    touched: list[float] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/__bench/"):
            if path == "/__bench/touch":
                code = f"NEW-{len(touched):04d}"
                touched.append(time.time())
                site.insert("Item", {"name": code, "item_code": code, "item_name": "New", "item_group": "Products",
                                     "stock_uom": "Nos", "disabled": 0, "is_sales_item": 1, "has_variants": 0})
            body = json.dumps({"requests": dict(counts), "touched": touched}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            counts[path.split("/api/resource/")[-1]] += 1
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def tenants_yaml(tmp: Path, port: int) -> Path:
    path = tmp / "tenants.yaml"
    path.write_text(f"""\
gateway:
  base_domains: [md.bench]
  store: sqlite:///{tmp}/bench.db
  jwt: {{secret: {JWT_SECRET}}}
  metrics: {{listen: null}}
  server: {{max_connections: 4096}}
tenants:
  shop1:
    name: Bench Shop
    erpnext: {{url: "http://127.0.0.1:{port}", site_name: {SITE}, api_key: {KEY}, api_secret: {SECRET}, timeout: 60}}
    company: Shop One Ltd
    default_customer: Walk-in Customer
    payment_methods: {{cash: Cash}}
    branches: {{main: {{pos_profile: {PROFILE}, warehouse: Stores - S1, price_list: Standard Selling}}}}
    rate_limit: 10000000/minute
    masterdata: {{freshness: 1, refresh_wait: 60, page_size: 500}}
""")
    return path


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, VmHWM), kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def rate(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> tuple[float, int]:
    """Requests per second over `seconds` with `concurrency` clients on keep-alive connections."""
    import httpx

    done = 0
    size = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def worker() -> None:
            nonlocal done, size
            while time.perf_counter() < deadline:
                r = await client.get(url, headers=headers)
                if r.status_code != 200:
                    raise BenchError(f"{url} -> {r.status_code}: {r.text[:200]}")
                size = len(r.content)
                done += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - t0), size


async def streams(base: str, headers: dict[str, str], count: int, touch: str, edge_pid: int) -> dict[str, Any]:
    """Open `count` event streams, add an item in ERPNext, time its event's arrival on each."""
    import httpx

    before = rss_kb(edge_pid)
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=0)
    arrivals: list[float] = []
    opened = 0
    ready = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=httpx.Timeout(120, read=None)) as client:
        async def one() -> None:
            try:
                await _one()
            except httpx.HTTPError as exc:
                raise BenchError(f"an event stream failed: {exc!r} ({len(arrivals)} events arrived)") from None

        async def _one() -> None:
            nonlocal opened
            async with client.stream("GET", "/v1/events", headers=headers) as r:
                if r.status_code != 200:
                    raise BenchError(f"/v1/events -> {r.status_code}")
                opened += 1
                if opened == count:
                    ready.set()
                async for line in r.aiter_lines():
                    if line == "event: products.changed":
                        arrivals.append(time.time())
                        return

        tasks = [asyncio.create_task(one()) for _ in range(count)]
        try:
            await asyncio.wait_for(ready.wait(), 120)
        except TimeoutError:
            raise BenchError(f"only {opened} of {count} streams opened") from None
        await asyncio.sleep(3)  # every stream is reading the feed
        held = rss_kb(edge_pid)
        stats = (await client.get(touch)).json()
        t0 = stats["touched"][-1]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        except TimeoutError:
            raise BenchError(f"the event reached {len(arrivals)} of {count} streams within 60 s") from None
    delays = sorted(a - t0 for a in arrivals)
    return {"streams": count, "rss_before_kb": before, "rss_with_streams_kb": held,
            "kb_per_stream": round((held - before) / count, 1),
            "event_p50_ms": round(1000 * statistics.median(delays), 1),
            "event_p99_ms": round(1000 * delays[int(0.99 * (len(delays) - 1))], 1),
            "event_max_ms": round(1000 * delays[-1], 1),
            "fanout_spread_ms": round(1000 * (delays[-1] - delays[0]), 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=20000)
    p.add_argument("--streams", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each request-rate measurement")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--json", action="store_true")
    p.add_argument("--serve-standin", nargs=2, type=int, metavar=("PORT", "ITEMS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_standin:
        serve_standin(*args.serve_standin)
        return 0
    import httpx

    use_taskset = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-masterdata-"))
    children: list[Child] = []
    result: dict[str, Any] = {"items": args.items}
    try:
        sport = free_port()
        standin = Child("standin", pinned(LOAD_CORE, [PYTHON, str(Path(__file__).resolve()), "--serve-standin",
                                                      str(sport), str(args.items)], use_taskset), tmp)
        children.append(standin)
        erp = f"http://127.0.0.1:{sport}"
        wait_http(standin, erp + "/__bench/stats", timeout=600)
        port = free_port()
        edge = Child("pos-edge", pinned(SUT_CORE, [POS_EDGE, "serve", "--config", str(tenants_yaml(tmp, sport)),
                                                    "--port", str(port)], use_taskset), tmp)
        children.append(edge)
        base = f"http://127.0.0.1:{port}"
        wait_http(edge, base + "/healthz")
        reg = httpx.post(base + "/gateway/device/register", headers={"Host": HOST}, timeout=30, json={
            "device_id": "bench-till", "device_name": "Bench", "tenant_subdomain": "shop1", "branch_id": "main"})
        if reg.status_code != 201:
            raise BenchError(f"register -> {reg.status_code}: {reg.text}")
        auth = {"Host": HOST, "Authorization": f"Bearer {reg.json()['token']}"}
        idle_rss = rss_kb(edge.pid)

        # 1. the first init: the store is filled from ERPNext
        calls0 = httpx.get(erp + "/__bench/stats").json()["requests"]
        t0 = time.perf_counter()
        while True:
            r = httpx.get(base + "/v1/init", headers=auth, timeout=120)
            if r.status_code == 200:
                break
            if time.perf_counter() - t0 > 600:
                raise BenchError(f"/v1/init -> {r.status_code}: {r.text[:300]}")
            time.sleep(0.2)
        fill_s = time.perf_counter() - t0
        calls1 = httpx.get(erp + "/__bench/stats").json()["requests"]
        t1 = time.perf_counter()
        seen: set[str] = set()
        pages = 0
        url: str | None = "/v1/products?limit=500"
        while url:
            body = httpx.get(base + url, headers=auth, timeout=60).json()
            pages += 1
            for row in body["items"]:
                if row["item_code"] in seen:
                    raise BenchError(f"{row['item_code']} came twice")
                seen.add(row["item_code"])
            url = body["next"]
        read_s = time.perf_counter() - t1
        if len(seen) != args.items:
            raise BenchError(f"{len(seen)} items read, {args.items} in ERPNext")
        result["init"] = {
            "first_init_s": round(fill_s, 2), "erpnext_calls": {k: calls1.get(k, 0) - calls0.get(k, 0) for k in calls1},
            "catalogue_read_s": round(read_s, 2), "pages": pages, "init_bytes": len(r.content),
            "rss_idle_kb": idle_rss, "rss_after_kb": rss_kb(edge.pid), "rss_peak_kb": rss_kb(edge.pid, "VmHWM")}

        # 2. cached pages vs. the same page from ERPNext directly
        fields = json.dumps(["name", "item_name", "item_group", "stock_uom", "variant_of", "disabled", "is_sales_item",
                             "has_variants", "modified"])
        direct = (f"{erp}/api/resource/Item?fields={fields}&order_by=modified%20asc,%20name%20asc"
                  f"&limit_page_length=500")
        calls2 = sum(httpx.get(erp + "/__bench/stats").json()["requests"].values())
        gw_rate, gw_size = asyncio.run(rate(base + "/v1/products?limit=500", auth, args.seconds, args.concurrency))
        calls3 = sum(httpx.get(erp + "/__bench/stats").json()["requests"].values())
        erp_rate, erp_size = asyncio.run(rate(direct, {"Host": SITE, "Authorization": f"token {KEY}:{SECRET}"},
                                              args.seconds, args.concurrency))
        result["pages"] = {"gateway_per_s": round(gw_rate, 1), "gateway_bytes": gw_size,
                           "erpnext_direct_per_s": round(erp_rate, 1), "erpnext_bytes": erp_size,
                           "ratio": round(gw_rate / erp_rate, 2), "erpnext_calls_during_gateway_run": calls3 - calls2}

        # 3. event streams
        result["events"] = asyncio.run(streams(base, auth, args.streams, erp + "/__bench/touch", edge.pid))
    except BenchError as exc:
        print(f"benchmark invalid: {exc}", file=sys.stderr)
        for child in children:
            print(f"--- {child.name} stderr/stdout tail:\n{child.stderr_tail(15)}", file=sys.stderr)
            lines = child.stdout_path.read_text(errors="replace").splitlines()
            print("\n".join([ln for ln in lines if '"level":"error"' in ln or '"level":"warning"' in ln][:5]
                            or lines[-5:]), file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    i, pg, ev = result["init"], result["pages"], result["events"]
    print(f"catalogue of {args.items} items with prices (SQLite store, stand-in on its own core)")
    print(f"  first /v1/init (store filled from ERPNext): {i['first_init_s']} s, ERPNext calls {i['erpnext_calls']}")
    print(f"  whole catalogue through next links: {i['pages']} pages in {i['catalogue_read_s']} s, every item once")
    print(f"  gateway RSS: idle {i['rss_idle_kb'] // 1024} MB, after {i['rss_after_kb'] // 1024} MB, "
          f"peak {i['rss_peak_kb'] // 1024} MB")
    print(f"  cached /v1/products page of 500: {pg['gateway_per_s']}/s vs ERPNext's own list {pg['erpnext_direct_per_s']}/s "
          f"= {pg['ratio']} x (ERPNext calls meanwhile: {pg['erpnext_calls_during_gateway_run']})")
    print(f"  {ev['streams']} event streams on one process: {ev['kb_per_stream']} kB each; an item added in ERPNext "
          f"reached them in p50 {ev['event_p50_ms']} ms, p99 {ev['event_p99_ms']} ms, max {ev['event_max_ms']} ms "
          f"(spread {ev['fanout_spread_ms']} ms; includes waiting for the 1 s refresh)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
