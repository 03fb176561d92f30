"""Load benchmark: normal requests while clients send oversized headers.

NOT a test. One run starts an upstream (bench/proxy.py's) and, in turn:

- ``uvicorn --http httptools`` serving pos-edge's app with uvicorn's stock
  protocol (what `pos-edge serve` ran before gateway.server's limits), and
- ``pos-edge serve`` (edge/server.py's bounded httptools protocol, default limits);

each pinned to core 0. Against each, a till sends sequential ``GET /erpnext/Item``
(full chain) for ``--duration`` seconds alone, then for ``--duration`` seconds
while ``--attackers`` clients (32) each stream a request whose one header grows to
``--attack-mb`` MB (8), reconnecting when the server closes on them. It prints
p50/p99/max of the till's requests idle and under attack, their ratio, the
server's peak RSS, and how many attack bytes each server read.

    .venv/bin/python bench/header_flood.py [--duration 10] [--attackers 32] [--attack-mb 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from proxy import (  # bench/proxy.py: process helpers shared by the benchmarks
    HOST,
    LOAD_CORE,
    POS_EDGE,
    PYTHON,
    SUT_CORE,
    BenchError,
    Child,
    free_port,
    pinned,
    register_device,
    start_upstream,
    tenants_yaml,
    wait_http,
)


@dataclass
class Phase:
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int


@dataclass
class Row:
    server: str
    idle: Phase
    attack: Phase
    p99_ratio: float
    peak_rss_mb: float
    attack_mb_sent: float
    attack_connections: int


def hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def till(port: int, token: str, seconds: float) -> Phase:
    """Sequential keep-alive GETs over one socket; latency of each."""
    request = (f"GET /erpnext/Item HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
    times: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    sock: socket.socket | None = None
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            if sock is None:
                sock = socket.create_connection(("127.0.0.1", port), timeout=30)
            sock.sendall(request)
            _read_response(sock)
            times.append((time.perf_counter() - t0) * 1000)
        except OSError:
            errors += 1
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()
    times.sort()
    if not times:
        return Phase(0, 0, 0, 0, errors)
    return Phase(len(times), round(statistics.median(times), 2), round(times[int(len(times) * 0.99) - 1], 2),
                 round(times[-1], 2), errors)


def _read_response(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head[:80].decode(errors="replace"))
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        body += chunk


class Attackers:
    """Clients each streaming one ever-growing header, reconnecting when cut off."""

    def __init__(self, port: int, n: int, megabytes: int) -> None:
        self.port, self.n, self.size = port, n, megabytes * 1024 * 1024
        self.stop = threading.Event()
        self.sent = 0
        self.connections = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        chunk = b"a" * 65536
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                    with self._lock:
                        self.connections += 1
                    s.sendall(f"GET /erpnext/Item HTTP/1.1\r\nHost: {HOST}\r\nX-Flood: ".encode())
                    sent = 0
                    while sent < self.size and not self.stop.is_set():
                        s.sendall(chunk)
                        sent += len(chunk)
                        with self._lock:
                            self.sent += len(chunk)
                    s.sendall(b"\r\n\r\n")
                    s.recv(1024)
            except OSError:
                time.sleep(0.01)

    def __enter__(self) -> Attackers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def attack(port: int, n: int, megabytes: int) -> None:
    """The attackers' own process (so the till's timings share no GIL with them):
    run until SIGTERM, then print what was sent as JSON."""
    import signal

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with Attackers(port, n, megabytes) as attackers:
        done.wait()
    print(json.dumps({"sent": attackers.sent, "connections": attackers.connections}), flush=True)


def measure(name: str, server: Child, port: int, token: str, args: argparse.Namespace, tmp: Path,
            use_taskset: bool) -> Row:
    till(port, token, 1.0)  # warm up
    idle = till(port, token, args.duration)
    argv = [PYTHON, str(Path(__file__).resolve()), "--attack", str(port), str(args.attackers), str(args.attack_mb)]
    attackers = Child(f"attackers-{port}", pinned(LOAD_CORE, argv, use_taskset), tmp)
    try:
        time.sleep(0.5)
        under = till(port, token, args.duration)
    finally:
        attackers.stop(grace=60)
    totals = json.loads(attackers.stdout_path.read_text() or '{"sent": 0, "connections": 0}')
    return Row(name, idle, under, round(under.p99_ms / idle.p99_ms, 1) if idle.p99_ms else 0.0,
               round(hwm_mb(server.pid), 1), round(totals["sent"] / 1024 / 1024, 1), totals["connections"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per phase (idle, under attack)")
    p.add_argument("--attackers", type=int, default=32)
    p.add_argument("--attack-mb", type=int, default=8, help="size each attacker's header grows to, MB")
    p.add_argument("--json", action="store_true")
    p.add_argument("--attack", nargs=3, type=int, metavar=("PORT", "N", "MB"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.attack:
        attack(*args.attack)
        return 0
    use_taskset = bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2
    tmp = Path(tempfile.mkdtemp(prefix="pos-edge-flood-"))
    children: list[Child] = []
    rows: list[Row] = []
    try:
        up_port = free_port()
        upstream, upstream_desc = start_upstream(tmp, up_port, use_taskset)
        children.append(upstream)
        wait_http(upstream, f"http://127.0.0.1:{up_port}/api/resource/Item")
        cfg = tenants_yaml(tmp, up_port)
        servers = {
            "uvicorn stock httptools": [PYTHON, "-m", "uvicorn", "edge.app:create_app", "--factory", "--http", "httptools",
                                        "--no-access-log", "--no-server-header"],
            "pos-edge serve (bounded)": [POS_EDGE, "serve", "--config", str(cfg)],
        }
        for name, argv in servers.items():
            port = free_port()
            argv = [*argv, "--host", "127.0.0.1", "--port", str(port)]
            env = {**os.environ, "POS_EDGE_CONFIG": str(cfg)}
            server = Child(name.split()[0], pinned(SUT_CORE, argv, use_taskset), tmp, env=env)
            children.append(server)
            wait_http(server, f"http://127.0.0.1:{port}/healthz")
            token = register_device(f"http://127.0.0.1:{port}", f"flood-till-{port}")
            rows.append(measure(name, server, port, token, args, tmp, use_taskset))
            server.stop()
            children.remove(server)
    except BenchError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            child.stop()
    if args.json:
        print(json.dumps({"upstream": upstream_desc, "args": vars(args), "rows": [asdict(r) for r in rows]}, indent=1))
        return 0
    print(f"upstream: {upstream_desc}; server on core {SUT_CORE}, till and {args.attackers} attackers on core {LOAD_CORE}; "
          f"each attacker's header grows to {args.attack_mb} MB; {args.duration:g} s per phase")
    print(f"{'server':<26} {'idle p50/p99/max ms':>22} {'attack p50/p99/max ms':>24} {'p99 x':>6} {'errors':>7} "
          f"{'peak RSS MB':>12} {'attack MB sent':>15} {'attack conns':>13}")
    for r in rows:
        idle = f"{r.idle.p50_ms}/{r.idle.p99_ms}/{r.idle.max_ms}"
        under = f"{r.attack.p50_ms}/{r.attack.p99_ms}/{r.attack.max_ms}"
        print(f"{r.server:<26} {idle:>22} {under:>24} {r.p99_ratio:>6} {r.attack.errors:>7} {r.peak_rss_mb:>12} "
              f"{r.attack_mb_sent:>15} {r.attack_connections:>13}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
