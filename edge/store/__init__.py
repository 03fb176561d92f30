"""State store: one interface, SQLite (embedded default) and Redis (scaled out) backends."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

from edge.store.base import (
    Device,
    DeviceBlocked,
    DeviceProofRequired,
    EnrollmentCodeInvalid,
    IdempotencyRecord,
    Store,
    StoreUnusable,
)


def open_store(url: str) -> Store:
    """Build the backend named by `url` (`sqlite:///path` or `redis://host:port/db`).

    The store is not connected yet: call `await store.open()`.
    """
    if url.startswith("sqlite:///"):
        from edge.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://")):
        from edge.store.redis import RedisStore

        return RedisStore(url)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")


async def wait_for_store(url: str, wait: float) -> str | None:
    """Open and ping the store, retrying with back-off for up to `wait` seconds.
    Returns None when it answers, else what went wrong the last time. StoreUnusable
    is raised at once: waiting would not change the answer."""
    deadline = time.monotonic() + wait
    delay = 0.25
    while True:
        store = open_store(url)
        try:
            await store.open()
            await store.ping()
            return None
        except StoreUnusable:
            raise
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):
                await store.close()
        if time.monotonic() + delay > deadline:
            return error
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def redacted(url: str) -> str:
    """`url` without a password (for messages and logs)."""
    return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


__all__ = ["Device", "DeviceBlocked", "DeviceProofRequired", "EnrollmentCodeInvalid", "IdempotencyRecord", "Store",
           "StoreUnusable", "open_store", "redacted", "wait_for_store"]
