"""One behavioural suite, run against both backends: a real SQLite file and a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge.store import DeviceBlocked, DeviceProofRequired, EnrollmentCodeInvalid, Store, open_store


async def test_register_creates_then_bumps_generation(store: Store, tenant: str) -> None:
    assert await store.get_device(tenant, "till-1") is None
    d1 = await store.register_device(tenant, "till-1", "Front", "main", now=100.0)
    assert (d1.generation, d1.status, d1.device_name, d1.registered_at) == (1, "active", "Front", 100.0)
    with pytest.raises(DeviceProofRequired):  # an existing device re-registers only with proof
        await store.register_device(tenant, "till-1", "Impostor", "north", now=150.0)
    d2 = await store.register_device(tenant, "till-1", "Front renamed", "north", now=200.0, proven_generation=1)
    assert (d2.generation, d2.branch_id, d2.device_name) == (2, "north", "Front renamed")
    assert d2.registered_at == 100.0 and d2.updated_at == 200.0
    assert await store.get_device(tenant, "till-1") == d2


async def test_blocked_devices_cannot_register(store: Store, tenant: str) -> None:
    await store.register_device(tenant, "till-1", "Front", "main", now=1.0)
    blocked = await store.set_device_status(tenant, "till-1", "blocked", now=2.0)
    assert blocked.status == "blocked" and blocked.generation == 1
    with pytest.raises(DeviceBlocked):
        await store.register_device(tenant, "till-1", "Front", "main", now=3.0)
    assert (await store.get_device(tenant, "till-1")).generation == 1
    await store.set_device_status(tenant, "till-1", "active", now=4.0)
    assert (await store.register_device(tenant, "till-1", "Front", "main", now=5.0, proven_generation=1)).generation == 2


async def test_blocking_an_unknown_id_creates_a_blocked_placeholder(store: Store, tenant: str) -> None:
    d = await store.set_device_status(tenant, "stolen", "blocked", now=1.0)
    assert d.status == "blocked" and d.generation == 0
    with pytest.raises(DeviceBlocked):
        await store.register_device(tenant, "stolen", "x", "main", now=2.0)


async def test_devices_are_listed_per_tenant(store: Store, tenant: str) -> None:
    other = tenant + "x"
    for i in (3, 1, 2):
        await store.register_device(tenant, f"till-{i}", f"T{i}", "main", now=float(i))
    await store.register_device(other, "till-9", "T9", "main", now=9.0)
    assert [d.device_id for d in await store.list_devices(tenant)] == ["till-1", "till-2", "till-3"]
    assert [d.device_id for d in await store.list_devices(other)] == ["till-9"]
    assert await store.get_device(other, "till-1") is None


async def test_concurrent_registrations_one_wins(store: Store, tenant: str) -> None:
    async def attempt(i: int, proof: int | None) -> int:
        try:
            return (await store.register_device(tenant, "till-1", "T", "main", now=float(i), proven_generation=proof)).generation
        except DeviceProofRequired:
            return 0

    # a new id: one newcomer gets it
    assert sorted(await asyncio.gather(*(attempt(i, None) for i in range(20)))) == [0] * 19 + [1]
    # twenty re-registrations proving generation 1: compare-and-set, one moves it to 2
    assert sorted(await asyncio.gather(*(attempt(i, 1) for i in range(20)))) == [0] * 19 + [2]


async def test_a_reset_retires_tokens_and_admits_one_code(store: Store, tenant: str) -> None:
    await store.register_device(tenant, "till-1", "Front", "main", now=1.0)
    assert await store.reset_device(tenant, "nobody", "h" * 64, until=100.0, now=2.0) is None
    reset = await store.reset_device(tenant, "till-1", "c" * 64, until=100.0, now=2.0)
    assert reset.generation == 2 and reset.code_pending(50.0) and not reset.code_pending(100.5)
    with pytest.raises(DeviceProofRequired):  # neither the old generation nor the new one without the code
        await store.register_device(tenant, "till-1", "Front", "main", now=3.0, proven_generation=2)
    with pytest.raises(EnrollmentCodeInvalid):
        await store.register_device(tenant, "till-1", "Front", "main", now=3.0, code_hash="d" * 64)
    with pytest.raises(EnrollmentCodeInvalid):  # expired
        await store.register_device(tenant, "till-1", "Front", "main", now=101.0, code_hash="c" * 64)
    back = await store.register_device(tenant, "till-1", "New till", "main", now=4.0, code_hash="c" * 64)
    assert back.generation == 3 and not back.code_pending(4.0) and back.registered_at == 1.0
    with pytest.raises(EnrollmentCodeInvalid):  # used up
        await store.register_device(tenant, "till-1", "Front", "main", now=5.0, code_hash="c" * 64)
    assert (await store.register_device(tenant, "till-1", "T", "main", now=6.0, proven_generation=3)).generation == 4
    with pytest.raises(EnrollmentCodeInvalid):  # a code for a device that was never reset
        await store.register_device(tenant, "till-2", "T", "main", now=7.0, code_hash="c" * 64)


async def test_ping(store: Store) -> None:
    await store.ping()


async def test_sqlite_state_survives_reopening(tmp_path, tenant: str) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    s = open_store(url)
    await s.open()
    await s.register_device(tenant, "till-1", "Front", "main", now=1.0)
    await s.close()
    s = open_store(url)
    await s.open()
    assert (await s.get_device(tenant, "till-1")).generation == 1
    await s.close()


async def test_a_file_from_an_earlier_release_gains_the_new_columns(tmp_path, tenant: str) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)  # the devices table as the first release made it
    old.execute("CREATE TABLE devices (tenant TEXT NOT NULL, device_id TEXT NOT NULL, device_name TEXT NOT NULL, "
                "branch_id TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('active', 'blocked')), "
                "generation INTEGER NOT NULL, registered_at REAL NOT NULL, updated_at REAL NOT NULL, "
                "PRIMARY KEY (tenant, device_id))")
    old.execute("INSERT INTO devices VALUES (?, 'till-1', 'Front', 'main', 'active', 4, 1.0, 1.0)", (tenant,))
    old.commit()
    old.close()
    stores = [open_store(f"sqlite:///{path}") for _ in range(2)]
    await asyncio.gather(*(s.open() for s in stores))  # two processes upgrading one file at once
    try:
        device = await stores[0].get_device(tenant, "till-1")
        assert device.generation == 4 and device.code_until == 0.0
        assert (await stores[1].reset_device(tenant, "till-1", "c" * 64, 10.0, 2.0)).generation == 5
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_opening_a_file_not_yet_in_wal_waits_for_another_writer(tmp_path) -> None:
    # The switch to WAL gets SQLITE_BUSY at once (no busy wait) while another process
    # is mid-transaction on the file: open() waits instead of failing.
    import sqlite3

    path = tmp_path / "old.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (a)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")
    store = open_store(f"sqlite:///{path}")
    opening = asyncio.create_task(store.open())
    await asyncio.sleep(0.3)
    assert not opening.done()
    holder.execute("COMMIT")
    holder.close()
    try:
        await asyncio.wait_for(opening, 5)
        assert await store.list_devices("t") == []
    finally:
        await store.close()


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError):
        open_store("postgres://x")


async def test_idempotency_claim_complete_replay(store: Store, tenant: str) -> None:
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k1", "fp", now=100.0, lease=30, ttl=3600, owner="o1")
    assert (owned, prev) == (True, None)
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k1", "fp", now=101.0, lease=30, ttl=3600, owner="o1")
    assert not owned and prev.state == "in_progress" and prev.fingerprint == "fp"
    await store.complete_idempotency(tenant, "till-1", "k1", 201, b'{"invoice_id":"X"}', owner="o1")
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k1", "other", now=102.0, lease=30, ttl=3600, owner="o1")
    assert not owned and (prev.state, prev.status, prev.body, prev.fingerprint) == ("completed", 201, b'{"invoice_id":"X"}', "fp")
    await store.release_idempotency(tenant, "till-1", "k1", owner="o1")  # a completed answer is never released
    assert (await store.claim_idempotency(tenant, "till-1", "k1", "fp", now=103.0, lease=30, ttl=3600, owner="o1"))[1].state == "completed"


async def test_idempotency_keys_are_scoped_per_device_and_tenant(store: Store, tenant: str) -> None:
    assert (await store.claim_idempotency(tenant, "till-1", "k", "a", now=1.0, lease=30, ttl=3600, owner="o1"))[0]
    assert (await store.claim_idempotency(tenant, "till-2", "k", "b", now=1.0, lease=30, ttl=3600, owner="o1"))[0]
    assert (await store.claim_idempotency(tenant + "x", "till-1", "k", "c", now=1.0, lease=30, ttl=3600, owner="o1"))[0]


async def test_an_abandoned_claim_is_taken_over_after_its_lease(store: Store, tenant: str) -> None:
    await store.claim_idempotency(tenant, "till-1", "k", "fp", now=time.time(), lease=0.5, ttl=3600, owner="o1")
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k", "fp", now=time.time() + 1, lease=30, ttl=3600, owner="o1")
    assert owned and prev.state == "in_progress"  # taken over: the first attempt's outcome is unknown
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k", "fp", now=time.time() + 2, lease=30, ttl=3600, owner="o1")
    assert not owned  # the new lease holds


async def test_release_lets_the_key_be_claimed_again(store: Store, tenant: str) -> None:
    await store.claim_idempotency(tenant, "till-1", "k", "fp", now=1.0, lease=30, ttl=3600, owner="o1")
    await store.release_idempotency(tenant, "till-1", "k", owner="o1")
    assert (await store.claim_idempotency(tenant, "till-1", "k", "fp2", now=2.0, lease=30, ttl=3600, owner="o1")) == (True, None)


async def test_idempotency_records_expire(store: Store, tenant: str) -> None:
    now = time.time()
    await store.claim_idempotency(tenant, "till-1", "k", "fp", now=now, lease=30, ttl=1, owner="o1")
    await store.complete_idempotency(tenant, "till-1", "k", 201, b"{}", owner="o1")
    await asyncio.sleep(1.2)  # Redis expires by its own clock
    assert (await store.claim_idempotency(tenant, "till-1", "k", "fp2", now=now + 1.2, lease=30, ttl=3600, owner="o1")) == (True, None)


async def test_an_abandoned_claim_is_taken_over_at_once(store: Store, tenant: str) -> None:
    await store.claim_idempotency(tenant, "till-1", "k", "fp", now=time.time(), lease=300, ttl=3600, owner="o1")
    await store.abandon_idempotency(tenant, "till-1", "k", owner="o1")  # outcome unknown: keep the record
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k", "fp", now=time.time(), lease=300, ttl=3600, owner="o1")
    assert owned and prev is not None and prev.state == "in_progress"


async def test_a_claim_taken_over_cannot_be_finished_by_its_old_holder(store: Store, tenant: str) -> None:
    now = time.time()
    await store.claim_idempotency(tenant, "till-1", "k", "fp", now=now, lease=0.1, ttl=3600, owner="slow")
    owned, _ = await store.claim_idempotency(tenant, "till-1", "k", "fp", now=now + 1, lease=300, ttl=3600, owner="new")
    assert owned
    await store.complete_idempotency(tenant, "till-1", "k", 422, b"late", owner="slow")  # ignored
    await store.release_idempotency(tenant, "till-1", "k", owner="slow")  # ignored
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k", "fp", now=now + 2, lease=300, ttl=3600, owner="x")
    assert not owned and prev.state == "in_progress"
    await store.complete_idempotency(tenant, "till-1", "k", 201, b"ok", owner="new")
    owned, prev = await store.claim_idempotency(tenant, "till-1", "k", "fp", now=now + 3, lease=300, ttl=3600, owner="x")
    assert (prev.status, prev.body) == (201, b"ok")



async def test_sqlite_commits_are_durable(tmp_path) -> None:
    s = open_store(f"sqlite:///{tmp_path}/state.db")
    await s.open()
    assert await s.durability_warnings() == []
    await s.close()


@pytest.mark.parametrize("flags, expect", [
    ((), "appendonly no"),
    (("--appendonly", "yes", "--appendfsync", "everysec"), "'everysec'"),
    (("--appendonly", "yes", "--appendfsync", "always"), None),
])
async def test_redis_durability_warnings_name_what_a_crash_would_lose(tmp_path, flags, expect) -> None:
    import shutil
    import subprocess

    import redis as sync_redis

    from edge.standin.server import free_port

    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--dir", str(tmp_path), *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                sync_redis.Redis(port=port).ping()
                break
            except sync_redis.ConnectionError:
                time.sleep(0.05)
        s = open_store(f"redis://127.0.0.1:{port}/0")
        await s.open()
        warnings = await s.durability_warnings()
        await s.close()
    finally:
        proc.kill()
        proc.wait()
    if expect is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and expect in warnings[0]


async def test_posting_claims(store: Store, tenant: str) -> None:
    ref, ttl = "till-1/tx-1", 3600.0
    assert await store.claim_posting(tenant, ref, "fp", "o1", now=100.0, lease=10, ttl=ttl) == ("new", None)
    result, held = await store.claim_posting(tenant, ref, "fp", "o2", now=105.0, lease=10, ttl=ttl)
    assert result == "busy" and held.state == "posting"
    assert (await store.claim_posting(tenant, ref, "other", "o2", now=105.0, lease=10, ttl=ttl))[0] == "conflict"
    assert await store.renew_posting(tenant, ref, "o1", until=130.0)
    assert not await store.renew_posting(tenant, ref, "o2", until=130.0)
    assert (await store.claim_posting(tenant, ref, "fp", "o2", now=125.0, lease=10, ttl=ttl))[0] == "busy"  # renewed
    # its holder died: taken over, unknown since its lease ran out
    result, taken = await store.claim_posting(tenant, ref, "fp", "o2", now=131.0, lease=10, ttl=ttl)
    assert result == "taken_over" and taken.unknown_since == 130.0
    assert not await store.settle_posting(tenant, ref, "o1", "posted", invoice="X", now=132.0, ttl=ttl)  # not o1's now
    assert await store.settle_posting(tenant, ref, "o2", "unknown", unknown_since=132.0, now=132.0, ttl=ttl)
    result, unknown = await store.claim_posting(tenant, ref, "fp", "o3", now=133.0, lease=10, ttl=ttl)
    assert result == "taken_over" and (unknown.state, unknown.unknown_since) == ("unknown", 132.0)
    assert await store.settle_posting(tenant, ref, "o3", "posted", invoice="ACC-SINV-1", now=134.0, ttl=ttl)
    result, posted = await store.claim_posting(tenant, ref, "fp", "o4", now=135.0, lease=10, ttl=ttl)
    assert result == "posted" and posted.invoice == "ACC-SINV-1"
    result, conflict = await store.claim_posting(tenant, ref, "other", "o4", now=135.0, lease=10, ttl=ttl)
    assert result == "conflict" and conflict.invoice == "ACC-SINV-1"


async def test_a_posting_known_not_to_have_happened_is_forgotten(store: Store, tenant: str) -> None:
    ref = "till-1/tx-2"
    await store.claim_posting(tenant, ref, "fp", "o1", now=1.0, lease=10, ttl=3600)
    assert await store.settle_posting(tenant, ref, "o1", "not_posted", now=2.0, ttl=3600)
    assert await store.claim_posting(tenant, ref, "another payload", "o2", now=3.0, lease=10, ttl=3600) == ("new", None)


async def test_posting_records_expire(store: Store, tenant: str) -> None:
    ref, now = "till-1/tx-3", time.time()
    await store.claim_posting(tenant, ref, "fp", "o1", now=now, lease=10, ttl=1)
    assert await store.settle_posting(tenant, ref, "o1", "posted", invoice="X", now=now, ttl=1)
    await asyncio.sleep(2.2)
    assert await store.claim_posting(tenant, ref, "fp", "o2", now=time.time(), lease=10, ttl=3600) == ("new", None)


async def test_idempotency_claims_are_renewed_by_their_owner(store: Store, tenant: str) -> None:
    await store.claim_idempotency(tenant, "till-1", "k", "fp", now=100.0, lease=2, ttl=3600, owner="o1")
    assert await store.renew_idempotency(tenant, "till-1", "k", "o1", until=110.0)
    assert not await store.renew_idempotency(tenant, "till-1", "k", "o2", until=110.0)
    assert not (await store.claim_idempotency(tenant, "till-1", "k", "fp", now=105.0, lease=2, ttl=3600, owner="o2"))[0]
    assert (await store.claim_idempotency(tenant, "till-1", "k", "fp", now=111.0, lease=2, ttl=3600, owner="o2"))[0]


async def test_a_provisioned_device_enrols_only_with_its_code_into_its_branch(store: Store, tenant: str) -> None:
    now = time.time()
    made = await store.provision_device(tenant, "new-1", "Counter", "east", "h" * 64, now + 60, now)
    assert made is not None and (made.generation, made.branch_id, made.code_pending(now)) == (0, "east", True)
    assert await store.provision_device(tenant, "new-1", "Other", "main", "g" * 64, now + 60, now) is None  # exists
    with pytest.raises(DeviceProofRequired):  # not without the code, though never registered
        await store.register_device(tenant, "new-1", "Till", "main", now)
    with pytest.raises(EnrollmentCodeInvalid):
        await store.register_device(tenant, "new-1", "Till", "main", now, code_hash="x" * 64)
    device = await store.register_device(tenant, "new-1", "Till", "main", now, code_hash="h" * 64)
    assert (device.generation, device.branch_id) == (1, "east")  # the admin's branch, not the till's claim
    stored = await store.get_device(tenant, "new-1")
    assert stored is not None and stored.branch_id == "east" and not stored.code_pending(now)


async def test_a_reset_with_a_branch_moves_the_device(store: Store, tenant: str) -> None:
    now = time.time()
    await store.register_device(tenant, "till-m", "Till", "main", now)
    moved = await store.reset_device(tenant, "till-m", "m" * 64, now + 60, now, branch_id="east")
    assert moved is not None and (moved.generation, moved.branch_id) == (2, "east")
    device = await store.register_device(tenant, "till-m", "Till", "main", now, code_hash="m" * 64)
    assert (device.generation, device.branch_id) == (3, "east")
    kept = await store.reset_device(tenant, "till-m", "k" * 64, now + 60, now)  # a plain reset keeps it
    assert kept is not None and kept.branch_id == "east"
    assert await store.reset_device(tenant, "nobody", "k" * 64, now + 60, now, branch_id="east") is None


async def test_last_seen_and_last_sale_only_move_forward_and_survive_a_re_registration(store: Store, tenant: str) -> None:
    now = time.time()
    first = await store.register_device(tenant, "till-t", "Till", "main", now)
    assert (first.last_seen, first.last_sale) == (0.0, 0.0)
    await store.touch_device(tenant, "till-t", now + 10, now + 5)
    await store.touch_device(tenant, "till-t", now + 3, 0.0)  # older, and no sale: changes nothing
    device = await store.get_device(tenant, "till-t")
    assert device is not None and (device.last_seen, device.last_sale) == (now + 10, now + 5)
    again = await store.register_device(tenant, "till-t", "Till", "main", now + 20, proven_generation=1)
    assert (again.last_seen, again.last_sale) == (now + 10, now + 5)
    await store.touch_device(tenant, "nobody", now, now)  # an unknown device: nothing, no error
    assert await store.get_device(tenant, "nobody") is None
