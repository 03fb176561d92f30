"""Claims go round-robin across a tenant's devices, on both backends: a till with a long
backlog does not hold back another's few, and the rotation lives in the store."""

from __future__ import annotations

import uuid

from edge.store import Store
from edge.store.redis import RedisStore
from edge.store.sqlite import SqliteStore
from edge.sync.jobs import Job, JobUpdate, NewJob

NOW = 1_800_000_000.0
BIG_CAP = 10_000  # the tenant cap, where a test is not about it


def new(txn: str) -> NewJob:
    return NewJob(uuid.uuid4().hex, txn, "sale", b'{"x": 1}', f"fp-{txn}", f"d/{txn}")


async def enqueue(store: Store, tenant: str, device: str, txns: list[str], now: float) -> list[str]:
    result = await store.enqueue_batch(tenant, device, str(uuid.uuid4()), [new(t) for t in txns], now)
    assert result.enqueued == len(txns)
    return result.job_ids


async def claim(store: Store, tenant: str, room: int, now: float, owner: str = "w", lease: float = 300,
                cap: int = BIG_CAP) -> list[Job]:
    return await store.claim_jobs({tenant: room}, now, owner, lease, cap)


def txns(jobs: list[Job]) -> list[str]:
    return [j.client_txn_id for j in jobs]


async def test_a_small_device_is_not_held_back_by_a_big_backlog(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "big", [f"b{i:03d}" for i in range(300)], NOW)
    await enqueue(store, tenant, "small", [f"s{i}" for i in range(10)], NOW + 1)
    claims = [await claim(store, tenant, 2, NOW + 2) for _ in range(15)]
    # one of each per claim while both have jobs: the 10 are all out within the first 10 claims
    assert [sorted(j.device for j in c) for c in claims[:10]] == [["big", "small"]] * 10
    assert [[j.device for j in c] for c in claims[10:]] == [["big", "big"]] * 5
    got = [j for c in claims for j in c]
    # each device's jobs in upload order
    assert txns([j for j in got if j.device == "small"]) == [f"s{i}" for i in range(10)]
    assert txns([j for j in got if j.device == "big"]) == [f"b{i:03d}" for i in range(20)]
    assert len({j.job_id for j in got}) == 30


async def test_three_devices_share_evenly_and_the_turn_carries_over_between_claims(store: Store, tenant: str) -> None:
    for i, device in enumerate(["a", "b", "c"]):
        await enqueue(store, tenant, device, [f"{device}{k}" for k in range(10)], NOW + i)
    claims = [await claim(store, tenant, 4, NOW + 5) for _ in range(3)]
    # 4 a claim out of 3 lanes: the next claim starts with the lane the last one did not reach
    assert [[j.device for j in c] for c in claims] == [["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"]]
    got = [j for c in claims for j in c]
    for device in "abc":
        assert txns([j for j in got if j.device == device]) == [f"{device}{k}" for k in range(4)]


async def test_a_device_keeps_its_upload_order_across_batches_and_retries_go_by_due_time(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "a", ["a0", "a1"], NOW)
    await enqueue(store, tenant, "b", ["b0"], NOW + 1)
    await enqueue(store, tenant, "a", ["a2", "a3"], NOW + 2)
    (a0,) = await claim(store, tenant, 1, NOW + 3)
    assert a0.client_txn_id == "a0"
    assert await store.settle_job(tenant, a0.job_id, "w", JobUpdate("retrying", next_attempt_at=NOW + 10), NOW + 3)
    assert txns(await claim(store, tenant, 10, NOW + 4)) == ["b0", "a1", "a2", "a3"]  # a0 is not due yet
    assert txns(await claim(store, tenant, 10, NOW + 10)) == ["a0"]


async def test_a_device_uploading_again_keeps_its_place_in_the_rotation(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "a", [f"a{k}" for k in range(5)], NOW)
    await enqueue(store, tenant, "b", [f"b{k}" for k in range(5)], NOW + 1)
    assert txns(await claim(store, tenant, 3, NOW + 2)) == ["a0", "b0", "a1"]
    await enqueue(store, tenant, "a", ["a5"], NOW + 3)  # a busy till uploads more: no jump to the front
    assert txns(await claim(store, tenant, 3, NOW + 4)) == ["b1", "a2", "b2"]


async def test_two_workers_claiming_in_turn_share_the_rotation(store: Store, twin: Store, tenant: str) -> None:
    for i, device in enumerate(["a", "b", "c"]):
        await enqueue(store, tenant, device, [f"{device}{k}" for k in range(5)], NOW + i)
    order = []
    for k in range(9):
        (job,) = await claim((store, twin)[k % 2], tenant, 1, NOW + 5, owner=f"w{k % 2}")
        order.append(job.client_txn_id)
    assert order == ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"]


async def test_the_cap_holds_across_workers_and_lanes(store: Store, twin: Store, tenant: str) -> None:
    await enqueue(store, tenant, "a", [f"a{k}" for k in range(5)], NOW)
    await enqueue(store, tenant, "b", [f"b{k}" for k in range(5)], NOW + 1)
    first = await claim(store, tenant, 10, NOW + 2, owner="w1", cap=4)
    assert txns(first) == ["a0", "b0", "a1", "b1"]
    assert await claim(twin, tenant, 10, NOW + 2, owner="w2", cap=4) == []
    assert await store.settle_job(tenant, first[0].job_id, "w1", JobUpdate("synced", invoice_id="INV-1"), NOW + 3)
    assert txns(await claim(twin, tenant, 10, NOW + 3, owner="w2", cap=4)) == ["a2"]
    assert await claim(store, tenant, 10, NOW + 3, owner="w1", cap=4) == []


async def test_an_emptied_lane_comes_back_at_the_front_when_its_device_queues_again(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "aux", ["a0"], NOW)
    await enqueue(store, tenant, "big", [f"b{i:02d}" for i in range(50)], NOW)
    await enqueue(store, tenant, "small", ["s0"], NOW + 1)
    a0, b00, s0 = await claim(store, tenant, 3, NOW + 2)
    assert txns([a0, b00, s0]) == ["a0", "b00", "s0"]
    # aux waits for a retry, served before small; small has nothing left
    assert await store.settle_job(tenant, a0.job_id, "w", JobUpdate("retrying", next_attempt_at=NOW + 5), NOW + 3)
    assert await store.settle_job(tenant, s0.job_id, "w", JobUpdate("synced", invoice_id="INV-1"), NOW + 3)
    for _ in range(3):  # small's lane goes, big alone is served
        assert [j.device for j in await claim(store, tenant, 1, NOW + 3)] == ["big"]
    await enqueue(store, tenant, "small", ["s1", "s2"], NOW + 4)
    # back at the front as a new lane: ahead of aux's (served before small's old turn) and big's
    assert txns(await claim(store, tenant, 4, NOW + 5)) == ["s1", "a0", "b04", "s2"]


async def test_a_retried_job_brings_its_lane_back(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "big", [f"b{i:02d}" for i in range(50)], NOW)
    await enqueue(store, tenant, "small", ["s0"], NOW + 1)
    s0 = next(j for j in await claim(store, tenant, 2, NOW + 2) if j.device == "small")
    for _ in range(3):
        assert [j.device for j in await claim(store, tenant, 1, NOW + 3)] == ["big"]
    assert await store.settle_job(tenant, s0.job_id, "w", JobUpdate("retrying", next_attempt_at=NOW + 10,
                                                                     last_error="503", unknown=True), NOW + 4)
    assert [j.device for j in await claim(store, tenant, 1, NOW + 5)] == ["big"]  # not due yet
    (again,) = await claim(store, tenant, 1, NOW + 10)
    assert (again.job_id, again.status, again.attempts, again.unknown) == (s0.job_id, "retrying", 1, True)


async def test_a_requeued_failed_job_brings_its_lane_back(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "big", [f"b{i:02d}" for i in range(50)], NOW)
    await enqueue(store, tenant, "small", ["s0"], NOW + 1)
    s0 = next(j for j in await claim(store, tenant, 2, NOW + 2) if j.device == "small")
    assert await store.settle_job(tenant, s0.job_id, "w", JobUpdate("failed", last_error="refused"), NOW + 3)
    for _ in range(3):  # small's lane goes: nothing of it is queued
        assert [j.device for j in await claim(store, tenant, 1, NOW + 3)] == ["big"]
    assert await store.requeue_failed(tenant, [s0.job_id], NOW + 4) == 1
    (again,) = await claim(store, tenant, 1, NOW + 5)
    assert (again.job_id, again.status, again.attempts) == (s0.job_id, "pending", 0)


async def test_expired_leases_come_back_unknown_and_are_claimed_in_rotation(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "big", [f"b{i:02d}" for i in range(50)], NOW)
    await enqueue(store, tenant, "solo", ["s0"], NOW + 1)
    dead = await claim(store, tenant, 2, NOW + 2, owner="dead", lease=10)  # its worker dies: no renewal
    assert sorted(txns(dead)) == ["b00", "s0"]
    for _ in range(3):
        assert [j.device for j in await claim(store, tenant, 1, NOW + 3, owner="live", lease=300)] == ["big"]
    back = await claim(store, tenant, 3, NOW + 12, owner="next")
    assert [(j.client_txn_id, j.unknown, j.owner) for j in back] == [
        ("s0", True, "next"), ("b00", True, "next"), ("b04", False, "next")]
    assert not await store.settle_job(tenant, dead[0].job_id, "dead", JobUpdate("synced", invoice_id="X"), NOW + 13)


async def test_a_tenants_lanes_are_its_own(store: Store, tenant: str) -> None:
    other_tenant = f"{tenant}-2"
    await enqueue(store, tenant, "a", ["a0", "a1"], NOW)
    await enqueue(store, other_tenant, "a", ["x0"], NOW)
    await enqueue(store, other_tenant, "b", ["y0"], NOW + 1)
    got = await store.claim_jobs({tenant: 10, other_tenant: 10}, NOW + 2, "w", 300, BIG_CAP)
    assert sorted((j.tenant, j.client_txn_id) for j in got) == [
        (tenant, "a0"), (tenant, "a1"), (other_tenant, "x0"), (other_tenant, "y0")]


async def _forget_lanes(store: Store, tenant: str) -> None:
    """Leave the queue as a release before lanes wrote it: jobs queued, no lane for them."""
    if isinstance(store, SqliteStore):
        await store._run(lambda c: c.execute("DELETE FROM sync_lanes WHERE tenant=?", (tenant,)))
    else:
        assert isinstance(store, RedisStore)
        p = store._tenant_prefix(tenant)
        keys = [k async for k in store._raw.scan_iter(match=f"{p}:dready:*")]
        assert keys
        await store._raw.delete(*keys, f"{p}:lanes")


async def test_jobs_queued_without_a_lane_are_still_claimed(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, "a", ["a0", "a1", "a2"], NOW)
    await _forget_lanes(store, tenant)
    await enqueue(store, tenant, "b", ["b0", "b1"], NOW + 1)  # queued since: it has a lane
    # b's lane first; then, with room left, the jobs no lane holds, by due time
    assert txns(await claim(store, tenant, 3, NOW + 2)) == ["b0", "b1", "a0"]
    assert txns(await claim(store, tenant, 5, NOW + 2)) == ["a1", "a2"]
    assert await claim(store, tenant, 5, NOW + 2) == []


async def test_lane_entries_out_of_step_with_ready_are_mended(redis_store: RedisStore, tenant: str) -> None:
    store = redis_store
    a0, a1, _ = await enqueue(store, tenant, "a", ["a0", "a1", "a2"], NOW)
    p = store._tenant_prefix(tenant)
    # an older release's claim moved a0 from `ready` to `leased`, and its settle put a1 back in
    # `ready` for a retry at NOW + 50, neither knowing of `dready:a`
    await store._raw.zrem(f"{p}:ready", a0)
    await store._raw.zadd(f"{p}:leased", {a0: NOW + 300})
    await store._raw.hset(f"{p}:job:{a0}", mapping={"owner": "old", "lease_until": repr(NOW + 300)})
    await store._raw.zadd(f"{p}:ready", {a1: NOW + 50})
    await store._raw.hset(f"{p}:job:{a1}", mapping={"status": "retrying", "next_attempt_at": repr(NOW + 50)})
    assert txns(await claim(store, tenant, 5, NOW + 1)) == ["a2"]
    assert await store._raw.zrange(f"{p}:dready:a", 0, -1, withscores=True) == [(a1.encode(), NOW + 50)]
    assert txns(await claim(store, tenant, 5, NOW + 50)) == ["a1"]


async def test_a_claim_reports_the_tenant_s_leased_jobs_of_every_worker(store: Store, twin: Store, tenant: str) -> None:
    await enqueue(store, tenant, "a", [f"a{k}" for k in range(6)], NOW)
    seen: dict[str, int] = {}
    assert len(await store.claim_jobs({tenant: 2}, NOW + 1, "w1", 300, 4, leased=seen)) == 2
    assert seen == {tenant: 2}
    assert len(await twin.claim_jobs({tenant: 5}, NOW + 1, "w2", 300, 4, leased=seen)) == 2  # the cap: 4 in all
    assert seen == {tenant: 4}
    assert await twin.claim_jobs({tenant: 1}, NOW + 1, "w2", 300, 4, leased=seen) == []
    assert seen == {tenant: 4}  # reported even when nothing more could be taken
