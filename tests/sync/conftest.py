"""Fixtures for sync tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sync.helpers import Worker


@pytest.fixture
def spawn_worker() -> Iterator[Callable[..., Worker]]:
    """Start `pos-edge worker` processes; every one still running is stopped after the test,
    whatever the test did (a stray worker would take other tests' jobs from the shared Redis)."""
    started: list[Worker] = []

    def spawn(config: Path, log: Path, grace: float = 2) -> Worker:
        worker = Worker(config, log, grace)
        started.append(worker)
        return worker

    yield spawn
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()
