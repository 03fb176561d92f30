"""Load benchmark: pos-edge's full /erpnext chain against a bare aiohttp proxy.

NOT a test. One run:

1. starts an upstream (Debian's nginx answering a fixed JSON body for /api/...,
   or a raw asyncio HTTP/1.1 server when nginx is not installed), on core 1;
2. starts ``pos-edge serve`` (full chain: tenant -> jwt_auth -> rate_limit ->
   credentials, access log ON, to a file) on core 0, registers ``--devices``
   tills (200) and drives ``GET /erpnext/Item`` with ``wrk``, each request
   carrying the next till's token (a Lua script rotates them); stops it;
3. starts ``bench/bare_proxy.py`` (raw ASGI + one aiohttp session, same uvicorn
   settings) on core 0 and drives ``GET /api/resource/Item``; stops it;
4. drives the upstream directly for reference;

and prints req/s, p50/p99 latency and server CPU microseconds per request for
each, plus full-chain / bare-proxy throughput against the 65 % target.

    .venv/bin/python bench/proxy.py [--duration 10] [--connections 32] [--warmup 3] [--devices 200] [--json]
                                     [--profile /tmp/posedge-profile.txt]

Exit status: 0 when every run was valid (whatever the ratio), 1 when a run was
invalid (non-2xx answers, socket errors, a server that did not start), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
POS_EDGE = str(VENV_BIN / "pos-edge") if (VENV_BIN / "pos-edge").exists() else shutil.which("pos-edge") or "pos-edge"

BODY = b'{"data":[{"name":"ITEM-0001","item_name":"Coffee"}]}'
HOST = "shop1.bench.local"
TARGET_RATIO = 65.0  # full chain / bare proxy, percent of req/s
SUT_CORE = "0"
LOAD_CORE = "1"  # upstream + wrk (+ py-spy)
JWT_SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The run cannot produce a valid measurement."""


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pinned(core: str, argv: list[str], use_taskset: bool) -> list[str]:
    """`taskset -c core argv...` (taskset execs, so the pid stays the server's)."""
    return ["taskset", "-c", core, *argv] if use_taskset else argv


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime, stime) of a process from /proc/<pid>/stat, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) is in parentheses and may hold spaces: split after the last ')'
    rest = raw[raw.rindex(b")") + 2 :].split()
    # rest[0] is field 3 (state): field N is rest[N - 3]
    return int(rest[1]), int(rest[11]), int(rest[12])


def process_tree(root: int) -> list[int]:
    """`root` and all of its descendants (ppid links from /proc/*/stat)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                children[st[0]].append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def cpu_seconds(root: int) -> float:
    """utime + stime (every thread) of `root` and its descendants, in seconds."""
    ticks = 0
    for pid in process_tree(root):
        st = _stat(pid)
        if st is not None:
            ticks += st[1] + st[2]
    return ticks / CLK_TCK


class Child:
    """A child process we own: started with Popen, stopped with terminate, then kill."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None,
                 stdout_name: str | None = None) -> None:
        self.name = name
        self.argv = argv
        self.stdout_path = workdir / (stdout_name or f"{name}.out")
        self.stderr_path = workdir / f"{name}.err"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            env=env, cwd=str(ROOT), start_new_session=True,  # our Ctrl-C handling stops it, in order
        )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, lines: int = 20) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait `grace` s, then SIGKILL; also kill any descendant left behind."""
        if self.proc.returncode is None:
            tree = [p for p in process_tree(self.pid) if p != self.pid] if self.alive() else []
            try:
                self.proc.terminate()
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            except ProcessLookupError:
                pass
            for pid in tree:  # e.g. nginx workers if the master died abruptly
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        self._out.close()
        self._err.close()


def wait_http(child: Child, url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
    """Poll `url` until it answers 200 or `timeout` passes."""
    import httpx

    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if not child.alive():
            raise BenchError(f"{child.name} exited with {child.proc.returncode}:\n{child.stderr_tail()}")
        try:
            r = httpx.get(url, headers=headers, timeout=2.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.1)
    raise BenchError(f"{child.name} did not answer 200 on {url} within {timeout:g} s (last: {last})\n{child.stderr_tail()}")


def check_body(url: str, headers: dict[str, str] | None = None) -> None:
    """One request before the load: 200 and the upstream's body, or the run is invalid."""
    import httpx

    r = httpx.get(url, headers=headers, timeout=5.0)
    if r.status_code != 200 or r.content != BODY:
        raise BenchError(f"GET {url} -> {r.status_code} {r.content[:300]!r} (expected 200 {BODY!r})")


# --------------------------------------------------------------------------- upstream


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user {user};
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-client_body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server_tokens off;

    server {{
        listen 127.0.0.1:{port};
        default_type application/json;
        location /api/ {{
            return 200 '{body}';
        }}
        location / {{
            return 404 '{{"exc_type":"DoesNotExistError"}}';
        }}
    }}
}}
"""


def start_upstream(tmp: Path, port: int, use_taskset: bool, kind: str = "auto") -> tuple[Child, str]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if kind == "nginx" and not nginx:
        raise BenchError("--upstream nginx: nginx is not installed")
    if nginx and kind != "python":
        conf = tmp / "nginx.conf"
        user = "root root" if os.geteuid() == 0 else "nobody"  # `user` only matters when run as root
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, body=BODY.decode(), user=user))
        argv = [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "nginx-error.log")]
        return Child("upstream-nginx", pinned(LOAD_CORE, argv, use_taskset), tmp), "nginx " + _nginx_version(nginx)
    argv = [PYTHON, str(Path(__file__).resolve()), "--serve-upstream", str(port)]
    why = "chosen with --upstream python" if kind == "python" else "nginx not found"
    return Child("upstream-python", pinned(LOAD_CORE, argv, use_taskset), tmp), f"python asyncio ({why})"


def _nginx_version(nginx: str) -> str:
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True)
    m = re.search(r"nginx/(\S+)", out.stderr + out.stdout)
    return m.group(1) if m else "?"


def serve_upstream(port: int) -> None:
    """The fallback upstream: a raw asyncio HTTP/1.1 keep-alive server, fixed JSON body."""
    ok = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(BODY)).encode() + b"\r\n\r\n" + BODY
    )
    missing = b'{"exc_type":"DoesNotExistError"}'
    not_found = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(missing)).encode() + b"\r\n\r\n" + missing
    )

    class Http(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.t = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            out = []
            while True:
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head, self.buf = self.buf[:end], self.buf[end + 4 :]
                m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if m:  # a body (never sent by the bench) is skipped
                    self.buf = self.buf[int(m.group(1)) :]
                target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
                out.append(ok if target.startswith(b"/api/") else not_found)
            if out:
                self.t.write(b"".join(out))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Http, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


# --------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    raw: str = ""


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _to_ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value.strip())
    if not m:
        raise BenchError(f"cannot read wrk time {value!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> WrkResult:
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", out)
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if not m or not rps:
        raise BenchError(f"cannot parse wrk output:\n{out}")
    pct = {p: _to_ms(v) for p, v in re.findall(r"^\s*(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    if not {"50", "99"} <= pct.keys():
        raise BenchError(f"no latency distribution in wrk output (--latency missing?):\n{out}")
    non = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)) if sock else {}
    return WrkResult(
        requests=int(m.group(1)),
        seconds=_to_ms(m.group(2) + m.group(3)) / 1e3,
        rps=float(rps.group(1)),
        p50_ms=pct["50"],
        p75_ms=pct.get("75", float("nan")),
        p90_ms=pct.get("90", float("nan")),
        p99_ms=pct["99"],
        non_2xx=int(non.group(1)) if non else 0,
        socket_errors={k: v for k, v in errors.items() if v},
        raw=out,
    )


def run_wrk(url: str, headers: list[str], duration: float, connections: int, use_taskset: bool,
            script: Path | None = None) -> WrkResult:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "--timeout", "5s"]
    for h in headers:
        argv += ["-H", h]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    proc = subprocess.run(pinned(LOAD_CORE, argv, use_taskset), capture_output=True, text=True,
                          timeout=duration + 60)
    if proc.returncode != 0:
        raise BenchError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return parse_wrk(proc.stdout)


# --------------------------------------------------------------------------- measurement


@dataclass
class Row:
    name: str
    url: str
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_req: float
    cpu_util_pct: float  # server CPU seconds / wall seconds of the measured run
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: dict[str, int]
    log_lines: int | None = None  # access-log lines written during the measured run
    log_statuses: dict[str, int] | None = None  # their status codes
    log_rps_first_last: tuple[int, int] | None = None  # 200s logged in the first / last full second


def measure(name: str, server: Child, url: str, headers: list[str], args: argparse.Namespace,
            use_taskset: bool, log_path: Path | None = None, script: Path | None = None) -> Row:
    if args.warmup > 0:
        run_wrk(url, headers, args.warmup, args.connections, use_taskset, script)  # discarded
    offset = log_path.stat().st_size if log_path else 0
    cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
    res = run_wrk(url, headers, args.duration, args.connections, use_taskset, script)
    cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
    if not server.alive():
        raise BenchError(f"{server.name} died during the run:\n{server.stderr_tail()}")
    stats = _log_stats(log_path, offset) if log_path else None
    cpu = cpu1 - cpu0
    row = Row(
        name=name, url=url, rps=res.rps, p50_ms=res.p50_ms, p99_ms=res.p99_ms,
        cpu_us_per_req=cpu * 1e6 / res.requests if res.requests else float("nan"),
        cpu_util_pct=100.0 * cpu / (t1 - t0), requests=res.requests, seconds=res.seconds,
        non_2xx=res.non_2xx, socket_errors=res.socket_errors,
        log_lines=stats[0] if stats else None, log_statuses=stats[1] if stats else None,
        log_rps_first_last=stats[2] if stats else None,
    )
    print(f"  {name}: {res.rps:,.0f} req/s, p50 {res.p50_ms:.2f} ms, p99 {res.p99_ms:.2f} ms, "
          f"{row.cpu_us_per_req:.0f} CPU us/req ({row.cpu_util_pct:.0f}% of a core)", flush=True)
    if res.non_2xx or res.socket_errors:
        print(f"\nINVALID RUN for {name}: non-2xx/3xx responses: {res.non_2xx}, "
              f"socket errors: {res.socket_errors or 'none'}\n--- wrk output ---\n{res.raw}", file=sys.stderr)
        if log_path:
            print(f"--- non-200 access-log lines of {name} (first 5) ---", file=sys.stderr)
            for line in _non_200_lines(log_path, 5):
                print(line, file=sys.stderr)
            print(f"--- {name} stderr (tail) ---\n{server.stderr_tail()}", file=sys.stderr)
        raise BenchError(f"{name}: the run was not valid")
    return row


_STATUS = re.compile(rb'"status": ?(\d{3})')
_SECOND = re.compile(rb'"timestamp": ?"([^".]+)')


def _log_stats(path: Path, offset: int) -> tuple[int, dict[str, int], tuple[int, int] | None]:
    """Lines, status codes, and 200s in the first/last full second of the access log after `offset`."""
    lines = 0
    statuses: collections.Counter[str] = collections.Counter()
    per_second: collections.Counter[bytes] = collections.Counter()
    with open(path, "rb") as f:
        f.seek(offset)
        for line in f:
            lines += 1
            m = _STATUS.search(line)
            if m:
                statuses[m.group(1).decode()] += 1
                if m.group(1) == b"200" and (t := _SECOND.search(line)):
                    per_second[t.group(1)] += 1
    seconds = sorted(per_second)
    drift = (per_second[seconds[1]], per_second[seconds[-2]]) if len(seconds) >= 4 else None
    return lines, dict(statuses), drift


def _non_200_lines(path: Path, limit: int) -> list[str]:
    out = []
    with open(path, "rb") as f:
        for line in f:
            if b'"status": 200' not in line and b'"status":200' not in line:
                out.append(line.decode(errors="replace").rstrip())
                if len(out) >= limit:
                    break
    return out


def tenants_yaml(tmp: Path, upstream_port: int) -> Path:
    path = tmp / "tenants.yaml"
    path.write_text(
        f"""\
gateway:
  base_domains: [bench.local]
  store: sqlite:///{tmp}/bench.db
  rate_limit_storage: memory://
  jwt:
    secret: {JWT_SECRET}
tenants:
  shop1:
    name: Bench Shop
    erpnext:
      url: http://127.0.0.1:{upstream_port}
      api_key: k
      api_secret: s
    rate_limit: 100000/minute
"""
    )
    return path


def register_device(base: str, device_id: str = "bench-till") -> str:
    import httpx

    r = httpx.post(
        f"{base}/gateway/device/register",
        headers={"Host": HOST},
        json={"device_id": device_id, "device_name": "Bench", "tenant_subdomain": "shop1", "branch_id": "main"},
        timeout=10.0,
    )
    if r.status_code != 201:
        raise BenchError(f"device registration -> {r.status_code}: {r.text[:500]}")
    return r.json()["token"]


def token_rotation_script(tmp: Path, tokens: list[str]) -> Path:
    """A wrk Lua script sending each request with the next till's token, round robin.

    A POS gateway serves many tills at a modest rate each, not one client at
    thousands of requests per second: rotating tokens makes the limiter and the
    device cache work on a realistic number of keys.
    """
    path = tmp / "tills.lua"
    quoted = ",\n".join(f'  "Bearer {t}"' for t in tokens)
    path.write_text(
        f"local tokens = {{\n{quoted}\n}}\n"
        "local n = 0\n"
        "request = function()\n"
        "  n = n + 1\n"
        f'  return wrk.format("GET", nil, {{["Host"] = "{HOST}", ["Authorization"] = tokens[(n % #tokens) + 1]}})\n'
        "end\n"
    )
    return path


# --------------------------------------------------------------------------- profile


def profile_server(server: Child, url: str, headers: list[str], args: argparse.Namespace,
                     use_taskset: bool, script: Path | None = None) -> list[tuple[str, float, float]] | None:
    """py-spy record (raw, collapsed stacks) while wrk drives pos-edge; top functions by self time."""
    pyspy = str(VENV_BIN / "py-spy") if (VENV_BIN / "py-spy").exists() else shutil.which("py-spy")
    if not pyspy:
        print("  py-spy is not installed (.venv/bin/pip install py-spy): no profile", file=sys.stderr)
        return None
    secs = max(2, round(args.profile_duration))
    out = Path(args.profile)
    rec = subprocess.Popen(
        pinned(LOAD_CORE, [pyspy, "record", "-o", str(out), "--format", "raw", "-d", str(secs), "-r", "250",
                           "-p", str(server.pid)], use_taskset),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        time.sleep(1.0)  # py-spy attaches
        run_wrk(url, headers, secs + 2, args.connections, use_taskset, script)
        log, _ = rec.communicate(timeout=60)
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    if rec.returncode != 0 or not out.exists():
        print(f"  py-spy failed ({rec.returncode}): {log.strip()[-500:]}", file=sys.stderr)
        return None
    return summarize_profile(out)


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "lib/python3", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group('func')} ({path})"


# Leaf frames of threads that py-spy counts as active but that only wait for
# work (the thread pool behind `asyncio.to_thread`, used by limits' MemoryStorage).
_IDLE_LEAVES = ("_worker (concurrent/futures/thread.py)", "Condition.wait (threading.py)")


def summarize_profile(path: Path, top: int = 20) -> list[tuple[str, float, float]]:
    """(function, self %, total %) for the `top` functions by self samples.

    Percentages are of the busy samples: idle waits of pool threads are left out.
    """
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    n = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        names = [_short(f) for f in frames]
        if names[-1] in _IDLE_LEAVES or any("SimpleQueue_get" in f for f in frames):  # (--native)
            idle += c
            continue
        n += c
        own[names[-1]] += c
        for name in set(names):
            total[name] += c
    if not n:
        return []
    print(f"  py-spy: {n} busy samples ({idle} idle thread-pool samples left out)", flush=True)
    return [(name, 100.0 * c / n, 100.0 * total[name] / n) for name, c in own.most_common(top)]


# --------------------------------------------------------------------------- main


def print_table(rows: list[Row], ratio: float, info: dict[str, Any]) -> None:
    print()
    pinning = (
        f"yes (taskset: system under test on core {SUT_CORE}; upstream + wrk on core {LOAD_CORE})"
        if info["pinned"] else "no (taskset missing or a single core)"
    )
    print(f"pos-edge proxy benchmark: nproc={info['nproc']}, pinning={pinning}")
    print(f"upstream: {info['upstream']}; wrk -t1 -c{info['connections']} -d{info['duration']:g}s "
          f"(warm-up {info['warmup']:g}s discarded); python {info['python']}, uvicorn loop={info['loop']} http={info['http']}")
    print()
    hdr = f"{'':28} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'CPU %core':>10} {'requests':>10}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(f"{r.name:28} {r.rps:>10,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.cpu_us_per_req:>11.1f} "
              f"{r.cpu_util_pct:>9.0f}% {r.requests:>10,}")
    print("-" * len(hdr))
    print("CPU us/req and CPU %core: the driven server's process tree only (nginx for upstream-direct).")
    full = next(r for r in rows if r.name.startswith("pos-edge"))
    if full.log_lines is not None:
        codes = ", ".join(f"{k}: {v:,}" for k, v in sorted((full.log_statuses or {}).items()))
        print(f"pos-edge access log: {full.log_lines:,} lines written during the measured run ({codes}); "
              f"wrk counted {full.requests:,} responses")
        if full.log_rps_first_last:
            first, last = full.log_rps_first_last
            print(f"pos-edge throughput drift (access log, 200s per second): first full second {first:,}, "
                  f"last full second {last:,} ({100.0 * (last - first) / first:+.0f}%)")
    verdict = "PASS" if ratio >= TARGET_RATIO else "BELOW TARGET"
    print(f"\nfull chain / bare proxy (req/s): {ratio:.1f}%   target >= {TARGET_RATIO:.0f}%   -> {verdict}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds of each measured wrk run (default 10)")
    p.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    p.add_argument("--devices", type=int, default=200,
                   help="tills registered and rotated round robin by wrk (default 200)")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of the discarded warm-up run (default 3)")
    p.add_argument("--json", action="store_true", help="also print a JSON summary")
    p.add_argument("--profile", metavar="FILE", help="after measuring, py-spy pos-edge under the same load (raw format to FILE)")
    p.add_argument("--profile-duration", type=float, default=8.0, help="seconds of py-spy sampling (default 8)")
    p.add_argument("--upstream", choices=["auto", "nginx", "python"], default="auto",
                   help="auto: nginx when installed, else the raw asyncio server (default auto)")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, configs) for inspection")
    p.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # keep stdout and stderr lines in order

    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 1

    use_taskset = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-bench-"))
    children: list[Child] = []
    previous_term = signal.signal(signal.SIGTERM, _interrupt)
    # Ctrl-C even when started from a shell that ignores SIGINT for background jobs
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    rows: list[Row] = []
    profile: list[tuple[str, float, float]] | None = None
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "pinned": use_taskset,
        "connections": args.connections,
        "duration": args.duration,
        "warmup": args.warmup,
        "python": platform.python_version(),
        "loop": "auto(uvloop)" if _importable("uvloop") else "auto(asyncio)",
        "http": "auto(httptools)" if _importable("httptools") else "auto(h11)",
    }

    def start(child: Child) -> Child:
        children.append(child)
        return child

    def stop(child: Child) -> None:
        child.stop()
        children.remove(child)

    try:
        # 1. upstream
        up_port = free_port()
        upstream, info["upstream"] = start_upstream(tmp, up_port, use_taskset, args.upstream)
        start(upstream)
        up_url = f"http://127.0.0.1:{up_port}"
        wait_http(upstream, up_url + "/api/resource/Item")
        check_body(up_url + "/api/resource/Item")
        print(f"upstream: {info['upstream']} on {up_url} (pid {upstream.pid})", flush=True)

        # 2. pos-edge, full chain
        port = free_port()
        cfg = tenants_yaml(tmp, up_port)
        edge = start(Child(
            "pos-edge",
            pinned(SUT_CORE, [POS_EDGE, "serve", "--config", str(cfg), "--host", "127.0.0.1", "--port", str(port)], use_taskset),
            tmp, stdout_name="pos-edge-access.log",
        ))
        base = f"http://127.0.0.1:{port}"
        wait_http(edge, base + "/healthz")
        tokens = [register_device(base, f"bench-till-{i:04d}") for i in range(args.devices)]
        edge_headers = {"Host": HOST, "Authorization": f"Bearer {tokens[0]}"}
        check_body(base + "/erpnext/Item", edge_headers)
        print(f"pos-edge on {base} (pid {edge.pid}), {len(tokens)} devices registered", flush=True)
        script = token_rotation_script(tmp, tokens)
        rows.append(measure("pos-edge full chain", edge, base + "/erpnext/Item", [], args, use_taskset,
                            log_path=edge.stdout_path, script=script))
        if args.profile:
            print(f"  profiling pos-edge with py-spy ({args.profile_duration:g} s) ...", flush=True)
            profile = profile_server(edge, base + "/erpnext/Item", [], args, use_taskset, script)
        stop(edge)

        # 3. bare proxy ceiling
        port = free_port()
        env = {**os.environ, "BARE_PROXY_UPSTREAM": up_url, "PYTHONPATH": str(ROOT)}
        bare = start(Child(
            "bare-proxy",
            pinned(SUT_CORE, [PYTHON, "-m", "uvicorn", "bench.bare_proxy:app", "--host", "127.0.0.1", "--port", str(port),
                              "--no-access-log", "--no-proxy-headers", "--no-server-header"], use_taskset),
            tmp, env=env,
        ))
        base = f"http://127.0.0.1:{port}"
        wait_http(bare, base + "/api/resource/Item")
        check_body(base + "/api/resource/Item")
        print(f"bare proxy on {base} (pid {bare.pid})", flush=True)
        rows.append(measure("bare proxy (aiohttp+ASGI)", bare, base + "/api/resource/Item", [], args, use_taskset))
        stop(bare)

        # 4. the upstream alone, for reference
        rows.insert(0, measure("upstream direct", upstream, up_url + "/api/resource/Item", [], args, use_taskset))

        full, bare_row = rows[1], rows[2]
        rows = [rows[0], bare_row, full]  # upstream, ceiling, system under test
        ratio = 100.0 * full.rps / bare_row.rps
        print_table(rows, ratio, info)
        if profile is not None:
            print(f"\npy-spy profile of pos-edge ({args.profile}), top functions by self time:")
            print(f"{'self %':>7} {'total %':>8}  function")
            for name, own, tot in profile:
                print(f"{own:>7.1f} {tot:>8.1f}  {name}")
        if args.json:
            summary = {
                **info,
                "results": [asdict(r) for r in rows],
                "ratio_pct": round(ratio, 1),
                "target_pct": TARGET_RATIO,
                "verdict": "PASS" if ratio >= TARGET_RATIO else "BELOW TARGET",
                "profile": [{"function": n, "self_pct": round(s, 2), "total_pct": round(t, 2)} for n, s, t in profile]
                if profile else None,
            }
            print(json.dumps(summary, indent=2))
        return 0
    except BenchError as exc:
        print(f"\nbenchmark invalid: {exc}", file=sys.stderr)
        if args.keep_tmp:
            print(f"logs kept in {tmp}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for child in reversed(children):
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                print(f"stopping {child.name}: {exc!r}", file=sys.stderr)
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM: unwind like Ctrl-C so that `finally` stops every child."""
    raise KeyboardInterrupt


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
