"""The store under test: a real SQLite file and a real Redis (every store test runs on both)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from edge.store import Store, open_store


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
