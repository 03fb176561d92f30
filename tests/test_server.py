"""What one client connection may cost (edge/server.py), over raw sockets against
`pos-edge serve`: header size and count, idle/header/body timeouts, the connection cap."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Gateway, base_config, start_gateway

HOST = b"Host: shop1.tillking.test\r\n"
LIMITS = {"max_header_bytes": 4096, "max_headers": 20, "idle_timeout": 1.0, "header_timeout": 1.5,
          "body_timeout": 1.0, "max_connections": 40, "min_body_rate": 50}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, standin_server) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gw-server")
    gateway = start_gateway(tmp, base_config(tmp, standin_server.url, server=LIMITS))
    yield gateway
    gateway.stop()


def connect(gw: Gateway) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
    return s


def read_all(s: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def problem(data: bytes) -> dict:
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_headers_within_the_limits_pass(gw: Gateway) -> None:
    with connect(gw) as s:
        pad = b"X-Pad: " + b"a" * 3000 + b"\r\n"
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + pad + b"Connection: close\r\n\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("extra", [b"X-Pad: " + b"a" * 5000 + b"\r\n",
                                   b"".join(b"X-H%d: v\r\n" % i for i in range(25))])
def test_too_many_header_bytes_or_fields_is_431(gw: Gateway, extra: bytes) -> None:
    with connect(gw) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + extra + b"\r\n")
        data = read_all(s)  # read_all returns once the server closes
    assert data.startswith(b"HTTP/1.1 431"), data[:100]
    assert problem(data)["code"] == "headers_too_large"


def test_a_huge_header_is_cut_off_without_growing_the_process(gw: Gateway) -> None:
    before = rss_kb(gw.proc.pid)
    sent = 0
    with connect(gw) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Big: ")
        chunk = b"a" * (1024 * 1024)
        with pytest.raises(OSError):  # the server closes long before 64 MB
            for _ in range(64):
                s.sendall(chunk)
                sent += len(chunk)
    assert sent < 16 * 1024 * 1024
    assert rss_kb(gw.proc.pid) - before < 20 * 1024
    with connect(gw) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 200")


def test_a_connection_that_sends_nothing_is_closed(gw: Gateway) -> None:
    with connect(gw) as s:
        t0 = time.monotonic()
        assert read_all(s) == b""
        assert 0.8 <= time.monotonic() - t0 < 4


def test_blank_lines_do_not_keep_a_connection_open(gw: Gateway) -> None:
    with connect(gw) as s:
        t0 = time.monotonic()
        try:
            for _ in range(30):  # CRLFs before a request line are allowed, and begin nothing
                s.sendall(b"\r\n")
                time.sleep(0.2)
        except OSError:
            pass
        assert read_all(s) == b""
        assert time.monotonic() - t0 < 3


def test_a_kept_alive_connection_is_closed_when_idle(gw: Gateway) -> None:
    with connect(gw) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"\r\n")
        t0 = time.monotonic()
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 200") and 0.8 <= time.monotonic() - t0 < 4


def test_headers_sent_slowly_are_408_after_the_header_timeout(gw: Gateway) -> None:
    with connect(gw) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            for _ in range(40):  # a header byte every 0.1 s: each keeps the idle timer away
                time.sleep(0.1)
                s.sendall(b"X")
        except OSError:
            pass
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 408"), data[:100]
    assert problem(data)["code"] == "request_timeout"
    assert time.monotonic() - t0 < 3.5


def test_a_stalled_body_is_closed_after_the_body_timeout_and_logged_499(gw: Gateway) -> None:
    body = b'{"device_id": "till-slow", "device_name": "Slow"'
    with connect(gw) as s:
        s.sendall(b"POST /gateway/device/register HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % (len(body) + 100) + body)
        t0 = time.monotonic()
        assert read_all(s) == b""
        assert time.monotonic() - t0 < 3.5
    assert any('"path":"/gateway/device/register","status":499' in line
               for line in gw.wait_log('"path":"/gateway/device/register","status":499'))


def test_a_body_sent_in_pieces_within_the_timeout_is_read(gw: Gateway) -> None:
    body = json.dumps({"device_id": "till-pieces", "device_name": "Pieces", "tenant_subdomain": "shop1",
                       "branch_id": "main", "enrollment_key": "enrol-1"}).encode()
    with connect(gw) as s:
        s.sendall(b"POST /gateway/device/register HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                  b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 20):
            time.sleep(0.3)  # 0.3 s pauses, under the 1 s body timeout, ~2 s in all
            s.sendall(body[i:i + 20])
        assert read_all(s).startswith(b"HTTP/1.1 201")


def test_connections_over_the_cap_are_503(gw: Gateway) -> None:
    held = [connect(gw) for _ in range(LIMITS["max_connections"])]
    try:
        time.sleep(0.2)
        with connect(gw) as s:
            data = read_all(s)
        assert data.startswith(b"HTTP/1.1 503"), data[:100]
        assert problem(data)["code"] == "too_many_connections"
    finally:
        for s in held:
            s.close()
    time.sleep(0.3)
    with connect(gw) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
        assert read_all(s).startswith(b"HTTP/1.1 200")


def test_slow_clients_do_not_hold_up_others(gw: Gateway) -> None:
    stop = threading.Event()

    def slowloris() -> None:
        while not stop.is_set():
            try:
                with connect(gw) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\n")
                    while not stop.is_set():
                        time.sleep(0.2)
                        s.sendall(b"X")
            except OSError:
                continue

    threads = [threading.Thread(target=slowloris, daemon=True) for _ in range(10)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            with connect(gw) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"Connection: close\r\n\r\n")
                assert read_all(s).startswith(b"HTTP/1.1 200")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)


def test_the_default_header_limit_is_32_kib(gateway: Gateway) -> None:
    for size, status in ((30 * 1024, b"200"), (33 * 1024, b"431")):
        with connect(gateway) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Pad: " + b"a" * size + b"\r\nConnection: close\r\n\r\n")
            assert read_all(s).startswith(b"HTTP/1.1 " + status)


def test_a_body_slower_than_the_minimum_rate_is_cut_off(gw: Gateway) -> None:
    with connect(gw) as s:
        s.sendall(b"POST /gateway/device/register HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n")
        t0 = time.monotonic()
        try:
            for _ in range(40):  # 10 bytes every 0.5 s (20 B/s, under the 50 B/s minimum), never a 1 s pause
                s.sendall(b" " * 10)
                time.sleep(0.5)
        except OSError:
            pass
        assert read_all(s) == b""
        assert 5 <= time.monotonic() - t0 < 9


def test_an_answer_before_the_body_closes_the_connection(gw: Gateway) -> None:
    with connect(gw) as s:  # no token: refused before the body is read
        s.sendall(b"POST /v1/sale HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                  b"Content-Length: 100000\r\n\r\n{")
        t0 = time.monotonic()
        data = read_all(s)
    assert data.startswith(b"HTTP/1.1 401") and time.monotonic() - t0 < 0.9  # closed, not kept for the body
