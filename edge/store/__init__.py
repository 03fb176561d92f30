"""State store: one interface, SQLite (embedded default) and Redis (scaled out) backends."""

from __future__ import annotations

from edge.store.base import Device, DeviceBlocked, IdempotencyRecord, Store


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


__all__ = ["Device", "DeviceBlocked", "IdempotencyRecord", "Store", "open_store"]
