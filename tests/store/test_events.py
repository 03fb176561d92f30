"""The event log (EventLog) on both backends: order and ids, waiting, trimming, lost readers,
tenants apart, and several store instances (processes) appending at once."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from edge.store import Store, events, open_store

NOW = 1_700_000_000.0


def _key(event_id: str) -> tuple[int, ...]:
    """An id's order: decimal on SQLite, `<ms>-<n>` on Redis (opaque to callers, but increasing)."""
    return tuple(int(part) for part in event_id.split("-"))


def _twin(store: Any) -> Store:
    """Another store instance on the same data, as another process would open it."""
    return open_store(f"sqlite:///{store.path}" if hasattr(store, "path") else store.url)


async def _append(store: Store, tenant: str, n: int, kind: str = "prices.changed") -> list[str]:
    return [await store.ev_append(tenant, kind, f"s{i}", b'{"n": %d}' % i, NOW + i) for i in range(n)]


async def test_events_are_read_in_order_with_increasing_ids(store: Store, tenant: str) -> None:
    assert await store.ev_last(tenant) == ""
    assert await store.ev_read(tenant, "", 10, 0) == ([], True)
    ids = await _append(store, tenant, 5)
    assert len(set(ids)) == 5 and [_key(i) for i in ids] == sorted(_key(i) for i in ids)
    assert await store.ev_last(tenant) == ids[-1]

    got, ok = await store.ev_read(tenant, "", 10, 0)
    assert ok
    assert [(e.id, e.kind, e.scope, e.data) for e in got] == [
        (ids[i], "prices.changed", f"s{i}", b'{"n": %d}' % i) for i in range(5)]
    got, ok = await store.ev_read(tenant, ids[1], 10, 0)
    assert ok and [e.id for e in got] == ids[2:]
    assert await store.ev_read(tenant, ids[-1], 10, 0) == ([], True)  # caught up


async def test_limit_pages_through_the_log(store: Store, tenant: str) -> None:
    ids = await _append(store, tenant, 7)
    seen: list[str] = []
    after = ""
    while True:
        got, ok = await store.ev_read(tenant, after, 3, 0)
        assert ok and len(got) <= 3
        if not got:
            break
        seen += [e.id for e in got]
        after = got[-1].id
    assert seen == ids
    assert await store.ev_read(tenant, "", 0, 0) == ([], True)


async def test_data_is_binary_safe(store: Store, tenant: str) -> None:
    blob = bytes(range(256)) + b"\x00\r\n\xff"
    await store.ev_append(tenant, "config.changed", "branch:main", blob, NOW)
    await store.ev_append(tenant, "device.blocked", "", b"", NOW)
    got, _ = await store.ev_read(tenant, "", 10, 0)
    assert [(e.kind, e.scope, e.data) for e in got] == [("config.changed", "branch:main", blob), ("device.blocked", "", b"")]


async def test_tenants_are_apart(store: Store, tenant: str) -> None:
    other = tenant + "x"
    mine = await _append(store, tenant, 3)
    theirs = await _append(store, other, 2, kind="config.changed")
    assert [e.id for e in (await store.ev_read(tenant, "", 10, 0))[0]] == mine
    assert [(e.id, e.kind) for e in (await store.ev_read(other, "", 10, 0))[0]] == [(i, "config.changed") for i in theirs]
    assert await store.ev_last(other) == theirs[-1]


async def test_a_waiting_read_returns_as_soon_as_an_event_comes(store: Store, tenant: str) -> None:
    last = (await _append(store, tenant, 1))[0]

    async def later() -> str:
        await asyncio.sleep(0.3)
        return await store.ev_append(tenant, "prices.changed", "", b"{}", NOW)

    started = time.monotonic()
    (got, ok), new = await asyncio.gather(store.ev_read(tenant, last, 10, 5.0), later())
    took = time.monotonic() - started
    assert ok and [e.id for e in got] == [new]
    assert 0.25 < took < 1.5, took  # woken by the append, well before the wait ran out


async def test_a_waiting_read_sees_events_of_another_store_instance(store: Store, tenant: str) -> None:
    other = _twin(store)
    await other.open()
    try:
        async def later() -> str:
            await asyncio.sleep(0.2)
            return await other.ev_append(tenant, "prices.changed", "", b"{}", NOW)

        started = time.monotonic()
        (got, ok), new = await asyncio.gather(store.ev_read(tenant, "", 10, 5.0), later())  # an empty log
        assert ok and [e.id for e in got] == [new] and time.monotonic() - started < 1.5
    finally:
        await other.close()


async def test_a_wait_with_nothing_coming_ends_empty(store: Store, tenant: str) -> None:
    last = (await _append(store, tenant, 1))[0]
    started = time.monotonic()
    assert await store.ev_read(tenant, last, 10, 0.5) == ([], True)
    assert 0.45 < time.monotonic() - started < 2.0


async def test_a_trimmed_after_is_reported_lost(store: Store, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "EVENTS_KEPT", 5)
    ids = await _append(store, tenant, 20)
    got, ok = await store.ev_read(tenant, "", 100, 0)
    assert ok and [e.id for e in got] == ids[-5:]  # "" starts at the oldest kept
    for lost in (ids[0], ids[10], ids[13]):  # events after it were dropped
        assert await store.ev_read(tenant, lost, 100, 5.0) == ([], False)  # at once, no wait
    got, ok = await store.ev_read(tenant, ids[14], 100, 0)  # the newest dropped: nothing lost after it
    assert ok and [e.id for e in got] == ids[15:]
    got, ok = await store.ev_read(tenant, ids[16], 100, 0)
    assert ok and [e.id for e in got] == ids[17:]
    assert await store.ev_last(tenant) == ids[-1]


async def test_the_default_log_keeps_what_it_promises(store: Store, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "EVENTS_KEPT", 300)  # trimmed every events.trim_step(300) = 3 appends
    ids = await _append(store, tenant, 320)
    got, ok = await store.ev_read(tenant, "", 1000, 0)
    assert ok and 300 <= len(got) < 303 and [e.id for e in got] == ids[-len(got):]
    assert (await store.ev_read(tenant, ids[0], 10, 0))[1] is False


@pytest.mark.parametrize("after", ["garbage", "-1", "1.5", "1-2-3", " 1", "99999999999999999999999-0"])
async def test_an_after_that_is_no_id_is_reported_lost(store: Store, tenant: str, after: str) -> None:
    await _append(store, tenant, 2)
    assert await store.ev_read(tenant, after, 10, 5.0) == ([], False)


async def test_an_after_beyond_the_log_is_reported_lost(store: Store, tenant: str) -> None:
    # An id this log never gave (e.g. a till's Last-Event-ID from a store that was replaced).
    ids = await _append(store, tenant, 2)
    beyond = "999999" if "-" not in ids[-1] else "99999999999999-0"
    assert await store.ev_read(tenant, beyond, 10, 0) == ([], False)
    assert await store.ev_read(tenant + "x", ids[0], 10, 0) == ([], False)  # an empty log holds no id


async def test_concurrent_appends_from_two_instances_lose_nothing(store: Store, tenant: str) -> None:
    other = _twin(store)
    await other.open()
    try:
        async def many(s: Store, who: str) -> list[str]:
            return [await s.ev_append(tenant, "k", who, b"%d" % i, NOW) for i in range(40)]

        mine, theirs = await asyncio.gather(many(store, "a"), many(other, "b"))
    finally:
        await other.close()
    for ids in (mine, theirs):
        assert [_key(i) for i in ids] == sorted(_key(i) for i in ids)
    got, ok = await store.ev_read(tenant, "", 1000, 0)
    assert ok and len(got) == 80 and len({e.id for e in got}) == 80
    assert [_key(e.id) for e in got] == sorted(_key(e.id) for e in got)
    assert sorted(e.id for e in got) == sorted(mine + theirs)
    for who, ids in (("a", mine), ("b", theirs)):
        assert [(e.id, e.data) for e in got if e.scope == who] == [(i, b"%d" % n) for n, i in enumerate(ids)]


async def test_many_waiting_readers_are_all_woken(store: Store, tenant: str) -> None:
    last = (await _append(store, tenant, 1))[0]
    readers = [asyncio.create_task(store.ev_read(tenant, last, 10, 5.0)) for _ in range(30)]
    await asyncio.sleep(0.3)
    started = time.monotonic()
    await store.ping()  # the store's own commands are not held up by the waiting readers
    new = await store.ev_append(tenant, "prices.changed", "", b"{}", NOW)
    assert time.monotonic() - started < 0.5
    results = await asyncio.gather(*readers)
    assert time.monotonic() - started < 1.5
    assert all(ok and [e.id for e in got] == [new] for got, ok in results)


async def test_a_cancelled_wait_leaves_the_store_usable(store: Store, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A till that disconnects cancels its read mid-wait; with one blocking connection, the
    # next wait must get that connection back clean (no stale reply of the cancelled read).
    from edge.store import redis_events

    monkeypatch.setattr(redis_events, "EV_BLOCKING_CONNECTIONS", 1)
    s = _twin(store)
    await s.open()
    try:
        first = await s.ev_append(tenant, "k", "", b"1", NOW)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(s.ev_read(tenant, first, 10, 5.0), 0.3)
        second = await s.ev_append(tenant, "k", "", b"2", NOW)
        got, ok = await s.ev_read(tenant, second, 10, 0.3)
        assert (got, ok) == ([], True)
        third = await s.ev_append(tenant, "k", "", b"3", NOW)
        got, ok = await asyncio.wait_for(s.ev_read(tenant, second, 10, 5.0), 2.0)
        assert ok and [(e.id, e.data) for e in got] == [(third, b"3")]
    finally:
        await s.close()


async def test_an_append_in_the_same_process_wakes_a_waiting_read_at_once(
        store: Store, tenant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite polls for other processes' appends; this process's own need not wait for a poll
    from edge.store import sqlite_events

    monkeypatch.setattr(sqlite_events, "POLL_INTERVAL", 30.0)
    reader = asyncio.create_task(store.ev_read(tenant, "", 10, 30.0))
    await asyncio.sleep(0.2)  # the reader has looked once and waits
    t0 = time.monotonic()
    new = await store.ev_append(tenant, "products.changed", "", b"{}", NOW)
    got, ok = await asyncio.wait_for(reader, 10)
    assert ok and [e.id for e in got] == [new]
    assert time.monotonic() - t0 < 10  # woken by the append, not by the (30 s) poll
