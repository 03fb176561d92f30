"""Live demand marks, on both backends: what each process asks the sync lane to leave
free for live POS calls, summed per tenant across processes while valid."""

from __future__ import annotations

import sqlite3
import time

from edge.store import Store
from edge.store.redis import RedisStore
from edge.store.sqlite import SqliteStore


def clock() -> float:
    # The wall clock, not a fixed one: Redis expires the marks' key at real times.
    return time.time()


async def stored_owners(store: Store, tenant: str) -> set[str]:
    """The owners whose marks the store still holds (expired or not)."""
    if isinstance(store, SqliteStore):
        def read(c: sqlite3.Connection) -> set[str]:
            return {r[0] for r in c.execute("SELECT owner FROM live_marks WHERE tenant=?", (tenant,))}

        return await store._run(read)
    assert isinstance(store, RedisStore)
    return {k.decode() for k in await store._raw.hkeys(store._live_key(tenant))}


async def test_marks_of_two_processes_add_up_until_each_runs_out(store: Store, tenant: str) -> None:
    now = clock()
    await store.mark_live(tenant, "p1", 2, now + 10, now)
    await store.mark_live(tenant, "p2", 3, now + 20, now)
    assert await store.live_demand([tenant], now + 1) == {tenant: 5}
    assert await store.live_demand([tenant], now + 10) == {tenant: 3}  # p1's ran out (until is not after now)
    assert await store.live_demand([tenant], now + 15) == {tenant: 3}
    assert await store.live_demand([tenant], now + 20) == {tenant: 0}


async def test_a_later_mark_replaces_the_owners_earlier_one_and_zero_withdraws_it(store: Store, tenant: str) -> None:
    now = clock()
    await store.mark_live(tenant, "p1", 2, now + 10, now)
    await store.mark_live(tenant, "p2", 1, now + 10, now)
    await store.mark_live(tenant, "p1", 4, now + 30, now + 1)  # more room, for longer
    assert await store.live_demand([tenant], now + 2) == {tenant: 5}
    assert await store.live_demand([tenant], now + 20) == {tenant: 4}
    await store.mark_live(tenant, "p1", 1, now + 5, now + 2)  # less, and shorter: replaced, not maxed
    assert await store.live_demand([tenant], now + 3) == {tenant: 2}
    await store.mark_live(tenant, "p1", 0, now + 30, now + 3)
    assert await store.live_demand([tenant], now + 4) == {tenant: 1}
    assert await stored_owners(store, tenant) == {"p2"}


async def test_tenants_are_separate_and_one_call_answers_for_all(store: Store, tenant: str) -> None:
    now = clock()
    other, idle = f"{tenant}-b", f"{tenant}-idle"
    await store.mark_live(tenant, "p1", 2, now + 10, now)
    await store.mark_live(other, "p1", 7, now + 10, now)
    assert await store.live_demand([tenant, other, idle], now + 1) == {tenant: 2, other: 7, idle: 0}
    await store.mark_live(other, "p1", 0, now + 10, now + 1)
    assert await store.live_demand([tenant, other], now + 2) == {tenant: 2, other: 0}
    assert await store.live_demand([], now) == {}


async def test_marks_long_expired_are_forgotten(store: Store, tenant: str) -> None:
    now = clock()
    await store.mark_live(tenant, "gone", 3, now + 1, now)  # its process died: no more marks, no withdrawal
    await store.mark_live(tenant, "p2", 1, now + 200, now + 100)
    assert await store.live_demand([tenant], now + 100) == {tenant: 1}
    assert await stored_owners(store, tenant) == {"p2"}


async def test_the_redis_key_lives_until_a_minute_after_its_latest_mark(redis_store: RedisStore, tenant: str) -> None:
    store = redis_store
    now = clock()
    key = store._live_key(tenant)
    assert key == f"{store._tenant_prefix(tenant)}:live"  # in the tenant's hash slot, with its queue
    await store.mark_live(tenant, "p1", 2, now + 300, now)
    await store.mark_live(tenant, "p2", 1, now + 10, now)  # a shorter mark does not cut p1's
    ttl = await store._raw.pttl(key) / 1000
    assert 355 < ttl <= 360 + 1, ttl
    await store.mark_live(tenant, "p1", 0, now, now)
    ttl = await store._raw.pttl(key) / 1000
    assert 65 < ttl <= 70 + 1, ttl  # now p2's mark is the latest
    await store.mark_live(tenant, "p2", 0, now, now)
    assert await store._raw.exists(key) == 0
