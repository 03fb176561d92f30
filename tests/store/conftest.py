"""The store under test: a real SQLite file and a real Redis (every store test runs on both)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from edge.store import Store, open_store
from edge.store.redis import RedisStore
from edge.store.sqlite import SqliteStore


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path}/state.db" if request.param == "sqlite" else request.getfixturevalue("redis_url")
    s = open_store(url)
    await s.open()
    yield s
    await s.close()


@pytest.fixture
def tenant() -> str:
    # Unique per test: the Redis database is shared by the whole session.
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def twin(store: Store) -> AsyncIterator[Store]:
    """A second store on the same SQLite file or Redis database (another process, in effect)."""
    if isinstance(store, SqliteStore):
        other: Store = open_store(f"sqlite:///{store.path}")
    else:
        assert isinstance(store, RedisStore)
        other = open_store(store.url)
    await other.open()
    yield other
    await other.close()


@pytest.fixture
async def redis_store(request: pytest.FixtureRequest) -> AsyncIterator[RedisStore]:
    """The Redis store alone, for what only Redis has (its keys' expiry, its second index)."""
    s = open_store(request.getfixturevalue("redis_url"))
    assert isinstance(s, RedisStore)
    await s.open()
    yield s
    await s.close()
