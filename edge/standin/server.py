"""Serving the stand-in under uvicorn on a loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from edge.standin.app import StandIn, build_app


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandInServer:
    """Start/stop a stand-in on 127.0.0.1 (stop it to make "ERPNext down")."""

    def __init__(self, standin: StandIn, port: int | None = None) -> None:
        self.standin = standin
        self.port = port or free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stand-in's origin."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Serve until stop(); returns once the port accepts connections."""
        config = uvicorn.Config(build_app(self.standin), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("stand-in did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None
