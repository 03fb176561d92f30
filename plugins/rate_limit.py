"""Per-device rate limiting with the `limits` library (moving window).

Keyed by (tenant, device) with the tenant's limit; before a device is known
(registration) the key is the client address. Every response carries the IETF
draft `RateLimit-Policy` / `RateLimit` headers (draft-ietf-httpapi-ratelimit-
headers-08 and later); a 429 also carries `Retry-After`.

If the counter store is unreachable the request passes (fail-open: a Redis
outage must not stop sales) and the failure is logged; further attempts are
skipped for a few seconds so that every request does not wait on a dead store.
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

from limits import RateLimitItem, parse
from limits.aio.storage import MovingWindowSupport
from pydantic import BaseModel, Field
from starlette.responses import Response

from edge.chain import Context, Services
from edge.config import Rate
from edge.problems import Problem, problem_response

_BACKOFF_SECONDS = 5.0


class RateLimitPlugin:
    """Counts requests per (tenant, device) and answers 429 past the limit."""

    name: ClassVar[str] = "rate_limit"
    priority: ClassVar[int] = 5_000

    class Config(BaseModel):
        """`rate_limit: 120/minute` on a tenant (or under `defaults:`)."""

        rate_limit: Rate = Field(default="120/minute", description="per device, `N/second|minute|hour|day`")

    def __init__(self, config: Any, services: Services) -> None:
        item: RateLimitItem = parse(config.rate_limit)
        storage = services.rate_limit_storage
        if not isinstance(storage, MovingWindowSupport):
            raise TypeError(f"{type(storage).__name__} has no moving-window support")
        # limits' moving-window storage interface, called directly: the strategy
        # layer above it rebuilt the same key twice per request.
        self._storage = storage
        self._window = int(item.get_expiry())
        self._quota = item.amount
        self._key_prefix = item.key_for() + "/"
        self._policy = (b"ratelimit-policy", b'"default";q=%d;w=%d' % (self._quota, self._window))
        self._log = services.log
        self._paused_until = 0.0

    async def on_request(self, ctx: Context) -> Response | None:
        if self._paused_until and time.monotonic() < self._paused_until:
            return None
        device = ctx.device_id
        tenant = ctx.tenant.key if ctx.tenant else "-"
        key = f"{self._key_prefix}{tenant}/" + ("d:" + device if device else "ip:" + ctx.forwarded_for)
        try:
            allowed = await self._storage.acquire_entry(key, self._quota, self._window)
            oldest, used = await self._storage.get_moving_window(key, self._quota, self._window)
        except Exception as exc:  # any storage failure: fail open, loudly
            self._paused_until = time.monotonic() + _BACKOFF_SECONDS
            self._log.warning(
                "rate_limit_store_unavailable", error=type(exc).__name__, detail=str(exc)[:200], fail_open=True
            )
            return None
        self._paused_until = 0.0
        remaining = max(0, self._quota - used)
        reset = max(0, math.ceil(oldest + self._window - time.time()))
        state = (b"ratelimit", b'"default";r=%d;t=%d' % (remaining, reset))
        if not allowed:
            retry = str(max(1, reset))
            problem = Problem(
                "rate_limited",
                f"more than {self._quota} requests in {self._window} s; retry in {retry} s",
                headers={"Retry-After": retry, "RateLimit-Policy": self._policy[1].decode(), "RateLimit": state[1].decode()},
            )
            return problem_response(problem, ctx.request_id)
        ctx.response_headers.append(self._policy)
        ctx.response_headers.append(state)
        return None
