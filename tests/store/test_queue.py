"""The sync queue's contract, run against both backends: a real SQLite file and a real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from edge.store import Store
from edge.sync.jobs import JobUpdate, NewJob

NOW = 1_800_000_000.0


def new(txn: str, kind: str = "sale", fp: str | None = None, against: str = "") -> NewJob:
    return NewJob(uuid.uuid4().hex, txn, kind, b'{"x": 1}', fp or f"fp-{txn}", f"d/{txn}", return_against=against)


async def enqueue(store: Store, tenant: str, jobs: list[NewJob], device: str = "d", now: float = NOW):
    batch = str(uuid.uuid4())
    return batch, await store.enqueue_batch(tenant, device, batch, jobs, now)


async def test_enqueue_then_read_the_batch_in_upload_order(store: Store, tenant: str) -> None:
    jobs = [new(f"s{i}") for i in range(5)]
    batch, result = await enqueue(store, tenant, jobs)
    assert (result.enqueued, result.conflicts) == (5, [])
    assert result.job_ids == [j.job_id for j in jobs]
    got = await store.get_batch(tenant, batch)
    assert got is not None and got.device == "d"
    assert [j.client_txn_id for j in got.jobs] == [f"s{i}" for i in range(5)]
    assert {(j.status, j.attempts, j.owner, j.unknown) for j in got.jobs} == {("pending", 0, "", False)}
    assert await store.get_batch("other-tenant", batch) is None


async def test_a_known_transaction_points_at_its_job_and_a_changed_one_is_refused(store: Store, tenant: str) -> None:
    first = [new("a"), new("b")]
    await enqueue(store, tenant, first)
    batch2, r2 = await enqueue(store, tenant, [new("b"), new("c")])
    assert r2.enqueued == 1 and r2.job_ids[0] == first[1].job_id
    assert [j.client_txn_id for j in (await store.get_batch(tenant, batch2)).jobs] == ["b", "c"]
    batch3, r3 = await enqueue(store, tenant, [new("d"), new("a", fp="changed")])
    assert r3.conflicts == [1] and r3.job_ids == []
    assert await store.get_batch(tenant, batch3) is None  # nothing of a refused batch is stored
    _, r4 = await enqueue(store, tenant, [new("d")])
    assert r4.enqueued == 1  # "d" was not stored by the refused batch
    # the same client_txn_id on another device is another transaction
    _, r5 = await enqueue(store, tenant, [new("a")], device="d2")
    assert r5.enqueued == 1


async def test_claims_respect_the_tenant_cap_across_workers_and_expired_leases_come_back_unknown(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, [new(f"s{i}") for i in range(6)])
    a = await store.claim_jobs({tenant: 10}, NOW + 1, "worker-a", 10, 4)
    b = await store.claim_jobs({tenant: 10}, NOW + 1, "worker-b", 10, 4)
    assert [j.client_txn_id for j in a] == ["s0", "s1", "s2", "s3"] and b == []
    assert all(j.owner == "worker-a" and j.lease_until == NOW + 11 for j in a)
    assert await store.settle_job(tenant, a[0].job_id, "worker-a", JobUpdate("synced", invoice_id="INV-1"), NOW + 2)
    b = await store.claim_jobs({tenant: 10}, NOW + 2, "worker-b", 10, 4)
    assert [j.client_txn_id for j in b] == ["s4"]
    # worker-a renews s1 only (s0 is settled); s2, s3 (a) and s4 (b) run out by NOW + 12 and go to
    # the next claimer, marked unknown, before s5, which waits: s1 + three = the cap of 4
    assert await store.renew_leases("worker-a", [(tenant, a[1].job_id), (tenant, a[0].job_id)], NOW + 30) == [a[0].job_id]
    c = await store.claim_jobs({tenant: 10}, NOW + 12, "worker-c", 10, 4)
    assert [(j.client_txn_id, j.unknown) for j in c] == [("s2", True), ("s3", True), ("s4", True)]
    assert await store.claim_jobs({tenant: 10}, NOW + 12, "worker-d", 10, 4) == []
    # the late worker cannot settle a job it lost
    assert not await store.settle_job(tenant, a[2].job_id, "worker-a", JobUpdate("synced", invoice_id="X"), NOW + 13)
    assert (await store.get_job(tenant, a[2].job_id)).invoice_id is None


async def test_settle_retry_fail_and_requeue(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, [new("a"), new("b")])
    a, b = await store.claim_jobs({tenant: 2}, NOW, "w", 10, 4)
    assert await store.settle_job(tenant, a.job_id, "w", JobUpdate("retrying", next_attempt_at=NOW + 5,
                                                                    last_error="ERPNext answered 503", unknown=True), NOW + 1)
    assert await store.settle_job(tenant, b.job_id, "w", JobUpdate("failed", last_error="ERPNext refused it"), NOW + 1)
    assert await store.claim_jobs({tenant: 2}, NOW + 4, "w", 10, 4) == []  # not due yet
    (again,) = await store.claim_jobs({tenant: 2}, NOW + 5, "w", 10, 4)
    assert (again.job_id, again.status, again.attempts, again.unknown) == (a.job_id, "retrying", 1, True)
    assert [j.job_id for j in await store.failed_jobs(tenant)] == [b.job_id]
    assert await store.requeue_failed(tenant, [a.job_id, b.job_id], NOW + 6) == 1  # only b had failed
    assert await store.failed_jobs(tenant) == []
    requeued = await store.get_job(tenant, b.job_id)
    assert (requeued.status, requeued.attempts, requeued.next_attempt_at) == ("pending", 0, NOW + 6)
    (claimed,) = await store.claim_jobs({tenant: 2}, NOW + 6, "w", 10, 4)
    assert claimed.job_id == b.job_id


async def test_waiting_does_not_count_as_an_attempt(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, [new("a")])
    (a,) = await store.claim_jobs({tenant: 1}, NOW, "w", 10, 4)
    await store.settle_job(tenant, a.job_id, "w", JobUpdate("pending", next_attempt_at=NOW + 1, attempted=False), NOW)
    job = await store.get_job(tenant, a.job_id)
    assert (job.status, job.attempts, job.owner) == ("pending", 0, "")


async def test_a_return_depends_on_its_sale_in_this_or_an_earlier_upload(store: Store, tenant: str) -> None:
    sale = new("sale-1")
    await enqueue(store, tenant, [sale, new("ret-1", "return", against="sale-1")])
    batch, _ = await enqueue(store, tenant, [new("ret-2", "return", against="sale-1"),
                                             new("ret-3", "return", against="ACC-SINV-2026-00001")])
    got = await store.get_batch(tenant, batch)
    assert [j.depends_on for j in got.jobs] == [sale.job_id, ""]
    first = await store.get_job(tenant, sale.job_id)
    assert first.depends_on == ""


async def test_concurrent_claimers_never_share_a_job(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, [new(f"s{i}") for i in range(40)])
    claims = await asyncio.gather(*[store.claim_jobs({tenant: 40}, NOW, f"w{i}", 10, 40) for i in range(8)])
    ids = [j.job_id for batch in claims for j in batch]
    assert len(ids) == len(set(ids)) == 40


@pytest.mark.parametrize("n", [500])
async def test_a_full_batch_is_one_write(store: Store, tenant: str, n: int) -> None:
    batch, result = await enqueue(store, tenant, [new(f"s{i}") for i in range(n)])
    assert result.enqueued == n
    assert len((await store.get_batch(tenant, batch)).jobs) == n


async def test_purge_forgets_old_synced_jobs_and_empty_batches_only(store: Store, tenant: str) -> None:
    old_batch, _ = await enqueue(store, tenant, [new("old-synced"), new("old-failed")], now=NOW)
    synced, failed = await store.claim_jobs({tenant: 2}, NOW, "w", 10, 4)
    await store.settle_job(tenant, synced.job_id, "w", JobUpdate("synced", invoice_id="INV-1"), NOW + 1)
    await store.settle_job(tenant, failed.job_id, "w", JobUpdate("failed", last_error="no"), NOW + 1)
    all_synced_batch, _ = await enqueue(store, tenant, [new("old-2")], now=NOW)
    (job,) = await store.claim_jobs({tenant: 1}, NOW + 2, "w", 10, 4)
    await store.settle_job(tenant, job.job_id, "w", JobUpdate("synced", invoice_id="INV-2"), NOW + 2)
    young_batch, _ = await enqueue(store, tenant, [new("young")], now=NOW + 100)
    (young,) = await store.claim_jobs({tenant: 1}, NOW + 100, "w", 10, 4)
    await store.settle_job(tenant, young.job_id, "w", JobUpdate("synced", invoice_id="INV-3"), NOW + 100)

    assert await store.purge_synced(tenant, NOW + 50, 1) == 1  # bounded per call
    assert await store.purge_synced(tenant, NOW + 50, 100) == 1
    assert await store.purge_synced(tenant, NOW + 50, 100) == 0
    assert await store.get_job(tenant, synced.job_id) is None and await store.get_job(tenant, job.job_id) is None
    assert (await store.get_job(tenant, failed.job_id)).status == "failed"  # failed jobs stay visible
    assert await store.get_batch(tenant, all_synced_batch) is None
    kept = await store.get_batch(tenant, old_batch)
    assert kept is not None and [j.client_txn_id for j in kept.jobs] == ["old-failed"]
    assert [j.client_txn_id for j in (await store.get_batch(tenant, young_batch)).jobs] == ["young"]
    # a purged transaction uploaded again is a new job (which will find its invoice in ERPNext)
    _, again = await enqueue(store, tenant, [new("old-synced")], now=NOW + 200)
    assert again.enqueued == 1


async def test_queue_figures_per_device(store: Store, tenant: str) -> None:
    await enqueue(store, tenant, [new("a1"), new("a2")], device="till-a", now=NOW)
    await enqueue(store, tenant, [new("b1")], device="till-b", now=NOW + 5)
    claimed = await store.claim_jobs({tenant: 10}, NOW + 10, "w1", 30, 10)
    b1 = next(j for j in claimed if j.device == "till-b")
    assert await store.settle_job(tenant, b1.job_id, "w1", JobUpdate("failed", last_error="no", attempted=True), NOW + 11)
    for job in claimed:
        if job.device == "till-a":  # hand them back, pending (not in flight, not failed)
            assert await store.settle_job(tenant, job.job_id, "w1", JobUpdate("retrying", next_attempt_at=NOW + 12,
                                                                              attempted=True), NOW + 11)
    stats = await store.device_queue_stats(tenant, NOW + 20)
    assert stats["till-a"]["queued"] == 2 and stats["till-a"]["failed"] == 0 and stats["till-a"]["oldest_due_age"] == 8
    assert stats["till-b"]["failed"] == 1 and stats["till-b"]["queued"] == 0
    assert await store.device_queue_stats("another-" + tenant, NOW) == {}
