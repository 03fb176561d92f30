"""The quick start's `pos-edge serve` on the example tenants.yaml, as a user runs it
(the walk-through itself runs in tests/test_readme.py)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from edge.standin.server import free_port
from tests.conftest import POS_EDGE
from tests.test_readme import wait_for

ROOT = Path(__file__).parents[1]


def test_memory_limits_with_several_workers_are_announced(tmp_path: Path) -> None:
    shutil.copy(ROOT / "tenants.yaml", tmp_path / "tenants.yaml")
    port = free_port()
    proc = subprocess.Popen([POS_EDGE, "serve", "--port", str(port), "--workers", "2"], cwd=tmp_path,
                            stdout=(tmp_path / "gw.log").open("wb"), stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", proc)
        deadline = time.monotonic() + 10
        while (tmp_path / "gw.log").read_text().count("rate_limits_per_process") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (tmp_path / "gw.log").read_text().count("rate_limits_per_process") == 2  # once per worker
    finally:
        proc.terminate()
        proc.wait(timeout=20)
