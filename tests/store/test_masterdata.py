"""The master data store's contract (edge/store/masterdata.py), run against both backends:
a real SQLite file and a real Redis."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from edge.store import Store
from edge.store.masterdata import CollectionState, MasterRow

NOW = 1_800_000_000.0
P = "products"


def doc(name: str, **fields: object) -> bytes:
    return json.dumps({"name": name, **fields}, ensure_ascii=False).encode()


async def page_all(store: Store, tenant: str, collection: str = P, scope: str = "", *, tombstones: bool = True,
                   after: int = 0, size: int = 1000) -> list[MasterRow]:
    return await store.md_page(tenant, collection, scope, after, size, tombstones)


async def test_a_collection_never_written_is_empty(store: Store, tenant: str) -> None:
    assert await store.md_state(tenant, P, "") == CollectionState()
    assert await page_all(store, tenant) == []


async def test_apply_gives_each_change_the_next_seq(store: Store, tenant: str) -> None:
    seq = await store.md_apply(tenant, P, "", [("A", doc("A")), ("B", doc("B"))], [], "c1", NOW)
    assert seq == 2
    assert await page_all(store, tenant) == [MasterRow("A", 1, False, doc("A")), MasterRow("B", 2, False, doc("B"))]
    assert await store.md_apply(tenant, P, "", [("C", doc("C")), ("A", doc("A", v=2))], [], "c2", NOW + 1) == 4
    assert await page_all(store, tenant) == [
        MasterRow("B", 2, False, doc("B")), MasterRow("C", 3, False, doc("C")), MasterRow("A", 4, False, doc("A", v=2))]
    state = await store.md_state(tenant, P, "")
    assert (state.seq, state.source_cursor, state.refreshed_at, state.live) == (4, "c2", NOW + 1, 3)


async def test_nothing_changed_takes_no_seq(store: Store, tenant: str) -> None:
    await store.md_apply(tenant, P, "", [("A", doc("A")), ("B", doc("B"))], [], "c1", NOW)
    # the same bytes again, a missing name deleted: no change, but the cursor and time move on
    assert await store.md_apply(tenant, P, "", [("A", doc("A")), ("B", doc("B"))], ["nope"], "c2", NOW + 1) == 2
    state = await store.md_state(tenant, P, "")
    assert (state.seq, state.source_cursor, state.refreshed_at, state.live) == (2, "c2", NOW + 1, 2)
    assert [r.seq for r in await page_all(store, tenant)] == [1, 2]

    assert await store.md_apply(tenant, P, "", [], ["A"], "c3", NOW + 2) == 3
    assert await store.md_apply(tenant, P, "", [], ["A", "A"], "c4", NOW + 3) == 3  # already a tombstone
    assert await page_all(store, tenant) == [MasterRow("B", 2, False, doc("B")), MasterRow("A", 3, True, b"")]
    assert (await store.md_state(tenant, P, "")).live == 1


async def test_a_deleted_row_comes_back_with_a_new_seq(store: Store, tenant: str) -> None:
    await store.md_apply(tenant, P, "", [("A", doc("A")), ("B", doc("B"))], [], "", NOW)
    await store.md_apply(tenant, P, "", [], ["A"], "", NOW)
    # the same bytes it had before it was deleted: still a change
    assert await store.md_apply(tenant, P, "", [("A", doc("A"))], [], "", NOW) == 4
    assert await page_all(store, tenant) == [MasterRow("B", 2, False, doc("B")), MasterRow("A", 4, False, doc("A"))]
    assert (await store.md_state(tenant, P, "")).live == 2


async def test_a_name_in_both_lists_is_an_upsert(store: Store, tenant: str) -> None:
    await store.md_apply(tenant, P, "", [("A", doc("A"))], [], "", NOW)
    assert await store.md_apply(tenant, P, "", [("A", doc("A", v=2)), ("B", doc("B"))], ["A", "B"], "", NOW) == 3
    assert await page_all(store, tenant) == [MasterRow("A", 2, False, doc("A", v=2)), MasterRow("B", 3, False, doc("B"))]
    assert await store.md_apply(tenant, P, "", [("A", doc("A", v=2))], ["A"], "", NOW) == 3  # unchanged, not deleted
    assert (await store.md_state(tenant, P, "")).live == 2


async def test_a_name_given_twice_is_written_once_with_the_last_data(store: Store, tenant: str) -> None:
    assert await store.md_apply(tenant, P, "", [("A", doc("A")), ("A", doc("A", v=2))], [], "", NOW) == 1
    assert await page_all(store, tenant) == [MasterRow("A", 1, False, doc("A", v=2))]


async def test_pages_run_by_seq_from_after_up_to_limit(store: Store, tenant: str) -> None:
    await store.md_apply(tenant, P, "", [(f"n{i}", doc(f"n{i}")) for i in range(10)], [], "", NOW)
    first = await store.md_page(tenant, P, "", 0, 4, False)
    assert [(r.name, r.seq) for r in first] == [(f"n{i}", i + 1) for i in range(4)]
    second = await store.md_page(tenant, P, "", first[-1].seq, 4, False)
    assert [r.name for r in second] == ["n4", "n5", "n6", "n7"]
    assert [r.name for r in await store.md_page(tenant, P, "", 8, 4, False)] == ["n8", "n9"]
    assert await store.md_page(tenant, P, "", 10, 4, False) == []
    assert await store.md_page(tenant, P, "", 0, 0, True) == []


async def test_tombstones_only_when_asked_and_a_page_is_still_full(store: Store, tenant: str) -> None:
    await store.md_apply(tenant, P, "", [(f"old{i}", doc(f"old{i}")) for i in range(5)], [], "", NOW)  # 1-5
    await store.md_apply(tenant, P, "", [], [f"old{i}" for i in range(5)], "", NOW)  # tombstones at 6-10
    await store.md_apply(tenant, P, "", [(f"new{i}", doc(f"new{i}")) for i in range(5)], [], "", NOW)  # 11-15
    await store.md_apply(tenant, P, "", [], ["new1", "new3"], "", NOW)  # 16, 17

    with_tombstones = await store.md_page(tenant, P, "", 0, 3, True)
    assert [(r.name, r.seq, r.deleted, r.data) for r in with_tombstones] == [
        ("old0", 6, True, b""), ("old1", 7, True, b""), ("old2", 8, True, b"")]
    # five tombstones lie before the first live row: the page still holds three live rows
    live = await store.md_page(tenant, P, "", 0, 3, False)
    assert [(r.name, r.seq, r.deleted) for r in live] == [("new0", 11, False), ("new2", 13, False), ("new4", 15, False)]
    assert await store.md_page(tenant, P, "", 15, 3, False) == []
    assert [r.name for r in await store.md_page(tenant, P, "", 15, 3, True)] == ["new1", "new3"]
    assert (await store.md_state(tenant, P, "")).live == 3


async def test_a_failure_is_recorded_and_the_next_refresh_clears_it(store: Store, tenant: str) -> None:
    await store.md_apply(tenant, P, "", [("A", doc("A"))], [], "2024-01-01 00:00:00|A", NOW)
    await store.md_failed(tenant, P, "", "ERPNext answered 502", NOW + 60)
    assert await store.md_state(tenant, P, "") == CollectionState(
        seq=1, source_cursor="2024-01-01 00:00:00|A", refreshed_at=NOW, failed_at=NOW + 60,
        error="ERPNext answered 502", live=1)
    assert await page_all(store, tenant) == [MasterRow("A", 1, False, doc("A"))]  # rows kept

    await store.md_apply(tenant, P, "", [], [], "2024-01-02 00:00:00|B", NOW + 120)
    assert await store.md_state(tenant, P, "") == CollectionState(
        seq=1, source_cursor="2024-01-02 00:00:00|B", refreshed_at=NOW + 120, live=1)


async def test_a_failure_before_any_refresh(store: Store, tenant: str) -> None:
    await store.md_failed(tenant, P, "", "timeout", NOW)
    assert await store.md_state(tenant, P, "") == CollectionState(failed_at=NOW, error="timeout")
    assert await page_all(store, tenant) == []


async def test_scopes_collections_and_tenants_are_apart(store: Store, tenant: str) -> None:
    other = tenant + "x"
    await store.md_apply(tenant, "prices", "Standard Selling", [("ITEM-1", b'{"rate": 10}')], [], "s", NOW)
    await store.md_apply(tenant, "prices", "Wholesale", [("ITEM-1", b'{"rate": 8}'), ("ITEM-2", b'{"rate": 5}')],
                         [], "w", NOW)
    await store.md_apply(tenant, "products", "Standard Selling", [("ITEM-9", b"{}")], [], "p", NOW)
    await store.md_apply(other, "prices", "Standard Selling", [("ITEM-3", b"{}")], [], "o", NOW)
    # scopes that could collide in a naively built key
    await store.md_apply(tenant, "prices", "Standard:Selling", [("ITEM-4", b"{}")], [], "c", NOW)
    await store.md_apply(tenant, "prices:Standard", "Selling", [("ITEM-5", b"{}")], [], "c", NOW)

    assert [(r.name, r.seq, r.data) for r in await page_all(store, tenant, "prices", "Standard Selling")] == [
        ("ITEM-1", 1, b'{"rate": 10}')]
    assert [(r.name, r.seq, r.data) for r in await page_all(store, tenant, "prices", "Wholesale")] == [
        ("ITEM-1", 1, b'{"rate": 8}'), ("ITEM-2", 2, b'{"rate": 5}')]
    assert [r.name for r in await page_all(store, tenant, "products", "Standard Selling")] == ["ITEM-9"]
    assert [r.name for r in await page_all(store, other, "prices", "Standard Selling")] == ["ITEM-3"]
    assert [r.name for r in await page_all(store, tenant, "prices", "Standard:Selling")] == ["ITEM-4"]
    assert [r.name for r in await page_all(store, tenant, "prices:Standard", "Selling")] == ["ITEM-5"]
    assert await page_all(store, tenant, "prices", "") == []
    assert (await store.md_state(tenant, "prices", "Wholesale")).live == 2
    assert (await store.md_state(tenant, "prices", "Standard Selling")).source_cursor == "s"

    await store.md_apply(tenant, "prices", "Wholesale", [], ["ITEM-1"], "w2", NOW)
    assert [(r.name, r.deleted) for r in await page_all(store, tenant, "prices", "Standard Selling")] == [
        ("ITEM-1", False)]
    await store.md_failed(tenant, "prices", "Wholesale", "boom", NOW)
    assert (await store.md_state(tenant, "prices", "Standard Selling")).error == ""
    assert await store.md_lease(tenant, "prices", "Wholesale", "w1", NOW, 30)
    assert await store.md_lease(tenant, "prices", "Standard Selling", "w2", NOW, 30)
    assert await store.md_lease(other, "prices", "Wholesale", "w2", NOW, 30)


async def test_data_is_kept_byte_for_byte(store: Store, tenant: str) -> None:
    text = doc("Café Crème", description="Kaffee mit Milch – groß ☕", price="12,50 €")
    raw = bytes(range(256)) + os.urandom(64) + b"\x00\xff\x00"
    await store.md_apply(tenant, P, "", [("Café Crème", text), ("blob", raw), ("empty", b"")], [], "", NOW)
    rows = {r.name: r for r in await page_all(store, tenant)}
    assert rows["Café Crème"].data == text and json.loads(rows["Café Crème"].data)["price"] == "12,50 €"
    assert rows["blob"].data == raw
    assert rows["empty"] == MasterRow("empty", 3, False, b"")  # an empty live row is not a tombstone
    # the same bytes are recognised as such (no new seq), one changed byte is not
    assert await store.md_apply(tenant, P, "", [("blob", raw), ("empty", b"")], [], "", NOW) == 3
    assert await store.md_apply(tenant, P, "", [("blob", raw[:-1] + b"\x01")], [], "", NOW) == 4


async def test_two_stores_applying_at_once_lose_nothing(store: Store, twin: Store, tenant: str) -> None:
    async def refresher(s: Store, who: str) -> list[int]:
        seqs = []
        for i in range(20):
            # disjoint rows, plus one both write with their own data
            seqs.append(await s.md_apply(tenant, P, "", [(f"{who}-{i}", doc(who, i=i)), ("shared", doc(who, i=i))],
                                         [], f"{who}-{i}", NOW + i))
        return seqs

    a, b = await asyncio.gather(refresher(store, "a"), refresher(twin, "b"))
    for seqs in (a, b):
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert not set(a) & set(b)  # each call saw the other's writes: never the same seq
    rows = await page_all(store, tenant)
    seqs = [r.seq for r in rows]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    names = {r.name for r in rows}
    assert names == {f"{w}-{i}" for w in "ab" for i in range(20)} | {"shared"}
    # every call changed two rows (its own data for "shared" always differs from what is
    # there), each change took one seq, none was skipped or given twice
    state = await twin.md_state(tenant, P, "")
    assert state.seq == max(a + b) == max(seqs) == 80 and state.live == 41
    last = "a" if max(a) == 80 else "b"
    assert rows[-1] == MasterRow("shared", 80, False, doc(last, i=19))


async def test_the_lease_has_one_holder_at_a_time(store: Store, twin: Store, tenant: str) -> None:
    assert await store.md_lease(tenant, P, "", "w1", NOW, 30)
    assert not await twin.md_lease(tenant, P, "", "w2", NOW + 1, 30)
    assert await store.md_lease(tenant, P, "", "w1", NOW + 20, 30)  # the holder extends it to NOW + 50
    assert not await twin.md_lease(tenant, P, "", "w2", NOW + 40, 30)
    await twin.md_release(tenant, P, "", "w2")  # not the holder: nothing happens
    assert not await twin.md_lease(tenant, P, "", "w2", NOW + 41, 30)
    assert await twin.md_lease(tenant, P, "", "w2", NOW + 50, 30)  # expired: taken over
    assert not await store.md_lease(tenant, P, "", "w1", NOW + 51, 30)
    await twin.md_release(tenant, P, "", "w2")
    assert await store.md_lease(tenant, P, "", "w1", NOW + 52, 30)  # released: free at once
    with pytest.raises(ValueError):
        await store.md_lease(tenant, P, "", "", NOW, 30)


async def test_two_stores_racing_for_a_free_lease_one_wins(store: Store, twin: Store, tenant: str) -> None:
    for n in range(10):
        scope = f"s{n}"
        won = await asyncio.gather(store.md_lease(tenant, P, scope, "w1", NOW, 30),
                                   twin.md_lease(tenant, P, scope, "w2", NOW, 30))
        assert sorted(won) == [False, True]


async def test_the_lease_leaves_the_collection_alone(store: Store, tenant: str) -> None:
    assert await store.md_lease(tenant, P, "", "w1", NOW, 30)
    assert await store.md_state(tenant, P, "") == CollectionState()
    await store.md_apply(tenant, P, "", [("A", doc("A"))], [], "c", NOW)
    await store.md_release(tenant, P, "", "w1")
    assert await store.md_state(tenant, P, "") == CollectionState(seq=1, source_cursor="c", refreshed_at=NOW, live=1)
    assert await store.md_lease(tenant, P, "", "w2", NOW + 1, 30)


async def test_a_thousand_rows_page_through_exactly_once(store: Store, tenant: str) -> None:
    rows = [(f"ITEM-{i:05d}", doc(f"ITEM-{i:05d}", i=i, note="ü" * (i % 7))) for i in range(1000)]
    assert await store.md_apply(tenant, P, "", rows, [], "c", NOW) == 1000
    # a few changes after the bulk write: those rows move to the end of the log
    assert await store.md_apply(tenant, P, "", [("ITEM-00007", b'{"v": 2}')], ["ITEM-00500"], "c", NOW) == 1002

    seen: list[MasterRow] = []
    after = 0
    while page := await store.md_page(tenant, P, "", after, 100, True):
        assert len(page) == 100 or len(seen) + len(page) == 1000
        seen += page
        after = page[-1].seq
    assert len(seen) == 1000 and len({r.name for r in seen}) == 1000
    assert [r.seq for r in seen] == sorted(r.seq for r in seen)
    want = dict(rows) | {"ITEM-00007": b'{"v": 2}', "ITEM-00500": b""}
    assert {r.name: r.data for r in seen} == want
    assert [r.name for r in seen if r.deleted] == ["ITEM-00500"]
    assert (await store.md_state(tenant, P, "")).live == 999

    live: list[MasterRow] = []
    after = 0
    while page := await store.md_page(tenant, P, "", after, 100, False):
        live += page
        after = page[-1].seq
    assert len(live) == 999 and {r.name for r in live} == set(want) - {"ITEM-00500"}

    # the same thousand rows again: only the deleted one changes (it comes back)
    assert await store.md_apply(tenant, P, "", [*rows[:7], ("ITEM-00007", b'{"v": 2}'), *rows[8:]], [], "d", NOW) == 1003
