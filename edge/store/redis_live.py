"""Live demand marks in Redis: a hash per tenant, `<prefix>:{<tenant>}:live` (the queue's
hash tag), field owner -> "reserve:until".

The sync lane reads them to leave room for live postings. A script writes a mark,
drops the fields that ran out and keeps the key until a minute after its latest
mark, so a tenant whose processes all went away leaves nothing behind.
"""

from __future__ import annotations

from typing import Any

KEEP_EXPIRED = 60.0  # seconds the hash outlives its latest mark

# KEYS: the tenant's hash. ARGV: owner, reserve (0 withdraws), until, now, keep.
_MARK = """
local now = tonumber(ARGV[4])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. ARGV[3])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
end
local h, latest = redis.call('HGETALL', KEYS[1]), nil
for i = 1, #h, 2 do
  local ends = tonumber(string.match(h[i + 1], ':(.*)$'))
  if ends == nil or ends <= now then
    redis.call('HDEL', KEYS[1], h[i])
  elseif latest == nil or ends > latest then
    latest = ends
  end
end
-- the latest mark's end, not this one's: a short mark never cuts another owner's longer one
if latest then
  redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', (latest + tonumber(ARGV[5])) * 1000))
end
return 1
"""


def _num(x: float) -> str:
    # repr keeps every digit; Lua's tostring would round to 14 significant digits
    return repr(float(x))


class RedisLive:
    """Live demand methods of RedisStore (it provides `_raw` and `prefix`)."""

    _raw: Any
    prefix: str

    def _register_live_scripts(self) -> None:
        self._mark_live = self._raw.register_script(_MARK)

    def _live_key(self, tenant: str) -> str:
        return f"{self.prefix}:{{{tenant}}}:live"  # the queue's tenant prefix (RedisQueue._tenant_prefix)

    async def mark_live(self, tenant: str, owner: str, reserve: int, until: float, now: float) -> None:
        """Keep room for `reserve` live postings until `until` (see Store)."""
        await self._mark_live(keys=[self._live_key(tenant)],
                              args=[owner, max(0, int(reserve)), _num(until), _num(now), _num(KEEP_EXPIRED)])

    async def live_demand(self, tenants: list[str], now: float) -> dict[str, int]:
        """Per tenant, the reserves of the marks still valid at `now` (see Store)."""
        async with self._raw.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                pipe.hgetall(self._live_key(tenant))
            replies = await pipe.execute()
        demand = dict.fromkeys(tenants, 0)
        for tenant, marks in zip(tenants, replies, strict=True):
            for value in marks.values():
                reserve, _, until = value.decode().partition(":")
                if float(until) > now:
                    demand[tenant] += int(reserve)
        return demand
