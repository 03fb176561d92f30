"""The SQLite schema version: a file of the previous release opens with all its state,
a new file starts at the current version, a newer file is refused, and two processes
opening an old file at once migrate it once.

The old file is tests/fixtures/sqlite/release-0.1.0.db, written by release 0.1.0
(see make_release_db.py next to it for what it holds and how it was made).
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
import yaml

from edge.routes.devices import code_digest
from edge.store import DeviceBlocked, open_store, sqlite_schema
from edge.store.events import Event
from edge.store.sqlite_schema import SchemaTooNew, current_version, upgrade
from edge.sync.jobs import JobUpdate, batch_status
from tests.conftest import POS_EDGE, base_config, free_port

FIXTURE = Path(__file__).parents[1] / "fixtures" / "sqlite" / "release-0.1.0.db"
NOW = 1_700_000_000.0  # the fixture's clock (make_release_db.NOW)
T = "acme"


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    """A copy of the 0.1.0 file (the fixture itself stays untouched)."""
    path = tmp_path / "state.db"
    shutil.copyfile(FIXTURE, path)
    assert _user_version(path) == 0
    return path


def _user_version(path: Path) -> int:
    with closing(sqlite3.connect(path)) as c:
        return int(c.execute("PRAGMA user_version").fetchone()[0])


def _schema(path: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as c:
        return c.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()


async def test_a_release_0_1_0_file_opens_with_its_devices_keys_and_queue(old_file: Path) -> None:
    store = open_store(f"sqlite:///{old_file}")
    await store.open()
    try:
        devices = {d.device_id: d for d in await store.list_devices(T)}
        assert {k: (d.status, d.generation) for k, d in devices.items()} == {
            "till-1": ("active", 1), "till-2": ("blocked", 1), "till-3": ("active", 2)}
        assert devices["till-1"].device_name == "Till 1" and devices["till-1"].registered_at == NOW
        assert devices["till-3"].code_pending(NOW + 3) and not devices["till-1"].code_pending(NOW + 3)

        # the devices still behave: blocked stays blocked, the reset code still enrolls, a block lands
        with pytest.raises(DeviceBlocked):
            await store.register_device(T, "till-2", "Till 2", "main", NOW + 5)
        enrolled = await store.register_device(T, "till-3", "Till 3", "main", NOW + 5, code_hash=code_digest("ABCD-EFGH"))
        assert enrolled.generation == 3
        assert (await store.set_device_status(T, "till-1", "blocked", NOW + 6)).status == "blocked"
        assert (await store.register_device(T, "till-4", "Till 4", "main", NOW + 7)).generation == 1

        # idempotency keys: the completed answer is replayed, the one in progress is still held
        fresh, record = await store.claim_idempotency(T, "till-1", "k-done", "fp-done", NOW + 8, 30, 86400, "w2")
        assert not fresh and record is not None
        assert (record.state, record.status, bytes(record.body or b"")) == ("completed", 201, b'{"ok": true}')
        fresh, record = await store.claim_idempotency(T, "till-1", "k-open", "fp-open", NOW + 9, 30, 86400, "w2")
        assert not fresh and record is not None and record.state == "in_progress"  # leased until NOW + 30
        fresh, record = await store.claim_idempotency(T, "till-1", "k-open", "fp-open", NOW + 31, 30, 86400, "w2")
        assert fresh and record is not None and record.state == "in_progress"  # the lease ran out: taken over

        # posting records and the closure
        result, posting = await store.claim_posting(T, "ref-posted", "fp-posted", "w2", NOW + 10, 30, 86400)
        assert result == "posted" and posting is not None and posting.invoice == "ACC-PSINV-0001"
        result, posting = await store.claim_posting(T, "ref-unknown", "fp-unknown", "w2", NOW + 10, 30, 86400)
        assert result == "taken_over" and posting is not None and posting.unknown_since == NOW + 5
        assert await store.get_closure(T, "cl-1") == b'{"closure": 1}'

        # the sync batch: every job in its state, the return still waiting on its sale
        batch = await store.get_batch(T, "batch-1")
        assert batch is not None and batch.device == "till-1"
        jobs = {j.client_txn_id: j for j in batch.jobs}
        assert [j.client_txn_id for j in batch.jobs] == ["s1", "s2", "s3", "s4", "r1"]
        assert {k: j.status for k, j in jobs.items()} == {
            "s1": "synced", "s2": "failed", "s3": "retrying", "s4": "pending", "r1": "pending"}
        assert jobs["s1"].invoice_id == "ACC-PSINV-0002" and jobs["s2"].last_error == "Item X is disabled"
        assert jobs["r1"].depends_on == jobs["s1"].job_id and jobs["r1"].type == "return"
        assert batch_status(batch.jobs, NOW + 20) == "processing"
        assert [j.client_txn_id for j in await store.failed_jobs(T)] == ["s2"]

        # and the queue still works: the due jobs are claimed (not s3 before its retry time), settled
        claimed = {j.client_txn_id: j for j in await store.claim_jobs({T: 10}, NOW + 20, "w2", 30, 10)}
        assert set(claimed) == {"s4", "r1"}
        for txn in ("s4", "r1"):
            assert await store.settle_job(T, claimed[txn].job_id, "w2", JobUpdate("synced", invoice_id=f"INV-{txn}"), NOW + 21)
        assert await store.requeue_failed(T, [jobs["s2"].job_id], NOW + 22) == 1
        later = {j.client_txn_id: j for j in await store.claim_jobs({T: 10}, NOW + 61, "w2", 30, 10)}
        assert set(later) == {"s2", "s3"}
    finally:
        await store.close()
    assert _user_version(old_file) == current_version()


async def test_an_upgraded_file_has_exactly_the_tables_of_a_new_one(old_file: Path, tmp_path: Path) -> None:
    # Fails if a version-1 CREATE statement is edited instead of adding a migration:
    # a new file would get the edit, files in the field would not.
    new_file = tmp_path / "new.db"
    for path in (old_file, new_file):
        store = open_store(f"sqlite:///{path}")
        await store.open()
        await store.close()
    assert _schema(old_file) == _schema(new_file)
    assert _user_version(new_file) == _user_version(old_file) == current_version()


async def test_a_new_file_gets_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "fresh.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    await store.register_device(T, "till-1", "Till 1", "main", NOW)
    await store.close()
    assert current_version() == 6
    assert _user_version(path) == 6
    store = open_store(f"sqlite:///{path}")  # reopening changes nothing
    await store.open()
    assert [d.device_id for d in await store.list_devices(T)] == ["till-1"]
    await store.close()


async def test_a_version_1_file_gets_the_master_data_tables_and_keeps_its_state(old_file: Path, tmp_path: Path) -> None:
    # A file as the release before master data left it: 0.1.0's tables at version 1.
    with closing(sqlite3.connect(old_file, isolation_level=None)) as c:
        assert upgrade(c, sqlite_schema.MIGRATIONS[:1]) == 1
        assert not {"md_rows", "md_state"} & {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
    store = open_store(f"sqlite:///{old_file}")
    await store.open()
    try:
        assert {d.device_id: d.status for d in await store.list_devices(T)} == {
            "till-1": "active", "till-2": "blocked", "till-3": "active"}
        assert await store.get_closure(T, "cl-1") == b'{"closure": 1}'
        batch = await store.get_batch(T, "batch-1")
        assert batch is not None and len(batch.jobs) == 5

        assert (await store.md_state(T, "prices", "Standard Selling")).seq == 0
        assert await store.md_apply(T, "prices", "Standard Selling", [("ITEM-1", b'{"rate": 1}')], [], "c", NOW) == 1
        assert await store.md_lease(T, "prices", "Standard Selling", "w1", NOW, 30)
        rows = await store.md_page(T, "prices", "Standard Selling", 0, 10, True)
        assert [(r.name, r.seq, r.data) for r in rows] == [("ITEM-1", 1, b'{"rate": 1}')]
    finally:
        await store.close()
    assert _user_version(old_file) == current_version() == 6

    new_file = tmp_path / "new.db"
    store = open_store(f"sqlite:///{new_file}")
    await store.open()
    await store.close()
    assert _schema(old_file) == _schema(new_file)
    tables = {name for kind, name, _ in _schema(new_file) if kind == "table"}
    assert tables == {"devices", "idempotency", "closures", "sync_jobs", "sync_batches", "sync_batch_jobs", "postings",
                      "md_rows", "md_state", "events", "events_state", "audit", "sync_lanes", "live_marks"}


async def test_a_version_2_file_gets_the_event_tables_and_keeps_its_master_data(old_file: Path) -> None:
    # A file as the release before the event log left it: at version 2, with master data.
    with closing(sqlite3.connect(old_file, isolation_level=None)) as c:
        assert upgrade(c, sqlite_schema.MIGRATIONS[:2]) == 2
        c.execute("INSERT INTO md_rows VALUES ('acme', 'prices', '', 'ITEM-1', 1, 0, X'7b7d')")
        assert not {"events", "events_state"} & {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
    store = open_store(f"sqlite:///{old_file}")
    await store.open()
    try:
        assert [(r.name, r.data) for r in await store.md_page(T, "prices", "", 0, 10, True)] == [("ITEM-1", b"{}")]
        assert [d.device_id for d in await store.list_devices(T)] == ["till-1", "till-2", "till-3"]
        assert await store.ev_last(T) == ""
        first = await store.ev_append(T, "prices.changed", "", b"{}", NOW)
        assert first == "1" and await store.ev_read(T, "", 10, 0) == ([Event("1", "prices.changed", "", b"{}")], True)
    finally:
        await store.close()
    assert _user_version(old_file) == current_version() == 6


async def test_a_version_3_file_gets_the_audit_log_and_keeps_its_events(old_file: Path) -> None:
    with closing(sqlite3.connect(old_file, isolation_level=None)) as c:
        assert upgrade(c, sqlite_schema.MIGRATIONS[:3]) == 3
        c.execute("INSERT INTO events VALUES ('acme', 1, 'prices.changed', '', X'7b7d', 1.0)")
        c.execute("INSERT INTO events_state VALUES ('acme', 1, 0)")
        assert "audit" not in {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
    store = open_store(f"sqlite:///{old_file}")
    await store.open()
    try:
        assert await store.ev_last(T) == "1"
        assert await store.audit_list(T, "", 10) == []
        await store.audit_append(T, b'{"action": "block"}', NOW)
        assert [r.data for r in await store.audit_list(T, "", 10)] == [b'{"action": "block"}']
    finally:
        await store.close()
    assert _user_version(old_file) == current_version() == 6


async def test_a_version_4_file_gets_the_device_figures_and_keeps_its_devices(old_file: Path) -> None:
    with closing(sqlite3.connect(old_file, isolation_level=None)) as c:
        assert upgrade(c, sqlite_schema.MIGRATIONS[:4]) == 4
        assert "last_seen" not in {r[1] for r in c.execute("PRAGMA table_info(devices)")}
    store = open_store(f"sqlite:///{old_file}")
    await store.open()
    try:
        device = await store.get_device(T, "till-1")
        assert device is not None and (device.last_seen, device.last_sale) == (0.0, 0.0)
        await store.touch_device(T, "till-1", NOW + 1, NOW + 2)
        device = await store.get_device(T, "till-1")
        assert device is not None and (device.last_seen, device.last_sale) == (NOW + 1, NOW + 2)
    finally:
        await store.close()
    assert _user_version(old_file) == current_version() == 6


def _queue_at_v5(c: sqlite3.Connection, device: str, txns: list[str], at: float) -> None:
    """Queue jobs as a version-5 release did: rows in sync_jobs, no lane."""
    for txn in txns:
        c.execute(
            "INSERT INTO sync_jobs (job_id, tenant, device, batch_uuid, client_txn_id, type, payload, fingerprint, "
            "reference, status, next_attempt_at, created_at, updated_at) "
            "VALUES (?, 'acme', ?, 'batch-v5', ?, 'sale', X'7b7d', ?, ?, 'pending', ?, ?, ?)",
            (f"job-{device}-{txn}", device, txn, f"fp-{txn}", f"{device}/{txn}", at, at, at))


async def test_a_version_5_file_gets_lanes_for_its_queued_jobs_and_claims_them_fairly(old_file: Path) -> None:
    # A file as the release before device lanes left it: till-1's batch-1 (s3 retrying, s4 and
    # r1 pending) plus a backlog of 30 more of till-1, then 3 of till-5, queued at version 5.
    with closing(sqlite3.connect(old_file, isolation_level=None)) as c:
        assert upgrade(c, sqlite_schema.MIGRATIONS[:5]) == 5
        _queue_at_v5(c, "till-1", [f"b{i:02d}" for i in range(30)], NOW + 30)
        _queue_at_v5(c, "till-5", ["x0", "x1", "x2"], NOW + 40)
        assert not {"sync_lanes", "live_marks"} & {r[0] for r in c.execute("SELECT name FROM sqlite_master")}
    store = open_store(f"sqlite:///{old_file}")
    await store.open()
    try:
        with closing(sqlite3.connect(old_file)) as c:  # a lane per device with queued jobs, none for the rest
            assert c.execute("SELECT tenant, device, turn FROM sync_lanes ORDER BY device").fetchall() == [
                ("acme", "till-1", 0), ("acme", "till-5", 0)]
        claims = [[j.client_txn_id for j in await store.claim_jobs({T: 2}, NOW + 100, "w", 30, 100)] for _ in range(4)]
        # till-5's three interleaved from the start; till-1's in its order: due time (s3 retries at
        # NOW + 60, after the backlog's NOW + 30), then upload order
        assert claims == [["s4", "x0"], ["r1", "x1"], ["b00", "x2"], ["b01", "b02"]]
        rest = [j.client_txn_id for j in await store.claim_jobs({T: 100}, NOW + 100, "w", 30, 100)]
        assert rest == [f"b{i:02d}" for i in range(3, 30)] + ["s3"]
    finally:
        await store.close()
    assert _user_version(old_file) == current_version() == 6


async def _plan(tmp_path: Path, query: str, params: tuple[object, ...]) -> str:
    """SQLite's plan for `query` on a new file at the current schema."""
    path = tmp_path / "state.db"
    store = open_store(f"sqlite:///{path}")
    await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as c:
        return " ".join(str(r[-1]) for r in c.execute("EXPLAIN QUERY PLAN " + query, params))


async def test_a_lane_claim_reads_the_device_index(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "SELECT job_id FROM sync_jobs WHERE tenant=? AND device=? "
                       "AND status IN ('pending', 'retrying') AND next_attempt_at <= ? AND (owner = '' OR lease_until <= ?) "
                       "ORDER BY next_attempt_at, rowid LIMIT 1", ("t", "d", NOW, NOW))
    assert "USING INDEX sync_jobs_device_due" in plan and "TEMP B-TREE" not in plan, plan


async def test_a_till_delta_reads_the_seq_index(tmp_path: Path) -> None:
    plan = await _plan(tmp_path, "SELECT name, seq, deleted, data FROM md_rows WHERE tenant=? AND collection=? "
                       "AND scope=? AND seq > ? AND deleted=0 ORDER BY seq LIMIT ?", ("t", "p", "", 0, 100))
    assert "USING INDEX md_rows_seq" in plan and "TEMP B-TREE" not in plan, plan


def _newer_file(tmp_path: Path) -> Path:
    path = tmp_path / "newer.db"
    shutil.copyfile(FIXTURE, path)
    with closing(sqlite3.connect(path, isolation_level=None)) as c:
        c.execute(f"PRAGMA user_version = {current_version() + 1}")
    return path


async def test_a_file_of_a_newer_release_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = _newer_file(tmp_path)
    before = path.read_bytes()
    store = open_store(f"sqlite:///{path}")
    with pytest.raises(SchemaTooNew) as caught:
        await store.open()
    await store.close()
    message = str(caught.value)
    assert str(path) in message
    assert f"schema version {current_version() + 1}, newer than this pos-edge knows (up to {current_version()})" in message
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", ["serve", "devices"])
def test_the_cli_says_why_it_refuses_a_newer_file(tmp_path: Path, command: str) -> None:
    path = _newer_file(tmp_path)
    cfg = base_config(tmp_path, "http://127.0.0.1:9")
    cfg["gateway"]["store"] = f"sqlite:///{path}"
    config = tmp_path / "tenants.yaml"
    config.write_text(yaml.safe_dump(cfg))
    if command == "serve":  # at once, not after --store-wait: waiting would not help
        args = ["serve", "--config", str(config), "--port", str(free_port()), "--store-wait", "20"]
    else:
        args = ["devices", "list", "--tenant", "shop1", "--config", str(config)]
    started = time.monotonic()
    out = subprocess.run([POS_EDGE, *args], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out.stderr
    assert time.monotonic() - started < 10
    assert f"cannot use the state store: {path} has schema version {current_version() + 1}" in out.stderr
    assert "Traceback" not in out.stderr


def _add_note_column(c: sqlite3.Connection) -> None:
    """A synthetic next version (test only): a column with a default."""
    c.execute("ALTER TABLE devices ADD COLUMN note TEXT NOT NULL DEFAULT ''")


def test_later_migrations_run_in_order_once(old_file: Path) -> None:
    ran: list[str] = []

    def v2(c: sqlite3.Connection) -> None:
        ran.append("v2")
        _add_note_column(c)

    def v3(c: sqlite3.Connection) -> None:
        ran.append("v3")
        c.execute("UPDATE devices SET note = 'v3 saw ' || status")

    n = current_version()
    conn = sqlite3.connect(old_file, isolation_level=None)
    try:
        assert upgrade(conn, [*sqlite_schema.MIGRATIONS, v2]) == n + 1
        assert upgrade(conn, [*sqlite_schema.MIGRATIONS, v2, v3]) == n + 2
        assert upgrade(conn, [*sqlite_schema.MIGRATIONS, v2, v3]) == n + 2
        assert ran == ["v2", "v3"]
        assert conn.execute("SELECT device_id, note FROM devices ORDER BY device_id").fetchall() == [
            ("till-1", "v3 saw active"), ("till-2", "v3 saw blocked"), ("till-3", "v3 saw active")]
        with pytest.raises(SchemaTooNew):  # and this code's own version now refuses it
            upgrade(conn)
    finally:
        conn.close()
    assert _user_version(old_file) == n + 2


def test_a_failing_migration_leaves_the_file_as_it_was(old_file: Path) -> None:
    def broken(c: sqlite3.Connection) -> None:
        _add_note_column(c)
        raise RuntimeError("migration bug")

    before = _schema(old_file)
    conn = sqlite3.connect(old_file, isolation_level=None)
    try:
        with pytest.raises(RuntimeError, match="migration bug"):
            upgrade(conn, [*sqlite_schema.MIGRATIONS, broken])
        assert not conn.in_transaction
    finally:
        conn.close()
    assert _user_version(old_file) == 0 and _schema(old_file) == before


async def test_two_stores_opening_an_old_file_at_once_migrate_it_once(
    old_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    inside = threading.Event()

    def slow_v2(c: sqlite3.Connection) -> None:
        ran.append(threading.current_thread().name)
        inside.set()
        time.sleep(0.5)  # the other store reaches BEGIN IMMEDIATE meanwhile, and waits
        _add_note_column(c)

    released = current_version()
    monkeypatch.setattr(sqlite_schema, "MIGRATIONS", [*sqlite_schema.MIGRATIONS, slow_v2])
    stores = [open_store(f"sqlite:///{old_file}") for _ in range(2)]
    try:
        await asyncio.gather(*(s.open() for s in stores))  # each opens on a thread of its own
        assert inside.is_set() and len(ran) == 1
        for s in stores:
            assert [d.device_id for d in await s.list_devices(T)] == ["till-1", "till-2", "till-3"]
    finally:
        for s in stores:
            await s.close()
    assert _user_version(old_file) == released + 1


async def test_two_stores_opening_an_old_file_at_once_both_open(old_file: Path) -> None:
    stores = [open_store(f"sqlite:///{old_file}") for _ in range(2)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        claims = await asyncio.gather(*(s.claim_jobs({T: 10}, NOW + 20, f"w{i}", 30, 10) for i, s in enumerate(stores)))
        assert sorted(j.client_txn_id for jobs in claims for j in jobs) == ["r1", "s4"]  # each job leased once
    finally:
        for s in stores:
            await s.close()
    assert _user_version(old_file) == current_version()
