"""Issuing and verifying device JWTs.

Tokens are HMAC-signed (HS256 by default) and carry `sub` (device id), `tenant`,
`branch_id`, `gen` (the device's token generation: re-registration bumps it and
so retires older tokens), `iat`, `exp` and `jti`. Verification accepts only the
configured algorithm, so `alg: none` and algorithm-confusion tokens fail.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt

from edge.config import JwtConfig

REQUIRED_CLAIMS = ("sub", "tenant", "branch_id", "gen", "iat", "exp", "jti")
_CACHE_MAX = 50_000
# Compact JWS: three base64url segments without padding (RFC 7515 §2, §7.1).
_COMPACT = re.compile(rb"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_TIMES = ("exp", "iat", "nbf")


class InvalidToken(Exception):
    """The token cannot be accepted; `expired` tells the till to re-register."""

    def __init__(self, reason: str, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


class TokenService:
    """Signs tokens with the current key; verifies with it or any rotation key."""

    def __init__(self, cfg: JwtConfig) -> None:
        self._alg = cfg.algorithm
        self._algorithms = [cfg.algorithm]
        self._kid = cfg.kid
        self._signing_key = cfg.secret.get_secret_value()
        self._keys = {cfg.kid: self._signing_key}
        self._keys.update({k.kid: k.secret.get_secret_value() for k in cfg.verification_keys})
        self._ttl = cfg.ttl
        self._leeway = cfg.leeway
        # token -> claims for tokens that verified. Signature checks are pure, so a
        # hit only needs the expiry re-checked; a tampered token never hits.
        self._verified: dict[str | bytes, dict[str, Any]] = {}

    def issue(self, tenant: str, device_id: str, branch_id: str, generation: int) -> tuple[str, datetime]:
        """Return a signed token and its expiry time (UTC)."""
        now = int(time.time())
        exp = now + self._ttl
        claims = {
            "sub": device_id,
            "tenant": tenant,
            "branch_id": branch_id,
            "gen": generation,
            "iat": now,
            "exp": exp,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._signing_key, algorithm=self._alg, headers={"kid": self._kid})
        return token, datetime.fromtimestamp(exp, UTC)

    def verify(self, token: str | bytes) -> dict[str, Any]:
        """Return the token's claims or raise InvalidToken (str or the raw header bytes)."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims["exp"] + self._leeway < time.time():
                del self._verified[token]
                raise InvalidToken("token expired", expired=True)
            return claims
        claims = self._decode(token, check_expiry=True)
        if len(self._verified) >= _CACHE_MAX:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    def verify_identity(self, token: str | bytes) -> dict[str, Any]:
        """A token's claims when it is genuine (signed by one of our keys, well formed),
        expired or not: proof, at re-registration, that the caller is the device it names."""
        return self._decode(token, check_expiry=False)

    def _decode(self, token: str | bytes, check_expiry: bool) -> dict[str, Any]:
        _check_compact(token)
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(header.get("kid", self._kid))
            if key is None:
                raise InvalidToken("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": check_expiry},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired", expired=True) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if not isinstance(claims.get("gen"), int) or not isinstance(claims.get("sub"), str):
            raise InvalidToken("malformed claims")
        # PyJWT compares int(exp): "1999999999" as a string would pass. NumericDates are numbers.
        if any(k in claims and (isinstance(claims[k], bool) or not isinstance(claims[k], int | float)) for k in _TIMES):
            raise InvalidToken("malformed claims")
        return claims


def _check_compact(token: str | bytes) -> None:
    """Only the one canonical spelling of a token verifies: base64 decoders accept padding
    ('=') and ignore the unused low bits of a segment's last character, so other strings
    would decode to the same signed bytes."""
    raw = token.encode("latin-1") if isinstance(token, str) else token
    if not _COMPACT.match(raw):
        raise InvalidToken("not a compact JWS")
    for segment in raw.split(b"."):
        try:
            decoded = base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))
        except ValueError:
            raise InvalidToken("not base64url") from None
        if base64.urlsafe_b64encode(decoded).rstrip(b"=") != segment:
            raise InvalidToken("non-canonical base64url")
