"""Helpers for offline-sync tests: transactions, uploads, waiting for a batch, worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from edge.standin import StandIn
from tests.conftest import POS_EDGE, Gateway, terminate
from tests.routes.test_pos import sale

FINAL = ("synced", "failed", "partial")


def sale_txn(txn: str | None = None, **over: Any) -> dict[str, Any]:
    """A /sync/batch sale entry (the payload is a /v1/sale body)."""
    payload = sale(**over)
    payload.pop("client_txn_id")
    return {"type": "sale", "client_txn_id": txn or f"s-{uuid.uuid4().hex[:12]}", "payload": payload}


def return_txn(against: str, txn: str | None = None) -> dict[str, Any]:
    """A return of one coffee against `against` (an invoice name or a sale's client_txn_id)."""
    payload = sale(items=[{"item_code": "cof", "qty": 1, "rate": "2.50"}], payments=[{"method": "cash", "amount": "2.50"}],
                   return_against=against)
    payload.pop("client_txn_id")
    return {"type": "return", "client_txn_id": txn or f"r-{uuid.uuid4().hex[:12]}", "payload": payload}


def upload(gw: Gateway, token: str, txns: list[dict[str, Any]], tenant: str = "shop1") -> dict[str, Any]:
    """POST /sync/batch; asserts the 202 and returns its body."""
    r = gw.request("POST", "/sync/batch", tenant=tenant, token=token, json={"transactions": txns})
    assert r.status_code == 202, r.text
    return r.json()


def status(gw: Gateway, token: str, batch: str, tenant: str = "shop1") -> dict[str, Any]:
    """GET /sync/status/<batch> (asserting 200)."""
    r = gw.request("GET", f"/sync/status/{batch}", tenant=tenant, token=token)
    assert r.status_code == 200, r.text
    return r.json()


def wait_batch(gw: Gateway, token: str, batch: str, timeout: float = 30.0, tenant: str = "shop1",
               until: tuple[str, ...] = FINAL) -> dict[str, Any]:
    """Poll the batch until its status is one of `until`; returns the last status body."""
    deadline = time.monotonic() + timeout
    while True:
        body = status(gw, token, batch, tenant)
        if body["status"] in until or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def invoices_for(standin: StandIn, txn: str, site: str = "shop1.erp.test", doctype: str = "Sales Invoice") -> list[dict[str, Any]]:
    """Invoices whose reference ends with /<txn> (the reference is "<device>/<client_txn_id>")."""
    docs = standin.sites[site].docs.get(doctype, {}).values()
    return [d for d in docs if str(d.get("custom_pos_edge_txn_id", "")).endswith("/" + txn)]


class Worker:
    """A `pos-edge worker` process on a gateway's config."""

    def __init__(self, config: Path, log: Path, grace: float = 2) -> None:
        self.log = log
        self.proc = subprocess.Popen([POS_EDGE, "worker", "--config", str(config), "--grace", str(grace)],
                                     stdout=log.open("wb"), stderr=subprocess.STDOUT, env=dict(os.environ))

    def wait_started(self, timeout: float = 15.0) -> None:
        """Until the worker logged that it runs."""
        deadline = time.monotonic() + timeout
        while "sync_worker_started" not in self.log.read_text():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        return terminate(self.proc)
