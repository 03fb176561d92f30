"""Device JWTs: what verifies and what does not."""

from __future__ import annotations

import time

import jwt
import pytest

from edge.config import JwtConfig, JwtKey
from edge.tokens import InvalidToken, TokenService

SECRET = "s" * 40


def service(**kw) -> TokenService:
    return TokenService(JwtConfig(secret=SECRET, kid="k1", **kw))


def test_issue_and_verify_round_trip() -> None:
    tokens = service(ttl=60)
    token, expires = tokens.issue("shop1", "till-1", "main", 3)
    claims = tokens.verify(token)
    assert (claims["sub"], claims["tenant"], claims["branch_id"], claims["gen"]) == ("till-1", "shop1", "main", 3)
    assert claims["exp"] - claims["iat"] == 60 and int(expires.timestamp()) == claims["exp"]
    assert tokens.verify(token) is claims  # second check is served from the verified cache


def test_each_token_is_unique() -> None:
    tokens = service()
    a, _ = tokens.issue("shop1", "till-1", "main", 1)
    b, _ = tokens.issue("shop1", "till-1", "main", 1)
    assert jwt.decode(a, SECRET, algorithms=["HS256"])["jti"] != jwt.decode(b, SECRET, algorithms=["HS256"])["jti"]


def test_expiry_honours_leeway_also_from_cache() -> None:
    tokens = service(ttl=1, leeway=0)
    token, _ = tokens.issue("shop1", "till-1", "main", 1)
    tokens.verify(token)
    time.sleep(2.1)
    with pytest.raises(InvalidToken) as info:
        tokens.verify(token)
    assert info.value.expired
    with pytest.raises(InvalidToken):  # and again, now without the cache entry
        tokens.verify(token)


@pytest.mark.parametrize(
    "forge",
    [
        lambda c: jwt.encode(c, None, algorithm="none"),
        lambda c: jwt.encode(c, SECRET + "x", algorithm="HS256", headers={"kid": "k1"}),
        lambda c: jwt.encode(c, SECRET * 2, algorithm="HS512", headers={"kid": "k1"}),
        lambda c: jwt.encode({k: v for k, v in c.items() if k != "jti"}, SECRET, algorithm="HS256", headers={"kid": "k1"}),
        lambda c: jwt.encode({**c, "gen": "1"}, SECRET, algorithm="HS256", headers={"kid": "k1"}),
        lambda c: jwt.encode({**c, "exp": str(c["exp"])}, SECRET, algorithm="HS256", headers={"kid": "k1"}),
        lambda c: jwt.encode({**c, "iat": True}, SECRET, algorithm="HS256", headers={"kid": "k1"}),
        lambda c: jwt.encode(c, SECRET, algorithm="HS256", headers={"kid": "k1"}) + "=",
        lambda c: "garbage",
    ],
)
def test_forgeries_are_rejected(forge) -> None:
    now = int(time.time())
    claims = {"sub": "till-1", "tenant": "shop1", "branch_id": "main", "gen": 1, "iat": now, "exp": now + 60, "jti": "j"}
    with pytest.raises(InvalidToken):
        service().verify(forge(claims))


def test_rotation_keys_verify_and_current_key_signs() -> None:
    old = "o" * 40
    tokens = service(verification_keys=[JwtKey(kid="k0", secret=old)])
    now = int(time.time())
    legacy = jwt.encode({"sub": "t", "tenant": "s", "branch_id": "b", "gen": 1, "iat": now, "exp": now + 60, "jti": "j"},
                        old, algorithm="HS256", headers={"kid": "k0"})
    assert tokens.verify(legacy)["sub"] == "t"
    fresh, _ = tokens.issue("s", "t", "b", 2)
    assert jwt.get_unverified_header(fresh)["kid"] == "k1"
    assert service().verify(fresh)["gen"] == 2


def test_only_the_canonical_spelling_of_a_signature_verifies() -> None:
    tokens = service()
    token, _ = tokens.issue("shop1", "till-1", "main", 1)
    head, body, sig = token.split(".")
    # The last character of a 32-byte signature carries 2 unused bits: flipping them
    # decodes to the same bytes, so the same signature could be spelt four ways.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    i = alphabet.index(sig[-1])
    twins = [f"{head}.{body}.{sig[:-1]}{alphabet[(i & ~3) | low]}" for low in range(4) if (i & ~3) | low != i]
    assert len(twins) == 3
    for twin in [*twins, token + "=", token + "==", f"{head}=.{body}.{sig}"]:
        with pytest.raises(InvalidToken):
            tokens.verify(twin)
    assert tokens.verify(token)["sub"] == "till-1"
