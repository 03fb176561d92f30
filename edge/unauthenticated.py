"""A rate limit on requests that fail before a device is known, per client address.

The per-device limit (plugins/rate_limit.py) counts authenticated tills. A client
that sends bad tokens, names no tenant, or keeps failing registrations is not a
device yet: its failures are counted here per address (`gateway.unauthenticated_rate_limit`,
moving window, in the same counter store), and past the limit each further
failure is answered 429 instead. Only failures are counted: a till with a valid
token behind the same address (a shop's NAT) is never refused for them.
"""

from __future__ import annotations

import math
import time
from typing import Any

from limits import parse
from limits.aio.storage import MovingWindowSupport, Storage
from starlette.responses import Response

from edge.problems import Problem, problem_response

_BACKOFF_SECONDS = 5.0


class UnauthenticatedLimit:
    """Counts failed, device-less requests per client address; 429 past the limit."""

    def __init__(self, storage: Storage, limit: str, log: Any, name: str = "unauthenticated") -> None:
        item = parse(limit)
        if not isinstance(storage, MovingWindowSupport):
            raise TypeError(f"{type(storage).__name__} has no moving-window support")
        self._storage = storage
        self._quota = item.amount
        self._window = int(item.get_expiry())
        self._prefix = name + "/" + item.key_for() + "/"  # `name`: another counter (e.g. admin logins)
        self._log = log
        self._paused_until = 0.0

    async def refused(self, ctx: Any, key: str | None = None) -> Problem | None:
        """Count one failure of this client (or of `key`: a login name); the 429 to answer
        instead once it is over the limit."""
        if self._paused_until and time.monotonic() < self._paused_until:
            return None
        whose = "from this address" if key is None else "for this login"
        key = self._prefix + (ctx.forwarded_for if key is None else key)
        try:
            allowed = await self._storage.acquire_entry(key, self._quota, self._window)
            if allowed:
                return None
            oldest, _ = await self._storage.get_moving_window(key, self._quota, self._window)
        except Exception as exc:  # fail open, loudly: the failure itself is still answered
            self._paused_until = time.monotonic() + _BACKOFF_SECONDS
            self._log.warning("rate_limit_store_unavailable", error=type(exc).__name__, detail=str(exc)[:200],
                              fail_open=True)
            return None
        self._paused_until = 0.0
        retry = str(max(1, math.ceil(oldest + self._window - time.time())))
        return Problem("rate_limited", f"more than {self._quota} failed requests {whose} in "
                       f"{self._window} s; retry in {retry} s", headers={"Retry-After": retry})

    async def answer(self, ctx: Any, response: Response) -> Response:
        """`response` (a refusal made before a device was known), or the 429 replacing it."""
        if response.status_code == 429:
            return response  # a rate limit already: not counted twice
        problem = await self.refused(ctx)
        if problem is None:
            return response
        return problem_response(problem, ctx.request_id)
