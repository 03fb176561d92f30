"""`pos-edge serve --workers N`: uvicorn's process supervisor, with SIGHUP meaning what
pos-edge documents (reload tenants.yaml) rather than what uvicorn does with it.

uvicorn's supervisor answers SIGHUP by replacing every server process, one after the
other: connections are dropped, per-process state (ERPNext pools, caches, the rate
limiter's memory counters) is lost, and a config that no longer loads kills the new
processes. pos-edge's processes each reload tenants.yaml on SIGHUP themselves
(edge/reload.py: validated first, swapped atomically, refused if broken), so the
supervisor passes the signal on to them instead.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from uvicorn import Config, Server
from uvicorn.supervisors import Multiprocess


class ForwardingMultiprocess(Multiprocess):
    """uvicorn's Multiprocess whose SIGHUP is forwarded to each server process."""

    def handle_hup(self) -> None:
        for child in self.processes:
            pid = child.process.pid
            if pid is not None and child.process.is_alive():
                os.kill(pid, signal.SIGHUP)


def serve_processes(app: str, options: dict[str, Any]) -> None:
    """What `uvicorn.run(app, workers=N, ...)` does, with the forwarding supervisor."""
    config = Config(app, **options)
    Server(config=config)  # as uvicorn.run: configures logging before the supervisor logs
    sock = config.bind_socket()
    try:
        ForwardingMultiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
