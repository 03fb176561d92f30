"""Registration and device admin, end to end."""

from __future__ import annotations

import time
import uuid

import jwt

from tests.conftest import JWT_SECRET, forge
from tests.routes.test_erpnext import assert_problem


def new_id() -> str:
    return f"till-{uuid.uuid4().hex[:8]}"


def test_register_returns_a_working_token(gateway) -> None:
    device = new_id()
    r = gateway.register(device)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["device_id"] == device and body["tenant_name"] == "Shop shop1" and body["token_type"] == "Bearer"
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == device and claims["tenant"] == "shop1" and claims["branch_id"] == "main"
    assert {"gen", "iat", "exp", "jti"} <= claims.keys()
    assert body["expires_at"].endswith("Z")
    assert jwt.get_unverified_header(body["token"])["kid"] == "k1"


def test_register_validates_the_body(gateway) -> None:
    r = gateway.request("POST", "/gateway/device/register", json={"device_id": "", "tenant_subdomain": "shop1"})
    body = assert_problem(r, 422, "validation_failed")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert ("device_id",) in locs and ("device_name",) in locs  # branch_id may be null or absent (no branch yet)
    r = gateway.request("POST", "/gateway/device/register", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(r, 422, "validation_failed")


def test_register_for_another_tenant_is_refused(gateway) -> None:
    r = gateway.register(new_id(), tenant_subdomain="shop2")
    assert_problem(r, 403, "tenant_mismatch")


def test_enrollment_key_is_required_when_configured(gateway) -> None:
    assert_problem(gateway.register(new_id(), enrollment_key="wrong"), 401, "enrollment_key_invalid")
    r = gateway.request("POST", "/gateway/device/register", json={
        "device_id": new_id(), "device_name": "x", "tenant_subdomain": "shop1", "branch_id": "main"})
    assert_problem(r, 401, "enrollment_key_invalid")
    # shop2 has no key: registration is open, as in the Till King contract.
    assert gateway.register(new_id(), tenant="shop2").status_code == 201


def test_blocked_device_gets_403_until_unblocked(gateway) -> None:
    device = new_id()
    token = gateway.token(device)
    assert gateway.request("GET", "/erpnext/Item", token=token).status_code == 200
    out = gateway.cli("devices", "block", device, "--tenant", "shop1")
    assert out.returncode == 0, out.stderr
    time.sleep(0.3)  # the test config caches device status for 0.2 s
    assert_problem(gateway.request("GET", "/erpnext/Item", token=token), 403, "device_blocked")
    assert_problem(gateway.register(device), 403, "device_blocked")
    listing = gateway.cli("devices", "list", "--tenant", "shop1")
    assert any(device in line and "blocked" in line for line in listing.stdout.splitlines())
    assert gateway.cli("devices", "unblock", device, "--tenant", "shop1").returncode == 0
    time.sleep(0.3)
    assert gateway.request("GET", "/erpnext/Item", token=token).status_code == 200


def test_unblocking_an_unknown_device_fails(gateway) -> None:
    out = gateway.cli("devices", "unblock", "never-seen", "--tenant", "shop1")
    assert out.returncode == 1 and "no device" in out.stderr
    out = gateway.cli("devices", "list", "--tenant", "nosuch")
    assert out.returncode == 1 and "unknown tenant" in out.stderr


def test_a_device_blocked_before_it_enrols_can_never_enrol(gateway) -> None:
    device = new_id()
    assert gateway.cli("devices", "block", device, "--tenant", "shop1").returncode == 0
    assert_problem(gateway.register(device), 403, "device_blocked")


def test_expired_token_is_401_after_leeway(gateway) -> None:
    device = new_id()
    gateway.token(device)
    now = int(time.time())
    stale = forge({"sub": device, "iat": now - 3600, "exp": now - 31})
    assert_problem(gateway.request("GET", "/erpnext/Item", token=stale), 401, "token_expired")
    # Inside the 30 s leeway a token still works (clock skew between tills and gateway).
    fresh = forge({"sub": device, "iat": now - 3600, "exp": now - 20})
    assert gateway.request("GET", "/erpnext/Item", token=fresh).status_code == 200


def test_tampered_token_is_401(gateway) -> None:
    token = gateway.token(new_id())
    header, payload, sig = token.split(".")
    other = forge({"sub": "someone-else"}).split(".")[1]
    assert_problem(gateway.request("GET", "/erpnext/Item", token=f"{header}.{other}.{sig}"), 401, "unauthorized")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    assert_problem(gateway.request("GET", "/erpnext/Item", token=f"{header}.{payload}.{flipped}"), 401, "unauthorized")
    assert_problem(gateway.request("GET", "/erpnext/Item", token=forge({}, secret="x" * 40)), 401, "unauthorized")


def test_alg_none_and_other_algorithms_are_rejected(gateway) -> None:
    device = new_id()
    gateway.token(device)
    now = int(time.time())
    claims = {"sub": device, "tenant": "shop1", "branch_id": "main", "gen": 1, "iat": now, "exp": now + 600, "jti": "j"}
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert_problem(gateway.request("GET", "/erpnext/Item", token=unsigned), 401, "unauthorized")
    hs512 = jwt.encode(claims, JWT_SECRET, algorithm="HS512", headers={"kid": "k1"})
    assert_problem(gateway.request("GET", "/erpnext/Item", token=hs512), 401, "unauthorized")
    assert_problem(gateway.request("GET", "/erpnext/Item", token=forge({"sub": device}, kid="unknown")), 401, "unauthorized")


def test_token_with_missing_claims_is_401(gateway) -> None:
    device = new_id()
    gateway.token(device)
    now = int(time.time())
    token = jwt.encode({"sub": device, "tenant": "shop1", "exp": now + 600}, JWT_SECRET, algorithm="HS256", headers={"kid": "k1"})
    assert_problem(gateway.request("GET", "/erpnext/Item", token=token), 401, "unauthorized")


def test_rotated_key_still_verifies_old_tokens(gateway_factory, tmp_path, standin_server) -> None:
    from tests.conftest import base_config

    old_secret = "previous-secret-0123456789abcdef0123456789"
    cfg = base_config(tmp_path, standin_server.url)
    cfg["gateway"]["jwt"]["verification_keys"] = [{"kid": "k0", "secret": old_secret}]
    gw = gateway_factory(cfg)
    device = new_id()
    gw.token(device)  # generation 1
    old = forge({"sub": device}, secret=old_secret, kid="k0")
    assert gw.request("GET", "/erpnext/Item", token=old).status_code == 200
    new = gw.token(device)  # generation 2, signed with the current key
    assert jwt.get_unverified_header(new)["kid"] == "k1"
    assert gw.request("GET", "/erpnext/Item", token=new).status_code == 200
    assert_problem(gw.request("GET", "/erpnext/Item", token=old), 401, "unauthorized")


def test_a_fresh_token_works_at_once_on_another_replica(gateway_factory, tmp_path, standin_server) -> None:
    from tests.conftest import base_config

    cfg = base_config(tmp_path, standin_server.url, device_cache_ttl=5)
    cfg["gateway"]["store"] = f"sqlite:///{tmp_path}/shared.db"
    a, b = gateway_factory(cfg), gateway_factory(cfg)
    device = new_id()
    old = a.token(device)
    assert b.request("GET", "/erpnext/Item", token=old).status_code == 200  # b caches generation 1
    new = a.token(device)
    assert b.request("GET", "/erpnext/Item", token=new).status_code == 200  # no 5 s wait
    assert_problem(b.request("GET", "/erpnext/Item", token=old), 401, "unauthorized")


def test_device_names_must_be_printable(gateway) -> None:
    r = gateway.register(new_id(), device_name="till\x1b[31m")
    body = assert_problem(r, 422, "validation_failed")
    assert body["errors"][0]["loc"] == ["device_name"]


def _code(out) -> str:
    """The enrollment code printed by `pos-edge devices reset`."""
    import re

    assert out.returncode == 0, out.stderr
    return re.search(r"code ([0-9A-F]{4}(?:-[0-9A-F]{4}){3})", out.stdout).group(1)


def test_an_existing_device_id_cannot_be_taken_over(gateway) -> None:
    from tests.sync.helpers import sale_txn, upload

    victim = new_id()
    token = gateway.token(victim)
    batch = upload(gateway, token, [sale_txn()])["batch_uuid"]
    assert_problem(gateway.register(victim, proof=None, enrollment_key="wrong"), 401, "enrollment_key_invalid")
    body = assert_problem(gateway.register(victim, proof=None), 409, "device_already_registered")
    assert "devices reset" in body["detail"]
    # the victim's token still works, and nobody else got one to read its batch
    assert gateway.request("GET", f"/sync/status/{batch}", token=token).status_code == 200
    other = gateway.token(new_id())
    assert_problem(gateway.register(victim, proof=other), 409, "device_already_registered")


def test_a_device_proves_itself_with_its_token_even_expired(gateway) -> None:
    device = new_id()
    first = gateway.token(device)
    second = gateway.register(device, proof=first)
    assert second.status_code == 201, second.text
    assert_problem(gateway.request("GET", "/erpnext/Item", token=first), 401, "unauthorized")
    now = int(time.time())
    expired = forge({"sub": device, "gen": 2, "iat": now - 90_000, "exp": now - 3_600})
    assert_problem(gateway.request("GET", "/erpnext/Item", token=expired), 401, "token_expired")
    third = gateway.register(device, proof=expired)  # a till whose token ran out re-registers with it
    assert third.status_code == 201, third.text
    # a token of a generation before the current one proves nothing
    assert_problem(gateway.register(device, proof=second.json()["token"]), 409, "device_already_registered")
    assert_problem(gateway.register(device, proof=forge({"sub": device, "gen": 3}, secret="z" * 40)),
                   409, "device_already_registered")


def test_open_registration_binds_identity_too(gateway) -> None:
    device = new_id()
    token = gateway.token(device, tenant="shop2")  # shop2 has no enrollment key
    assert_problem(gateway.register(device, tenant="shop2", proof=None), 409, "device_already_registered")
    assert gateway.register(device, tenant="shop2", proof=token).status_code == 201
    # the same id in another tenant is another device
    assert gateway.register(device, tenant="shop1", proof=None).status_code == 201


def test_an_admin_reset_gives_a_lost_till_a_one_time_code(gateway) -> None:
    device = new_id()
    token = gateway.token(device)
    code = _code(gateway.cli("devices", "reset", device, "--tenant", "shop1"))
    time.sleep(0.3)  # the test config caches device status for 0.2 s
    assert_problem(gateway.request("GET", "/erpnext/Item", token=token), 401, "unauthorized")  # retired at once
    listing = gateway.cli("devices", "list", "--tenant", "shop1").stdout
    assert any(device in line and " reset " in line for line in listing.splitlines())
    assert_problem(gateway.register(device, proof=None), 409, "device_already_registered")
    assert_problem(gateway.register(device, proof=token), 409, "device_already_registered")
    assert_problem(gateway.register(device, proof=None, enrollment_code="0000-0000-0000-0000"), 401,
                   "enrollment_code_invalid")
    r = gateway.register(device, proof=None, enrollment_code=code.lower().replace("-", ""))
    assert r.status_code == 201, r.text
    assert gateway.request("GET", "/erpnext/Item", token=r.json()["token"]).status_code == 200
    assert_problem(gateway.register(device, proof=None, enrollment_code=code), 401, "enrollment_code_invalid")


def test_the_code_may_be_typed_in_the_enrollment_key_field(gateway) -> None:
    device = new_id()
    gateway.token(device)
    code = _code(gateway.cli("devices", "reset", device, "--tenant", "shop1"))
    assert_problem(gateway.register(device, proof=None, enrollment_key="0000-0000-0000-0000"), 401,
                   "enrollment_key_invalid")
    assert gateway.register(device, proof=None, enrollment_key=code).status_code == 201


def test_an_expired_code_is_refused(gateway) -> None:
    device = new_id()
    gateway.token(device)
    code = _code(gateway.cli("devices", "reset", device, "--tenant", "shop1", "--hours", "0.0003"))  # ~1 s
    time.sleep(1.5)
    assert_problem(gateway.register(device, proof=None, enrollment_code=code), 401, "enrollment_code_invalid")
    out = gateway.cli("devices", "reset", "never-registered", "--tenant", "shop1")
    assert out.returncode == 1 and "no device" in out.stderr


def test_two_newcomers_racing_for_one_id_get_one_token(gateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    device = new_id()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: gateway.register(device, proof=None).status_code, range(8)))
    assert sorted(codes) == [201] + [409] * 7


def test_a_reregistration_whose_answer_was_lost_can_be_repeated(gateway) -> None:
    device = new_id()
    first = gateway.token(device)
    lost = gateway.register(device, proof=first)  # the till never got this answer
    assert lost.status_code == 201
    again = gateway.register(device, proof=first)  # so it asks again, with the same token
    assert again.status_code == 201, again.text
    assert jwt.decode(again.json()["token"], JWT_SECRET, algorithms=["HS256"])["gen"] == \
        jwt.decode(lost.json()["token"], JWT_SECRET, algorithms=["HS256"])["gen"]
    assert gateway.request("GET", "/erpnext/Item", token=again.json()["token"]).status_code == 200
    # another token of that older generation is no proof
    now = int(time.time())
    other = forge({"sub": device, "gen": 1, "jti": "another", "iat": now, "exp": now + 600})
    assert_problem(gateway.register(device, proof=other), 409, "device_already_registered")


def test_on_an_open_tenant_the_code_may_be_typed_in_the_key_field(gateway) -> None:
    device = new_id()
    gateway.token(device, tenant="shop2")
    code = _code(gateway.cli("devices", "reset", device, "--tenant", "shop2"))
    assert gateway.register(device, tenant="shop2", proof=None, enrollment_key=code).status_code == 201
    # a key sent to an open tenant by a new till is ignored, as before
    assert gateway.register(new_id(), tenant="shop2", proof=None, enrollment_key="whatever").status_code == 201
