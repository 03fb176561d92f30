"""A capacity model for the stand-in: a site served by W gunicorn workers. At most `workers`
requests are served at once and the rest wait in line (gunicorn's backlog); a request that
writes a document (POST, PUT, DELETE) takes `write_time` seconds of a worker, a read
`read_time`. With it a benchmark can show what a real ERPNext shows: a site saturates at
workers / write_time documents per second, and every request beyond that waits.

Measured on the real ERPNext 15 of ../shared/real-erpnext (2 workers): an invoice costs
270-330 ms of ERPNext and 50-60 ms of MariaDB, about 3.5 invoices/s at saturation (issue 14).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

WRITES = frozenset({"POST", "PUT", "DELETE"})


@dataclass
class Capacity:
    """W workers, their service times, and what they went through (for tests and benchmarks)."""

    workers: int
    write_time: float
    read_time: float = 0.0
    in_flight: int = 0
    waiting: int = 0
    max_in_flight: int = 0
    max_waiting: int = 0
    served: int = 0
    writes: int = 0
    busy: float = 0.0  # worker-seconds spent serving
    # per write: (its body, seconds it waited in line for a worker), for tests of who waits
    waits: list[tuple[bytes, float]] = field(default_factory=list, repr=False)
    _slots: asyncio.Semaphore | None = field(default=None, repr=False)

    @asynccontextmanager
    async def serving(self, method: str, body: bytes = b"") -> AsyncIterator[None]:
        """Hold a worker for one request (waiting for one first), for its service time."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.workers)  # made in the serving loop
        self.waiting += 1
        self.max_waiting = max(self.max_waiting, self.waiting)
        queued = time.perf_counter()
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        if method.upper() in WRITES:
            self.waits.append((body, time.perf_counter() - queued))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        started = time.perf_counter()
        try:
            write = method.upper() in WRITES
            await asyncio.sleep(self.write_time if write else self.read_time)
            yield
            self.writes += write
        finally:
            self.busy += time.perf_counter() - started
            self.in_flight -= 1
            self.served += 1
            self._slots.release()

    def stats(self) -> dict[str, float]:
        """The counters, as numbers."""
        return {"workers": self.workers, "write_time": self.write_time, "in_flight": self.in_flight,
                "waiting": self.waiting, "max_in_flight": self.max_in_flight, "max_waiting": self.max_waiting,
                "served": self.served, "writes": self.writes, "busy": round(self.busy, 3)}
