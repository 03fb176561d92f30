"""A till that hangs up mid-body: one access line with status 499, no traceback,
no 5xx in metrics, and nothing of what it sent (keys, tokens) in the log, on every route."""

from __future__ import annotations

import socket
import time

import pytest

from tests.test_metrics import sample


def cut_short(port: int, head: str, body: bytes) -> None:
    """Send a request head announcing more body than is sent, then hang up."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(head.encode() + body)
        time.sleep(0.2)


@pytest.mark.parametrize("path", ["/gateway/device/register", "/v1/sale", "/sync/batch", "/erpnext/Item"])
def test_a_body_cut_short_is_499_without_traceback_or_secrets(gateway, path: str) -> None:
    token = gateway.token(f"till-cut-{path.count('/')}-{time.monotonic_ns()}")
    before = sample(gateway.metrics(), "pos_edge_requests_total", status_class="5xx")
    body = b'{"device_id": "till-x", "enrollment_key": "enrol-1", "device_name": "Cut'
    head = (f"POST {path} HTTP/1.1\r\nHost: shop1.tillking.test\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body) + 500}\r\n\r\n")
    cut_short(gateway.port, head, body)
    needle = f'"path":"{path}","status":499'
    lines = gateway.wait_log(needle)
    assert sum(needle in line for line in lines) == 1, lines[-5:]
    text = "\n".join(gateway.log_lines())
    assert "unhandled_error" not in text and "Traceback" not in text and '"exception"' not in text
    assert "enrol-1" not in text and token not in text and token[:40] not in text
    after = gateway.metrics()
    assert sample(after, "pos_edge_requests_total", status_class="5xx") == before
