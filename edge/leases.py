"""Keeping a claim alive while the work it guards runs.

A claim in the store (an idempotency key, a posting) has a short lease, so that a
crashed holder's claim is taken over within seconds; the live holder renews it every
third of the lease for as long as it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any


@contextlib.asynccontextmanager
async def renewing(renew: Callable[[float], Awaitable[bool]], lease: float, log: Any, **about: Any) -> AsyncIterator[None]:
    """Call `renew(until)` every `lease / 3` seconds until the block ends; log (with
    `about`) a claim lost or a renewal that failed."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(lease / 3)
            try:
                if not await renew(time.time() + lease):
                    log.warning("claim_lost", **about)
                    return
            except Exception as exc:  # the store is away: try again; the lease may still hold
                log.warning("claim_renew_failed", error=type(exc).__name__, **about)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
