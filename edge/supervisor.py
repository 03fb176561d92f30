"""How `pos-edge serve` runs uvicorn: the listening socket bound first, and with
`--workers N` uvicorn's process supervisor, SIGHUP meaning what pos-edge documents
(reload tenants.yaml) rather than what uvicorn does with it.

The socket is bound before anything else: uvicorn binds only after the lifespan has
started (store opened, in-process sync workers claiming jobs), so a port in use would
start, then stop, all of it and end in a bare errno line.

uvicorn's supervisor answers SIGHUP by replacing every server process, one after the
other: connections are dropped, per-process state (ERPNext pools, caches, the rate
limiter's memory counters) is lost, and a config that no longer loads kills the new
processes. pos-edge's processes each reload tenants.yaml on SIGHUP themselves
(edge/reload.py: validated first, swapped atomically, refused if broken), so the
supervisor passes the signal on to them instead.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
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


class PortInUse(Exception):
    """The listening address cannot be bound (in use, not permitted, not local)."""


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, as uvicorn would make it (SO_REUSEADDR, inheritable for workers)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listening at once claims the port: a socket that is only bound can still be shared by
        # another SO_REUSEADDR socket (the metrics listener given the same port, say), which would
        # then take the connections. Connections made before the app is ready wait in the backlog.
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def serve(app: str, options: dict[str, Any]) -> None:
    """What `uvicorn.run(app, ...)` does, on a socket bound before the app starts, and with
    the forwarding supervisor when `options["workers"]` > 1. Raises PortInUse."""
    config = Config(app, **options)
    server = Server(config=config)  # as uvicorn.run: configures logging before anything logs
    sock = bind(config.host, config.port)
    # uvicorn announces the address only for sockets it bound itself; keep its line
    address = "%s://[%s]:%d" if ":" in config.host else "%s://%s:%d"
    logging.getLogger("uvicorn.error").info(f"Uvicorn running on {address} (Press CTRL+C to quit)",
                                            "https" if config.is_ssl else "http", config.host, sock.getsockname()[1])
    try:
        if config.workers > 1:
            ForwardingMultiprocess(config, sockets=[sock]).run()
        else:
            server.run(sockets=[sock])
    finally:
        sock.close()
