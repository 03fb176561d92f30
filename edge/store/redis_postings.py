"""The posting records in Redis: a hash per (tenant, reference) at
`pos-edge:{<tenant>}:posting:<reference>`, claimed and settled by Lua scripts (the
rule is SqlitePostings.claim_posting's), expiring `ttl` after their last write."""

from __future__ import annotations

from typing import Any

from edge.store.base import ClaimResult, Posting, SettleOutcome

# KEYS: record. ARGV: fingerprint, owner, now, lease, ttl.
# -> {result, fingerprint, state, invoice, unknown_since} (result: new|conflict|posted|busy|taken_over)
_CLAIM = """
local h = redis.call('HMGET', KEYS[1], 'fingerprint', 'state', 'lease_until', 'invoice', 'unknown_since')
local now, lease, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), math.ceil(tonumber(ARGV[5]))
if not h[1] then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'posting', 'owner', ARGV[2], 'lease_until', now + lease,
             'invoice', '', 'unknown_since', 0)
  redis.call('EXPIRE', KEYS[1], ttl)
  return {'new'}
end
local since = tonumber(h[5] or '0')
if h[1] ~= ARGV[1] then return {'conflict', h[1], h[2], h[4] or '', tostring(since)} end
if h[2] == 'posted' then return {'posted', h[1], h[2], h[4] or '', tostring(since)} end
local lease_until = tonumber(h[3] or '0')
if h[2] == 'posting' and lease_until > now then return {'busy', h[1], h[2], h[4] or '', tostring(since)} end
if h[2] ~= 'unknown' and lease_until > since then since = lease_until end
redis.call('HSET', KEYS[1], 'state', 'posting', 'owner', ARGV[2], 'lease_until', now + lease, 'unknown_since', since)
redis.call('EXPIRE', KEYS[1], ttl)
return {'taken_over', h[1], 'unknown', h[4] or '', tostring(since)}
"""

# KEYS: record. ARGV: owner, until. 1 if renewed.
_RENEW = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'posting' then return 0 end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
return 1
"""

# KEYS: record. ARGV: owner, outcome (posted|unknown|not_posted), invoice, unknown_since, ttl. 1 if settled.
_SETTLE = """
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'posting' then return 0 end
if ARGV[2] == 'not_posted' then redis.call('DEL', KEYS[1]) return 1 end
if ARGV[2] == 'posted' then
  redis.call('HSET', KEYS[1], 'state', 'posted', 'invoice', ARGV[3], 'owner', '', 'lease_until', 0, 'unknown_since', 0)
else
  redis.call('HSET', KEYS[1], 'state', 'unknown', 'owner', '', 'lease_until', 0, 'unknown_since', ARGV[4])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[5])))
return 1
"""


class RedisPostings:
    """Posting-record methods of RedisStore (it provides `_raw` and `prefix`)."""

    prefix: str
    _raw: Any

    def _register_posting_scripts(self) -> None:
        self._claim_posting = self._raw.register_script(_CLAIM)
        self._renew_posting = self._raw.register_script(_RENEW)
        self._settle_posting = self._raw.register_script(_SETTLE)

    def _posting_key(self, tenant: str, reference: str) -> str:
        return f"{self.prefix}:{{{tenant}}}:posting:{reference}"

    async def claim_posting(self, tenant: str, reference: str, fingerprint: str, owner: str, now: float, lease: float,
                            ttl: float) -> tuple[ClaimResult, Posting | None]:
        reply = await self._claim_posting(keys=[self._posting_key(tenant, reference)],
                                          args=[fingerprint, owner, repr(now), repr(lease), repr(ttl)])
        result = reply[0].decode()
        if result == "new":
            return "new", None
        fp, state, invoice, since = (x.decode() for x in reply[1:])
        return result, Posting(fp, state, invoice or None, float(since))

    async def renew_posting(self, tenant: str, reference: str, owner: str, until: float) -> bool:
        return bool(await self._renew_posting(keys=[self._posting_key(tenant, reference)], args=[owner, repr(until)]))

    async def settle_posting(self, tenant: str, reference: str, owner: str, outcome: SettleOutcome, *,
                             invoice: str | None = None, unknown_since: float = 0.0, now: float, ttl: float) -> bool:
        del now  # Redis counts the expiry from the write itself
        return bool(await self._settle_posting(keys=[self._posting_key(tenant, reference)],
                                               args=[owner, outcome, invoice or "", repr(unknown_since), repr(ttl)]))
