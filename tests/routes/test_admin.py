"""The admin API (`/admin/...`) over real sockets, on both stores: logins, token confusion both
ways, every role x scope x action of this slice (stores, terminals, block/unblock, audit),
and the audit records the changes leave."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from edge.admin.principals import hash_password
from edge.standin import StandInServer
from tests.conftest import Gateway, base_config, start_gateway
from tests.routes.test_erpnext import assert_problem

BOSS_KEY = "boss-key-" + "b" * 24
VIEW_KEY = "viewer-key-" + "v" * 24
OPS_KEY = "ops-key-" + "o" * 24
BOSS2_KEY = "boss2-key-" + "c" * 24
MANAGER_PASSWORD = "correct horse battery staple"
# keys come from the environment (a key in clear in tenants.yaml is refused); the gateways and
# the CLI these tests start inherit it
os.environ.update({"TEST_ADMIN_VIEW_KEY": VIEW_KEY, "TEST_ADMIN_OPS_KEY": OPS_KEY, "TEST_ADMIN_BOSS2_KEY": BOSS2_KEY})


def admin_config(tmp: Any, erp_url: str, store: str, **admin: Any) -> dict[str, Any]:
    cfg = base_config(tmp, erp_url, store=store, admin={"login_rate_limit": "1000/minute", **admin},
                      operators=[{"name": "ops", "key": "${TEST_ADMIN_OPS_KEY}"}])
    shop1 = cfg["tenants"]["shop1"]
    shop1["branches"] = {**shop1["branches"],
                         "east": {"pos_profile": "Shop One Main", "warehouse": "Stores - S1", "cost_center": "Main - S1"}}
    shop1["admins"] = [
        {"name": "boss", "role": "company_admin", "key_sha256": hashlib.sha256(BOSS_KEY.encode()).hexdigest()},
        {"name": "mgr", "role": "store_manager", "branches": ["main"], "password_scrypt": hash_password(MANAGER_PASSWORD)},
        {"name": "viewer", "role": "viewer", "key": "${TEST_ADMIN_VIEW_KEY}"},
    ]
    cfg["tenants"]["shop2"]["admins"] = [{"name": "boss2", "role": "company_admin", "key": "${TEST_ADMIN_BOSS2_KEY}"}]
    return cfg


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
       standin_server: StandInServer) -> Iterator[Gateway]:
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    tmp = tmp_path_factory.mktemp(f"admin-{request.param}")
    gateway = start_gateway(tmp, admin_config(tmp, standin_server.url, request.param))
    yield gateway
    gateway.stop()


def login(gw: Gateway, name: str, tenant: str = "shop1", **secret: str) -> httpx.Response:
    return gw.request("POST", "/admin/login", tenant=tenant, json={"name": name, **secret})


def token(gw: Gateway, name: str, tenant: str = "shop1") -> str:
    secret = {"boss": {"key": BOSS_KEY}, "mgr": {"password": MANAGER_PASSWORD}, "viewer": {"key": VIEW_KEY},
              "ops": {"key": OPS_KEY}, "boss2": {"key": BOSS2_KEY}}[name]
    r = login(gw, name, tenant, **secret)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def tills(gw: Gateway) -> dict[str, str]:
    """A fresh till in each of shop1's branches: branch -> device id."""
    made = {}
    for branch in ("main", "east"):
        device = f"{branch}-{uuid.uuid4().hex[:6]}"
        assert gw.register(device, branch_id=branch).status_code == 201
        made[branch] = device
    return made


def test_principals_log_in_with_their_key_or_password(gw: Gateway) -> None:
    r = login(gw, "mgr", password=MANAGER_PASSWORD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["role"], body["tenant"], body["branches"], body["token_type"]) == ("store_manager", "shop1", ["main"],
                                                                                     "Bearer")
    assert login(gw, "boss", key=BOSS_KEY).json()["role"] == "company_admin"  # a key kept as its sha256
    assert login(gw, "viewer", key=VIEW_KEY).json()["role"] == "viewer"  # a key from the environment
    assert login(gw, "ops", "shop2", key=OPS_KEY).json()["tenant"] == "*"  # an operator, on any tenant's host
    for wrong in (login(gw, "boss", key=BOSS_KEY + "x"), login(gw, "mgr", password="guess"),
                  login(gw, "nobody", key=BOSS_KEY), login(gw, "boss", password=BOSS_KEY),
                  login(gw, "boss2", key=BOSS2_KEY)):  # shop2's admin, on shop1's host
        assert_problem(wrong, 401, "admin_login_failed")
    assert_problem(login(gw, "boss", key=BOSS_KEY, password="x"), 422, "validation_failed")
    assert_problem(gw.request("POST", "/admin/login", json={"name": "boss", "key": BOSS_KEY, "role": "operator"}),
                   422, "validation_failed")
    lines = "\n".join(gw.wait_log("admin_login_failed"))
    assert '"admin_login_failed"' in lines and BOSS_KEY not in lines and MANAGER_PASSWORD not in lines


def test_tokens_are_never_confused(gw: Gateway) -> None:
    device = gw.token(f"till-{uuid.uuid4().hex[:6]}")
    admin = token(gw, "boss")
    assert_problem(gw.request("GET", "/admin/terminals", token=device), 401, "admin_unauthorized")
    assert_problem(gw.request("GET", "/erpnext/Item", token=admin), 401, "unauthorized")
    assert_problem(gw.request("GET", "/v1/products", token=admin), 401, "unauthorized")
    assert_problem(gw.request("GET", "/admin/terminals"), 401, "admin_unauthorized")
    assert_problem(gw.request("GET", "/admin/terminals", token=admin[:-2] + "xx"), 401, "admin_unauthorized")
    # shop2's company admin on shop1's host; shop1's on shop2's; the operator anywhere
    assert_problem(gw.request("GET", "/admin/terminals", token=token(gw, "boss2", "shop2")), 401, "admin_unauthorized")
    assert_problem(gw.request("GET", "/admin/terminals", tenant="shop2", token=admin), 401, "admin_unauthorized")
    ops = token(gw, "ops")
    assert gw.request("GET", "/admin/terminals", tenant="shop2", token=ops).status_code == 200


def test_each_role_sees_and_does_what_it_may(gw: Gateway) -> None:
    made = tills(gw)
    boss, mgr, viewer, ops = (token(gw, n) for n in ("boss", "mgr", "viewer", "ops"))

    def stores(tok: str) -> httpx.Response:
        return gw.request("GET", "/admin/stores", token=tok)

    assert {s["branch_id"] for s in stores(boss).json()["stores"]} == {"main", "east"}
    assert {s["branch_id"] for s in stores(viewer).json()["stores"]} == {"main", "east"}
    assert stores(ops).status_code == 200
    assert_problem(stores(mgr), 403, "admin_forbidden")
    main = next(s for s in stores(boss).json()["stores"] if s["branch_id"] == "main")
    assert main["pos_profile"] == "Shop One Main" and main["terminals"]["total"] >= 1

    def terminal_ids(tok: str, query: str = "") -> set[str]:
        r = gw.request("GET", "/admin/terminals" + query, token=tok)
        assert r.status_code == 200, r.text
        return {t["device_id"] for t in r.json()["terminals"]}

    assert set(made.values()) <= terminal_ids(boss) and set(made.values()) <= terminal_ids(viewer)
    assert made["main"] in terminal_ids(mgr) and made["east"] not in terminal_ids(mgr)  # its store only
    assert made["east"] in terminal_ids(boss, "?branch_id=east") and made["main"] not in terminal_ids(boss, "?branch_id=east")
    assert_problem(gw.request("GET", "/admin/terminals?branch_id=east", token=mgr), 404, "not_found")

    def block(tok: str, device: str, action: str = "block") -> httpx.Response:
        return gw.request("POST", f"/admin/terminals/{device}/{action}", token=tok)

    assert_problem(block(mgr, made["east"]), 404, "not_found")  # another store's till: as if it did not exist
    assert_problem(block(mgr, "no-such-till"), 404, "not_found")
    assert_problem(block(viewer, made["main"]), 403, "admin_forbidden")
    r = block(mgr, made["main"])
    assert r.status_code == 200 and r.json()["status"] == "blocked", r.text
    assert block(boss, made["east"]).json()["status"] == "blocked"
    assert block(ops, made["east"], "unblock").json()["status"] == "active"
    assert_problem(block(mgr, made["east"], "unblock"), 404, "not_found")


def test_a_blocked_till_is_refused_at_its_next_request_and_the_audit_says_who(gw: Gateway) -> None:
    device = f"stolen-{uuid.uuid4().hex[:6]}"
    till = gw.token(device)
    assert gw.request("GET", "/erpnext/Item", token=till).status_code == 200
    mgr = token(gw, "mgr")
    assert gw.request("POST", f"/admin/terminals/{device}/block", token=mgr).status_code == 200
    assert_problem(gw.request("GET", "/erpnext/Item", token=till), 403, "device_blocked")  # this process: at once

    boss = token(gw, "boss")
    r = gw.request("GET", "/admin/audit?limit=50", token=boss)
    assert r.status_code == 200, r.text
    entries = r.json()["entries"]
    blocked = next(e for e in entries if e["action"] == "block" and e["target"] == device)
    assert (blocked["actor"], blocked["role"], blocked["address"]) == ("mgr", "store_manager", "127.0.0.1")
    assert blocked["request_id"] and blocked["at"].endswith("Z")
    assert any(e["action"] == "login" and e["actor"] == "boss" for e in entries)
    older = gw.request("GET", f"/admin/audit?limit=1&before={entries[0]['id']}", token=boss).json()["entries"]
    assert older and older[0]["id"] == entries[1]["id"]  # paging, newest first
    for tok in (mgr, token(gw, "viewer")):
        assert_problem(gw.request("GET", "/admin/audit", token=tok), 403, "admin_forbidden")
    assert_problem(gw.request("GET", "/admin/audit?limit=0", token=boss), 422, "validation_failed")
    assert '"admin_action"' in "\n".join(gw.wait_log('"admin_action"'))


def test_adding_a_store_answers_the_tenants_yaml_snippet(gw: Gateway) -> None:
    boss = token(gw, "boss")
    r = gw.request("POST", "/admin/stores", token=boss,
                   json={"branch_id": "west", "pos_profile": "Shop One West", "warehouse": "Stores - S1"})
    body = assert_problem(r, 409, "store_in_config")
    assert "west:" in body["snippet"] and "pos_profile: Shop One West" in body["snippet"]
    assert_problem(gw.request("POST", "/admin/stores", token=boss, json={"pos_profile": "x"}), 422, "validation_failed")
    assert_problem(gw.request("POST", "/admin/stores", token=token(gw, "mgr"), json={"branch_id": "w"}), 403,
                   "admin_forbidden")


def test_failed_logins_are_limited_per_address(tmp_path: Any, standin_server: StandInServer) -> None:
    gw = start_gateway(tmp_path, admin_config(tmp_path, standin_server.url, "sqlite", login_rate_limit="3/minute"))
    try:
        codes = [login(gw, "boss", key="wrong-" + "x" * 24).status_code for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        r = login(gw, "boss", key="wrong-" + "x" * 24)
        assert_problem(r, 429, "rate_limited")
        assert int(r.headers["retry-after"]) >= 1
        # past the limit even the right key is not tried: a right guess must look like a wrong one
        assert_problem(login(gw, "boss", key=BOSS_KEY), 429, "rate_limited")
        assert '"admin_login_limited"' in "\n".join(gw.wait_log("admin_login_limited"))
    finally:
        gw.stop()


def test_the_cli_blocks_through_the_same_action_and_is_audited(gw: Gateway) -> None:
    device = f"cli-{uuid.uuid4().hex[:6]}"
    till = gw.token(device)
    done = gw.cli("devices", "block", "--tenant", "shop1", device)
    assert done.returncode == 0 and f"{device}: blocked" in done.stdout, done.stderr
    assert_problem(gw.request("GET", "/erpnext/Item", token=till), 403, "device_blocked")
    entries = gw.request("GET", "/admin/audit", token=token(gw, "boss")).json()["entries"]
    record = next(e for e in entries if e["target"] == device)
    assert record["action"] == "block" and record["actor"].startswith("cli") and record["role"] == "operator"


def test_hash_password_makes_a_value_that_logs_in(tmp_path: Any, standin_server: StandInServer) -> None:
    import subprocess

    from tests.conftest import POS_EDGE

    made = subprocess.run([POS_EDGE, "admin", "hash-password"], input="a long enough password\n", text=True,
                          capture_output=True, timeout=30)
    assert made.returncode == 0 and made.stdout.startswith("scrypt$"), made.stderr
    assert "a long enough password" not in made.stdout
    cfg = admin_config(tmp_path, standin_server.url, "sqlite")
    cfg["tenants"]["shop1"]["admins"].append(
        {"name": "clerk", "role": "viewer", "password_scrypt": made.stdout.strip()})
    gw = start_gateway(tmp_path, cfg)
    try:
        assert login(gw, "clerk", password="a long enough password").status_code == 200
        assert_problem(login(gw, "clerk", password="a long enough passwore"), 401, "admin_login_failed")
    finally:
        gw.stop()


def test_a_terminal_made_ahead_enrols_with_its_code_into_its_store(gw: Gateway) -> None:
    mgr, viewer = token(gw, "mgr"), token(gw, "viewer")
    device = f"new-{uuid.uuid4().hex[:6]}"

    def provision(tok: str, branch: str, dev: str = device) -> httpx.Response:
        return gw.request("POST", "/admin/terminals", token=tok,
                          json={"device_id": dev, "device_name": "Counter 3", "branch_id": branch})

    assert_problem(provision(mgr, "east"), 404, "not_found")  # another store: as if it did not exist
    assert_problem(provision(viewer, "main"), 403, "admin_forbidden")
    assert_problem(provision(token(gw, "boss"), "nowhere"), 422, "validation_failed")
    r = provision(mgr, "main")
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["terminal"]["status"] == "reset" and made["terminal"]["registered"] is False
    assert_problem(provision(mgr, "main"), 409, "terminal_exists")
    # without the code the id cannot be taken, even with the tenant's enrollment key
    assert_problem(gw.register(device, branch_id="main"), 409, "device_already_registered")
    r = gw.register(device, branch_id="east", enrollment_key=None, enrollment_code=made["enrollment_code"])
    assert r.status_code == 201, r.text
    assert r.json()["branch_id"] == "main"  # the store the admin chose, not the till's claim
    assert_problem(gw.register(f"{device}", proof=None, enrollment_code=made["enrollment_code"]), 401,
                   "enrollment_code_invalid")  # used up
    entries = gw.request("GET", "/admin/audit", token=token(gw, "boss")).json()["entries"]
    made_by = next(e for e in entries if e["action"] == "provision" and e["target"] == device)
    assert (made_by["actor"], made_by["details"]) == ("mgr", {"branch_id": "main"})
    assert made["enrollment_code"] not in str(entries)  # the code is never kept, not even in the audit


def test_reset_move_and_delete_by_role_and_scope(gw: Gateway) -> None:
    made = tills(gw)
    boss, mgr = token(gw, "boss"), token(gw, "mgr")
    old = gw.tokens[("shop1", made["main"])]
    r = gw.request("POST", f"/admin/terminals/{made['main']}/reset", token=mgr)
    assert r.status_code == 200, r.text
    assert_problem(gw.request("GET", "/erpnext/Item", token=old), 401, "unauthorized")  # its tokens are retired
    code = r.json()["enrollment_code"]
    assert gw.register(made["main"], proof=None, enrollment_code=code).status_code == 201
    assert_problem(gw.request("POST", f"/admin/terminals/{made['east']}/reset", token=mgr), 404, "not_found")

    # a move: only to a store the principal sees; the till lands there with its code
    assert_problem(gw.request("POST", f"/admin/terminals/{made['main']}/move", token=mgr, json={"branch_id": "east"}),
                   404, "not_found")
    assert_problem(gw.request("POST", f"/admin/terminals/{made['main']}/move", token=boss, json={}), 422,
                   "validation_failed")
    r = gw.request("POST", f"/admin/terminals/{made['main']}/move", token=boss, json={"branch_id": "east"})
    assert r.status_code == 200 and r.json()["terminal"]["branch_id"] == "east", r.text
    again = gw.register(made["main"], proof=None, branch_id="main", enrollment_code=r.json()["enrollment_code"])
    assert again.status_code == 201 and again.json()["branch_id"] == "east", again.text
    assert_problem(gw.request("POST", f"/admin/terminals/{made['main']}/block", token=mgr), 404, "not_found")

    # delete: a registered till needs force
    assert_problem(gw.request("DELETE", f"/admin/terminals/{made['east']}", token=token(gw, "viewer")), 403,
                   "admin_forbidden")
    assert_problem(gw.request("DELETE", f"/admin/terminals/{made['east']}", token=boss), 409, "terminal_registered")
    assert gw.request("DELETE", f"/admin/terminals/{made['east']}?force=true", token=boss).status_code == 204
    assert_problem(gw.request("DELETE", f"/admin/terminals/{made['east']}", token=boss), 404, "not_found")
    actions = {(e["action"], e["target"]) for e in gw.request("GET", "/admin/audit", token=boss).json()["entries"]}
    assert {("reset", made["main"]), ("move", made["main"]), ("delete", made["east"])} <= actions


@pytest.mark.usefixtures("pos_data")
def test_a_terminals_failed_jobs_are_listed_and_retried(gw: Gateway, standin: Any) -> None:
    from tests.sync.helpers import sale_txn, upload, wait_batch

    device = f"jobs-{uuid.uuid4().hex[:6]}"
    till = gw.token(device)
    doomed = sale_txn()
    standin.fail_invoices(doomed["client_txn_id"], times=1, status=417, exc_type="ValidationError", message="no")
    batch = upload(gw, till, [doomed])["batch_uuid"]
    assert wait_batch(gw, till, batch)["status"] == "failed"
    mgr, viewer = token(gw, "mgr"), token(gw, "viewer")

    def row() -> dict[str, Any]:
        terminals = gw.request("GET", "/admin/terminals?branch_id=main", token=viewer).json()["terminals"]
        return next(t for t in terminals if t["device_id"] == device)

    assert row()["jobs"] == {"queued": 0, "failed": 1} and row()["last_seen"]  # its upload was a request
    main = next(s for s in gw.request("GET", "/admin/stores", token=viewer).json()["stores"] if s["branch_id"] == "main")
    assert main["sync"]["failed"] >= 1 and set(main["sync"]) == {"depth", "failed", "oldest_pending_age"}
    r = gw.request("GET", f"/admin/terminals/{device}/jobs", token=viewer)
    assert r.status_code == 200, r.text
    failed = r.json()["failed"]
    assert [j["client_txn_id"] for j in failed] == [doomed["client_txn_id"]] and "no" in failed[0]["last_error"]
    assert_problem(gw.request("POST", f"/admin/terminals/{device}/jobs/retry", token=viewer), 403, "admin_forbidden")
    r = gw.request("POST", f"/admin/terminals/{device}/jobs/retry", token=mgr, json={"job_ids": ["someone-elses"]})
    assert r.json()["requeued"] == 0  # never another terminal's job
    r = gw.request("POST", f"/admin/terminals/{device}/jobs/retry", token=mgr)
    assert r.status_code == 200 and r.json()["requeued"] == 1, r.text
    assert wait_batch(gw, till, batch)["status"] == "synced"  # the fault was one attempt long
    deadline = time.monotonic() + 10
    while not row()["last_sale"]:  # the synced sale is its last sale (written in the background)
        assert time.monotonic() < deadline, row()
        time.sleep(0.1)
    assert row()["jobs"] == {"queued": 0, "failed": 0}
    entries = gw.request("GET", "/admin/audit", token=token(gw, "boss")).json()["entries"]
    assert any(e["action"] == "retry" and e["target"] == device and e["details"] == {"requeued": 1} for e in entries)


@pytest.mark.usefixtures("pos_data")
def test_a_live_sale_is_the_terminals_and_its_stores_last_sale(gw: Gateway) -> None:
    from tests.routes.test_pos import sale

    device = f"live-{uuid.uuid4().hex[:6]}"
    till = gw.token(device)
    r = gw.request("POST", "/v1/sale", token=till, json=sale(till_id=device))
    assert r.status_code == 201, r.text
    boss = token(gw, "boss")
    deadline = time.monotonic() + 10
    while True:
        row = next(t for t in gw.request("GET", "/admin/terminals", token=boss).json()["terminals"]
                   if t["device_id"] == device)
        if row["last_sale"]:
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.1)
    main = next(s for s in gw.request("GET", "/admin/stores", token=boss).json()["stores"] if s["branch_id"] == "main")
    assert main["last_sale"] is not None and main["last_sale"] >= row["last_sale"]


def test_with_write_config_a_new_store_is_written_into_tenants_yaml_and_served(tmp_path: Any,
                                                                            standin_server: StandInServer) -> None:
    import yaml

    cfg = admin_config(tmp_path, standin_server.url, "sqlite", write_config=True)
    gw = start_gateway(tmp_path, cfg)
    try:
        path = gw.config_path
        path.write_text("# the admin's own notes stay\n" + path.read_text())
        before = path.read_text()
        boss = token(gw, "boss")
        r = gw.request("POST", "/admin/stores", token=boss,
                       json={"branch_id": "west", "pos_profile": "Shop One Main", "warehouse": "Stores - S1"})
        assert r.status_code == 201, r.text
        assert r.json()["reloaded"] is True
        after = path.read_text()
        assert after.startswith("# the admin's own notes stay\n") and len(after.splitlines()) == len(before.splitlines()) + 1
        assert yaml.safe_load(after)["tenants"]["shop1"]["branches"]["west"] == {
            "pos_profile": "Shop One Main", "warehouse": "Stores - S1"}
        assert "west" in {s["branch_id"] for s in gw.request("GET", "/admin/stores", token=boss).json()["stores"]}
        assert gw.register(f"w-{uuid.uuid4().hex[:4]}", branch_id="west").status_code == 201  # served at once
        assert_problem(gw.request("POST", "/admin/stores", token=boss,
                                  json={"branch_id": "west", "pos_profile": "x", "warehouse": "y"}), 422,
                       "validation_failed")  # exists
        entries = gw.request("GET", "/admin/audit", token=boss).json()["entries"]
        assert any(e["action"] == "add_store" and e["target"] == "west" for e in entries)
        # what an admin sends is text: it never reaches into the gateway's environment
        r = gw.request("POST", "/admin/stores", token=boss, json={
            "branch_id": "probe", "pos_profile": "${TEST_ADMIN_OPS_KEY}", "warehouse": "$${NOPE} ${NOPE}"})
        assert r.status_code == 201, r.text
        probe = next(s for s in gw.request("GET", "/admin/stores", token=boss).json()["stores"]
                     if s["branch_id"] == "probe")
        assert (probe["pos_profile"], probe["warehouse"]) == ("${TEST_ADMIN_OPS_KEY}", "$${NOPE} ${NOPE}")
        assert OPS_KEY not in gw.request("GET", "/admin/stores", token=boss).text

        # a token says who logged in; what they may do is the configuration's: removed, it is refused
        viewer = token(gw, "viewer")
        assert gw.request("GET", "/admin/terminals", token=viewer).status_code == 200
        cfg_now = yaml.safe_load(path.read_text())
        cfg_now["tenants"]["shop1"]["admins"] = [a for a in cfg_now["tenants"]["shop1"]["admins"]
                                                 if a["name"] != "viewer"]
        path.write_text(yaml.safe_dump(cfg_now, sort_keys=False))
        deadline = time.monotonic() + 15
        while gw.request("GET", "/admin/terminals", token=viewer).status_code != 401:
            assert time.monotonic() < deadline, "the removed admin's token still works"
            time.sleep(0.1)
    finally:
        gw.stop()


def test_every_write_action_by_role_and_scope(gw: Gateway) -> None:
    """viewer: 403 everywhere; store manager: 404 for another store's terminal; operator and
    company admin: allowed (each action on a terminal of its own, so one does not hide the next)."""
    tok = {n: token(gw, n) for n in ("boss", "mgr", "viewer", "ops")}
    actions: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "block", None), ("POST", "unblock", None), ("POST", "reset", None),
        ("POST", "move", {"branch_id": "main"}), ("POST", "jobs/retry", None), ("DELETE", "", None)]

    def call(who: str, method: str, device: str, action: str, body: dict[str, Any] | None) -> httpx.Response:
        path = f"/admin/terminals/{device}" + (f"/{action}" if action else "")
        return gw.request(method, path + ("?force=true" if method == "DELETE" else ""), token=tok[who], json=body)

    for method, action, body in actions:
        made = tills(gw)
        assert_problem(call("viewer", method, made["main"], action, body), 403, "admin_forbidden")
        assert_problem(call("mgr", method, made["east"], action, body), 404, "not_found")
        for who in ("boss", "ops"):
            fresh = tills(gw)["east"]
            r = call(who, method, fresh, action, body)
            assert r.status_code in (200, 204), (who, action, r.text)
    assert_problem(gw.request("POST", "/admin/terminals", token=tok["viewer"],
                              json={"device_id": "x1", "branch_id": "main"}), 403, "admin_forbidden")
    assert gw.request("POST", "/admin/terminals", token=tok["ops"],
                      json={"device_id": f"o-{uuid.uuid4().hex[:6]}", "branch_id": "east"}).status_code == 201
