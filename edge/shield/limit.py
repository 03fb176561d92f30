"""How many postings a tenant's ERPNext gets at once: a limit that finds the knee.

ERPNext serves W documents at a time (its gunicorn workers) and queues the rest. Below
W postings in flight it idles; above, every extra posting only waits in its queue,
and a live sale arriving then waits behind all of them. The knee is where a posting's
latency starts to grow with the number in flight.

The limit is AIMD on latency, in the spirit of TCP Vegas as Netflix's concurrency-limits
uses it (and Envoy's adaptive concurrency filter). Postings are timed in windows (at
least MIN_WINDOW samples, or twice the limit). The quickest recent window's mean is
the latency without a queue; a window's mean above it says how many postings waited
in ERPNext's queue: queue = limit * (1 - quickest / mean). A queue of `max_queue`
or more (one posting, by default: W + 1 in flight is already one too many) drops the
limit by a tenth (at least one). A window with less than half that, in which the limit
was used up, lets the limit grow by one: at once while it has never seen a queue (a
slow start), then only after PROBE_AFTER such windows, so that it spends little time
above the knee looking for more room. Once it has seen a queue, it does not probe
while live calls are being served (a probe above the knee would be paid for by a till
in front of a customer); it only climbs back to the level it usually held lately
without one.
Timeouts and overload answers halve it.
"""

from __future__ import annotations

import statistics
from collections import deque

MIN_WINDOW = 8  # samples: fewer make one slow posting look like queueing
PROBE_AFTER = 3  # windows without queueing before the limit grows again
BASELINE_WINDOWS = 30  # how many recent windows' means the no-queue latency is taken from


class AdaptiveLimit:
    """One tenant's limit on postings in flight (see the module docstring)."""

    def __init__(self, low: int, high: int, max_queue: float, adaptive: bool = True) -> None:
        self.low, self.high, self.max_queue, self.adaptive = low, high, max_queue, adaptive
        self.limit = low if adaptive else high
        self._samples: list[float] = []
        self._used = False  # the limit was reached during the window
        self._live = False  # a live call was being served during the window
        self._means: deque[float] = deque(maxlen=BASELINE_WINDOWS)
        self._fine: deque[int] = deque(maxlen=BASELINE_WINDOWS)  # limits of recent windows without a queue
        self._good = 0
        self._slow_start = True
        self.trajectory: deque[tuple[int, float]] = deque(maxlen=1000)  # (limit, window mean): for benchmarks

    def configure(self, low: int, high: int, max_queue: float, adaptive: bool) -> None:
        """New bounds from a reloaded configuration; the limit learnt so far is kept within them."""
        self.low, self.high, self.max_queue = low, high, max_queue
        if adaptive != self.adaptive:
            self.adaptive = adaptive
            self.limit = low if adaptive else high
            self._slow_start = True
        self.limit = min(max(self.limit, low), high) if adaptive else high

    def sample(self, latency: float, in_flight: int, live: bool) -> None:
        """One posting took `latency` seconds; `in_flight` postings (live calls included)
        were under way when it started; `live` tells whether live calls were."""
        if not self.adaptive:
            return
        self._samples.append(latency)
        self._used = self._used or in_flight >= self.limit
        self._live = self._live or live
        if len(self._samples) >= max(MIN_WINDOW, 2 * self.limit):
            self._close_window()

    def overload(self) -> None:
        """ERPNext timed out or said it was overloaded: halve the limit."""
        if self.adaptive:
            self.limit = max(self.low, self.limit // 2)
            self._slow_start = False
            self._reset_window()

    def _close_window(self) -> None:
        # the mean, not the median: at one posting above the knee only some of them wait,
        # and the median hides them
        mean = statistics.fmean(self._samples)
        quickest = min([*self._means, mean])
        self._means.append(mean)
        queue = self.limit * (1 - quickest / mean) if mean > 0 else 0.0
        if queue >= self.max_queue:
            self.limit = max(self.low, self.limit - max(1, self.limit // 10))
            self._slow_start = False
            self._good = 0
        elif queue < self.max_queue / 2 and self._used:
            self._fine.append(self.limit)
            # while live calls are served, only back to the level it usually held without a queue
            # lately (the median: the probes above it were the exceptions)
            if self._slow_start or not self._live or self.limit < statistics.median_low(self._fine):
                self._good += 1
            if self._good and (self._slow_start or self._good >= PROBE_AFTER):
                self.limit = min(self.high, self.limit + 1)
                self._good = 0
        self.trajectory.append((self.limit, mean))
        self._reset_window()

    def _reset_window(self) -> None:
        self._samples = []
        self._used = False
        self._live = False
