"""A circuit breaker per tenant: stop sending to an ERPNext that is down, then probe.

Closed, every call goes. After `failures` consecutive failed calls (no connection, a
timeout, 429, 502-504: the site is down or drowning, not the document wrong) it opens:
calls are refused at once for `open_for` seconds, so a till's sale answers 503 in
milliseconds (the till queues it offline) instead of after a timeout, and a queue that
drains does not spend its attempts. Then it is half-open: one call goes through as the
probe while the rest are still refused; the probe's success closes the breaker, its
failure opens it again for twice as long (up to `max_open_for`).

One breaker per tenant and process: each replica finds out for itself, which takes
`failures` calls, and keeps no shared state that could itself be down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from edge.config import BreakerConfig

State = Literal["closed", "open", "half_open"]
# How the breaker's state is exported (pos_edge_erpnext_breaker_state).
STATE_VALUE: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}


class Breaker:
    """One tenant's breaker (see the module docstring). Not thread-safe: one event loop."""

    def __init__(self, settings: BreakerConfig, on_change: Callable[[State, State], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.state: State = "closed"
        self._on_change = on_change
        self._clock = clock
        self._failures = 0  # consecutive, while closed
        self._open_until = 0.0
        self._back_off = settings.open_for
        self._probing = False

    def admit(self) -> float | None:
        """Take a call: None when it may go (report it with success() or failure(), or
        release() when it ended without telling), else the seconds until one may."""
        if self.state == "closed":
            return None
        now = self._clock()
        if self.state == "open":
            if now < self._open_until:
                return self._open_until - now
            self._to("half_open")
        if self._probing:
            return self.settings.open_for
        self._probing = True
        return None

    def blocked(self) -> float | None:
        """Like admit(), without taking the probe: the seconds until a call may go, or None."""
        if self.state == "closed":
            return None
        wait = self._open_until - self._clock()
        if self.state == "open" and wait > 0:
            return wait
        return self.settings.open_for if self._probing else None

    def success(self) -> None:
        """ERPNext answered (whatever it said about the document)."""
        self._failures = 0
        if self.state == "half_open":
            self._probing = False
            self._back_off = self.settings.open_for
            self._to("closed")

    def failure(self) -> None:
        """ERPNext could not be reached, timed out or said it was overloaded or down."""
        if self.state == "half_open":
            self._probing = False
            self._back_off = min(self._back_off * 2, self.settings.max_open_for)
            self._open()
        elif self.state == "closed":
            self._failures += 1
            if self._failures >= self.settings.failures:
                self._back_off = self.settings.open_for
                self._open()

    def release(self) -> None:
        """A call ended without an answer either way (cancelled): a probe lets another go."""
        if self.state == "half_open":
            self._probing = False

    def retry_after(self) -> float:
        """Seconds until a call may go again (0 when closed)."""
        return self.blocked() or 0.0

    def _open(self) -> None:
        self._failures = 0
        self._open_until = self._clock() + self._back_off
        self._to("open")

    def _to(self, state: State) -> None:
        before, self.state = self.state, state
        if self._on_change is not None and before != state:
            self._on_change(before, state)
