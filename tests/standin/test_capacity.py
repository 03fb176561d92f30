"""The stand-in's capacity model (edge.standin.capacity): W workers, the rest waiting in
line, a write holding a worker for its service time; over real sockets."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from edge.standin import StandIn, StandInServer
from tests.standin.conftest import AUTH, Erp


async def _burst(url: str, writes: int, reads: int) -> list[int]:
    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=30) as client:
        calls = [client.post("/api/resource/Item", json={"item_code": f"CAP-{uuid.uuid4().hex[:8]}",
                                                         "item_group": "Products", "stock_uom": "Nos"})
                 for _ in range(writes)]
        calls += [client.get("/api/resource/Item", params={"limit_page_length": "1"}) for _ in range(reads)]
        return [r.status_code for r in await asyncio.gather(*calls)]


def test_at_most_w_requests_are_served_at_once_and_the_rest_wait(standin_server: StandInServer, standin: StandIn,
                                                                 erp: Erp) -> None:
    capacity = standin.set_capacity(workers=2, write_time=0.25)
    statuses = asyncio.run(_burst(standin_server.url, writes=6, reads=2))
    assert statuses == [200] * 8
    stats = capacity.stats()
    assert stats["max_in_flight"] == 2  # never more than its workers
    assert stats["max_waiting"] >= 4  # the burst queued, reads behind writes, as on gunicorn
    assert (stats["served"], stats["writes"], stats["in_flight"], stats["waiting"]) == (8, 6, 0, 0)
    assert stats["busy"] >= 6 * 0.25  # each write held a worker for its service time


def test_without_a_capacity_everything_is_served_at_once(standin_server: StandInServer, standin: StandIn,
                                                         erp: Erp) -> None:
    assert standin.capacity is None  # reset between tests
    assert asyncio.run(_burst(standin_server.url, writes=3, reads=1)) == [200] * 4
