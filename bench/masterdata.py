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
   `products.changed` to reach every stream (p50/p99/max), counted from the insert.
   `--push webhook` (the default): `pos-edge erpnext setup` made the tenant's Webhooks
   and `masterdata.freshness` is an hour, so the ERPNext Webhook is what brings the
   change; `--push poll`: no Webhooks, freshness 1 s (the time includes waiting for
   the next refresh).

`--real` runs the same against the real ERPNext named by POS_EDGE_REAL_ERPNEXT_URL,
_SITE, _KEY and _SECRET (tests/real_erpnext's variables; the masters of
../shared/real-erpnext, an RQ worker for Webhooks) instead of the stand-in: the
catalogue is the site's own sales items (`--items` is ignored), ERPNext's calls are
not counted, and the Webhooks and items it made are deleted afterwards.

    .venv/bin/python bench/masterdata.py [--items 20000] [--streams 2000] [--seconds 5] [--push webhook|poll]
                                         [--real] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import subprocess
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
    cpu_seconds,
    free_port,
    pinned,
    wait_http,
)

SITE = "shop1.md.bench"
PROFILE = "Shop One Main"
HOST = "shop1.md.bench"
KEY, SECRET = "key-b", "secret-b"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
REAL_ENV = ("POS_EDGE_REAL_ERPNEXT_URL", "POS_EDGE_REAL_ERPNEXT_SITE", "POS_EDGE_REAL_ERPNEXT_KEY",
            "POS_EDGE_REAL_ERPNEXT_SECRET")
ITEM_FIELDS = ["name", "item_name", "item_group", "stock_uom", "variant_of", "disabled", "is_sales_item",
               "has_variants", "modified"]


class Upstream:
    """The ERPNext the gateway is in front of: the stand-in (counted, touched through
    /__bench/) or a real site (`--real`)."""

    def __init__(self, url: str, site: str, key: str, secret: str, real: bool) -> None:
        self.url, self.site, self.key, self.secret, self.real = url, site, key, secret, real
        self.made: list[str] = []

    def headers(self) -> dict[str, str]:
        return {"Host": self.site, "Authorization": f"token {self.key}:{self.secret}"}

    def calls(self) -> dict[str, int] | None:
        """ERPNext requests so far, by doctype (None: a real site does not say)."""
        import httpx

        if self.real:
            return None
        return dict(httpx.get(self.url + "/__bench/stats").json()["requests"])

    def items(self, wanted: int) -> int:
        """Sales items a till gets."""
        import httpx

        if not self.real:
            return wanted
        r = httpx.get(self.url + "/api/method/frappe.client.get_count", headers=self.headers(), timeout=60, params={
            "doctype": "Item", "filters": json.dumps([["disabled", "=", 0], ["is_sales_item", "=", 1],
                                                      ["has_variants", "=", 0]])})
        return int(r.json()["message"])

    async def touch(self, client: Any) -> float:
        """Add an item in ERPNext; the moment it was asked for."""
        if not self.real:
            return float((await client.get(self.url + "/__bench/touch")).json()["touched"][-1])
        code = f"BENCH-{time.strftime('%H%M%S')}-{len(self.made)}"
        t0 = time.time()
        r = await client.post(self.url + "/api/resource/Item", headers=self.headers(), json={
            "item_code": code, "item_name": "Bench", "item_group": "Products", "stock_uom": "Nos", "is_stock_item": 0})
        if r.status_code != 200:
            raise BenchError(f"adding an item -> {r.status_code}: {r.text[:200]}")
        self.made.append(code)
        return t0

    def clean(self) -> None:
        """Delete what the run made on a real site (its Webhooks, its items)."""
        import httpx

        if not self.real:
            return
        with httpx.Client(base_url=self.url, headers=self.headers(), timeout=60) as c:
            hooks = c.get("/api/resource/Webhook", params={"filters": json.dumps([["name", "like", "pos-edge shop1 %"]]),
                                                            "limit_page_length": "0"}).json().get("data", [])
            for row in hooks:
                c.delete(f"/api/resource/Webhook/{row['name']}")
            for code in self.made:
                c.delete(f"/api/resource/Item/{code}")


def serve_standin(port: int, items: int) -> None:
    """The stand-in with `items` items and prices, plus /__bench/stats and /__bench/touch."""
    import uvicorn

    from edge.standin import StandIn, StandInSite, build_app, seed_pos
    from edge.standin.webhooks import events_of

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
                doc = site.insert("Item", {"name": code, "item_code": code, "item_name": "New", "item_group": "Products",
                                           "stock_uom": "Nos", "disabled": 0, "is_sales_item": 1, "has_variants": 0})
                standin.webhooks.fire(site, "Item", doc, events_of("POST"))  # as a REST insert does
            body = json.dumps({"requests": dict(counts), "touched": touched}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http":
            counts[path.split("/api/resource/")[-1]] += 1
        await inner(scope, receive, send)

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")


def tenants_yaml(tmp: Path, up: Upstream, gw_port: int, push: str) -> Path:
    path = tmp / "tenants.yaml"
    hooks = push == "webhook"
    path.write_text(f"""\
gateway:
  base_domains: [md.bench]
  store: sqlite:///{tmp}/bench.db
  jwt: {{secret: {JWT_SECRET}}}
  metrics: {{listen: null}}
  server: {{max_connections: 4096}}
  public_url: http://127.0.0.1:{gw_port}
tenants:
  shop1:
    name: Bench Shop
    erpnext: {{url: "{up.url}", site_name: {up.site}, api_key: {up.key}, api_secret: {up.secret}, timeout: 60
              {f", webhook_secret: {WEBHOOK_SECRET}" if hooks else ""}}}
    company: Shop One Ltd
    default_customer: Walk-in Customer
    payment_methods: {{cash: Cash}}
    branches: {{main: {{pos_profile: {PROFILE}, warehouse: Stores - S1, price_list: Standard Selling}}}}
    rate_limit: 10000000/minute
    masterdata: {{freshness: {3600 if hooks else 1}, refresh_wait: 60, page_size: 500}}
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


async def streams(base: str, headers: dict[str, str], count: int, up: Upstream, edge_pid: int) -> dict[str, Any]:
    """Open `count` event streams, add an item in ERPNext, time its event's arrival on each.
    The streams are read on raw sockets, looking for the event's bytes: an HTTP client
    parsing 2,000 streams in one Python process would measure itself, not the gateway."""
    import httpx

    host, port = base.removeprefix("http://").split(":")
    request = (f"GET /v1/events HTTP/1.1\r\nHost: {headers['Host']}\r\nAuthorization: {headers['Authorization']}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    marker = b"event: products.changed"
    before = rss_kb(edge_pid)
    arrivals: list[float] = []
    opened = 0
    ready = asyncio.Event()

    async def one() -> None:
        nonlocal opened
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise BenchError(f"/v1/events -> {head[:40]!r}")
            opened += 1
            if opened == count:
                ready.set()
            tail = b""
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    raise BenchError(f"an event stream ended ({len(arrivals)} events arrived)")
                if marker in tail + chunk:
                    arrivals.append(time.time())
                    return
                tail = (tail + chunk)[-len(marker):]
        finally:
            writer.close()

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    try:
        await asyncio.wait_for(ready.wait(), 120)
    except TimeoutError:
        raise BenchError(f"only {opened} of {count} streams opened") from None
    await asyncio.sleep(3)  # every stream is reading the feed
    held = rss_kb(edge_pid)
    cpu0 = cpu_seconds(edge_pid)
    await asyncio.sleep(5)
    idle_cpu = (cpu_seconds(edge_pid) - cpu0) / 5
    async with httpx.AsyncClient(timeout=60) as client:
        t0 = await up.touch(client)
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    except TimeoutError:
        raise BenchError(f"the event reached {len(arrivals)} of {count} streams within 60 s") from None
    delays = sorted(a - t0 for a in arrivals)
    return {"touched_at": t0, "streams": count, "rss_before_kb": before, "rss_with_streams_kb": held,
            "idle_cpu_percent": round(100 * idle_cpu, 1),
            "kb_per_stream": round((held - before) / count, 1),
            "event_p50_ms": round(1000 * statistics.median(delays), 1),
            "event_p99_ms": round(1000 * delays[int(0.99 * (len(delays) - 1))], 1),
            "event_max_ms": round(1000 * delays[-1], 1),
            "fanout_spread_ms": round(1000 * (delays[-1] - delays[0]), 1)}


def refresh_breakdown(log: Path, touched_at: float) -> dict[str, Any]:
    """From the gateway's log: when its Webhook arrived and how long the products refresh that
    followed took (where the event's time went)."""
    from datetime import datetime

    out: dict[str, Any] = {}
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        at = datetime.fromisoformat(entry.get("timestamp", "1970-01-01T00:00:00Z").replace("Z", "+00:00")).timestamp()
        if at < touched_at - 0.01:
            continue
        if entry.get("event") == "webhook_received" and "webhook_after_ms" not in out:
            out["webhook_after_ms"] = round(1000 * (at - touched_at), 1)
        if entry.get("event") == "masterdata_refreshed" and entry.get("collection") == "products" and "refresh_ms" not in out:
            out["refresh_ms"] = entry.get("ms")
            out["refreshed_after_ms"] = round(1000 * (at - touched_at), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=20000)
    p.add_argument("--streams", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each request-rate measurement")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--push", choices=("webhook", "poll"), default="webhook",
                   help="how a change in ERPNext reaches the gateway (default: webhook)")
    p.add_argument("--real", action="store_true", help="against the real ERPNext of POS_EDGE_REAL_ERPNEXT_*")
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
    up: Upstream | None = None
    try:
        if args.real:
            missing = [n for n in REAL_ENV if not os.environ.get(n)]
            if missing:
                raise BenchError(f"--real needs {', '.join(missing)}")
            up = Upstream(*(os.environ[n].rstrip("/") for n in REAL_ENV), real=True)
        else:
            sport = free_port()
            standin = Child("standin", pinned(LOAD_CORE, [PYTHON, str(Path(__file__).resolve()), "--serve-standin",
                                                          str(sport), str(args.items)], use_taskset), tmp)
            children.append(standin)
            up = Upstream(f"http://127.0.0.1:{sport}", SITE, KEY, SECRET, real=False)
            wait_http(standin, up.url + "/__bench/stats", timeout=600)
        erp = up.url
        items = up.items(args.items)
        result["items"] = items
        port = free_port()
        config = tenants_yaml(tmp, up, port, args.push)
        if args.push == "webhook":  # the tenant's Webhooks, as an admin makes them
            done = subprocess.run([POS_EDGE, "erpnext", "setup", "--tenant", "shop1", "--config", str(config)],
                                  capture_output=True, text=True, timeout=300)
            if done.returncode != 0 or "Webhook" not in done.stdout:
                raise BenchError(f"pos-edge erpnext setup failed: {done.stdout}{done.stderr}")
        edge = Child("pos-edge", pinned(SUT_CORE, [POS_EDGE, "serve", "--config", str(config), "--port", str(port)],
                                        use_taskset), tmp)
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
        calls0 = up.calls()
        t0 = time.perf_counter()
        while True:
            r = httpx.get(base + "/v1/init", headers=auth, timeout=120)
            if r.status_code == 200:
                break
            if time.perf_counter() - t0 > 600:
                raise BenchError(f"/v1/init -> {r.status_code}: {r.text[:300]}")
            time.sleep(0.2)
        fill_s = time.perf_counter() - t0
        calls1 = up.calls()
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
        if len(seen) != items:
            raise BenchError(f"{len(seen)} items read, {items} in ERPNext")
        result["init"] = {
            "first_init_s": round(fill_s, 2),
            "erpnext_calls": {k: calls1.get(k, 0) - calls0.get(k, 0) for k in calls1} if calls1 and calls0 is not None
            else "not counted (a real site)",
            "catalogue_read_s": round(read_s, 2), "pages": pages, "init_bytes": len(r.content),
            "rss_idle_kb": idle_rss, "rss_after_kb": rss_kb(edge.pid), "rss_peak_kb": rss_kb(edge.pid, "VmHWM")}

        # 2. cached pages vs. the same page from ERPNext directly
        fields = json.dumps(ITEM_FIELDS)
        direct = (f"{erp}/api/resource/Item?fields={fields}&order_by=modified%20asc,%20name%20asc"
                  f"&limit_page_length=500")
        before = up.calls()
        gw_rate, gw_size = asyncio.run(rate(base + "/v1/products?limit=500", auth, args.seconds, args.concurrency))
        after = up.calls()
        erp_rate, erp_size = asyncio.run(rate(direct, up.headers(), args.seconds, args.concurrency))
        during = sum(after.values()) - sum(before.values()) if after is not None and before is not None else None
        result["pages"] = {"gateway_per_s": round(gw_rate, 1), "gateway_bytes": gw_size,
                           "erpnext_direct_per_s": round(erp_rate, 1), "erpnext_bytes": erp_size,
                           "ratio": round(gw_rate / erp_rate, 2), "erpnext_calls_during_gateway_run": during}

        # 3. event streams
        result["events"] = asyncio.run(streams(base, auth, args.streams, up, edge.pid))
        time.sleep(1.0)  # the gateway writes its log lines in batches
        result["events"].update(refresh_breakdown(edge.stdout_path, result["events"].pop("touched_at")))
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
        if up is not None:
            up.clean()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    i, pg, ev = result["init"], result["pages"], result["events"]
    where = "a real ERPNext" if args.real else "stand-in on its own core"
    print(f"catalogue of {result['items']} items with prices (SQLite store, {where}; push by {args.push})")
    print(f"  first /v1/init (store filled from ERPNext): {i['first_init_s']} s, ERPNext calls {i['erpnext_calls']}")
    print(f"  whole catalogue through next links: {i['pages']} pages in {i['catalogue_read_s']} s, every item once")
    print(f"  gateway RSS: idle {i['rss_idle_kb'] // 1024} MB, after {i['rss_after_kb'] // 1024} MB, "
          f"peak {i['rss_peak_kb'] // 1024} MB")
    print(f"  cached /v1/products page of 500: {pg['gateway_per_s']}/s vs ERPNext's own list {pg['erpnext_direct_per_s']}/s "
          f"= {pg['ratio']} x (ERPNext calls meanwhile: {pg['erpnext_calls_during_gateway_run']})")
    print(f"  {ev['streams']} event streams on one process: {ev['kb_per_stream']} kB each; an item added in ERPNext "
          f"reached them in p50 {ev['event_p50_ms']} ms, p99 {ev['event_p99_ms']} ms, max {ev['event_max_ms']} ms "
          f"(spread {ev['fanout_spread_ms']} ms, idle CPU with them open {ev['idle_cpu_percent']} %; "
          f"{'brought by its Webhook' if args.push == 'webhook' else 'includes waiting for the 1 s refresh'})")
    if "refresh_ms" in ev and args.push == "webhook":  # polled, the next refresh may not hold the item yet
        print(f"    where the time went: Webhook received after {ev.get('webhook_after_ms', '-')} ms, the products "
              f"refresh took {ev['refresh_ms']} ms and was stored after {ev['refreshed_after_ms']} ms; the rest is "
              f"the fan-out to {ev['streams']} streams")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
