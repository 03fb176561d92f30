"""Master data in Redis: per (tenant, collection, scope), three keys under the tenant's
`{tenant}` hash tag, so each script below names all it touches in KEYS and stays valid
on Redis Cluster:
- `<base>:log` zset: every row's name scored by its seq (tombstones included): a till's
  delta is a ZRANGEBYSCORE from its cursor;
- `<base>:data` hash: name -> data of the live rows only; a name in `log` but not here
  is a tombstone, so the live count is HLEN and cannot drift;
- `<base>:state` hash: seq, source_cursor, refreshed_at, failed_at, error, lease_owner,
  lease_until.
`<base>` is `<prefix>:{<tenant>}:md:<collection>:<scope>` with collection and scope
percent-encoded (a price list is called e.g. "Standard Selling"; ':' is encoded too, so
no two (collection, scope) pairs share a key).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from edge.store.masterdata import CollectionState, MasterRow, normalise

# KEYS: log, data, state. ARGV: source cursor, now, number of upserts, then per upsert
# name and data, then the names to delete (none of them upserts). -> the seq afterwards.
_APPLY = """
local seq = tonumber(redis.call('HGET', KEYS[3], 'seq') or '0')
local nu = tonumber(ARGV[3])
for i = 4, 3 + 2 * nu, 2 do
  local name, data = ARGV[i], ARGV[i + 1]
  -- Lua strings are byte strings: this compares the stored bytes exactly
  if redis.call('HGET', KEYS[2], name) ~= data then
    seq = seq + 1
    redis.call('HSET', KEYS[2], name, data)
    redis.call('ZADD', KEYS[1], seq, name)
  end
end
for i = 4 + 2 * nu, #ARGV do
  -- HDEL answers 0 for a missing or already deleted row: no change, no seq
  if redis.call('HDEL', KEYS[2], ARGV[i]) == 1 then
    seq = seq + 1
    redis.call('ZADD', KEYS[1], seq, ARGV[i])
  end
end
redis.call('HSET', KEYS[3], 'seq', string.format('%d', seq), 'source_cursor', ARGV[1], 'refreshed_at', ARGV[2],
           'failed_at', 0, 'error', '')
return seq
"""

# KEYS: log, data. ARGV: after, limit, tombstones ('1' or '0'). -> flat (name, seq, deleted, data)...
# Atomic, so a row's data always matches its seq; it reads on past tombstones it skips
# until the page is full or the log ends.
_PAGE = """
local limit, all = tonumber(ARGV[2]), ARGV[3] == '1'
local low = '(' .. ARGV[1]
local out, n = {}, 0
while n < limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf', 'WITHSCORES', 'LIMIT', 0, math.min(limit - n, 500))
  if #batch == 0 then break end
  local names = {}
  for i = 1, #batch, 2 do names[#names + 1] = batch[i] end
  local data = redis.call('HMGET', KEYS[2], unpack(names))
  for i = 1, #names do
    if n < limit and (data[i] or all) then
      n = n + 1
      out[#out + 1] = names[i]
      out[#out + 1] = batch[2 * i]
      out[#out + 1] = data[i] and '0' or '1'
      out[#out + 1] = data[i] or ''
    end
  end
  low = '(' .. batch[#batch]
end
return out
"""

# KEYS: state. ARGV: owner, now, until. 1 if taken or extended, 0 while another holds it.
_LEASE = """
local h = redis.call('HMGET', KEYS[1], 'lease_owner', 'lease_until')
local holder = h[1] or ''
if holder ~= '' and holder ~= ARGV[1] and tonumber(h[2] or '0') > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'lease_owner', ARGV[1], 'lease_until', ARGV[3])
return 1
"""

# KEYS: state. ARGV: owner.
_RELEASE = """
if (redis.call('HGET', KEYS[1], 'lease_owner') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'lease_owner', '', 'lease_until', 0)
return 1
"""

_STATE_FIELDS = ("seq", "source_cursor", "refreshed_at", "failed_at", "error")


def _num(x: float) -> str:
    # repr keeps every digit; Lua's tostring would round to 14 significant digits
    return repr(float(x))


class RedisMasterdata:
    """Master data methods of RedisStore (it provides `_raw`, a client that keeps bytes)."""

    _raw: Any
    prefix: str

    def _register_masterdata_scripts(self) -> None:
        self._md_apply = self._raw.register_script(_APPLY)
        self._md_page = self._raw.register_script(_PAGE)
        self._md_lease = self._raw.register_script(_LEASE)
        self._md_release = self._raw.register_script(_RELEASE)

    def _md_keys(self, tenant: str, collection: str, scope: str) -> list[str]:
        """log, data and state keys of one (tenant, collection, scope)."""
        base = f"{self.prefix}:{{{tenant}}}:md:{quote(collection, safe='')}:{quote(scope, safe='')}"
        return [f"{base}:log", f"{base}:data", f"{base}:state"]

    async def md_state(self, tenant: str, collection: str, scope: str) -> CollectionState:
        """The collection's state (a default CollectionState if never written)."""
        _, data, state = self._md_keys(tenant, collection, scope)
        async with self._raw.pipeline(transaction=True) as pipe:  # one slot: a consistent snapshot
            pipe.hmget(state, *_STATE_FIELDS)
            pipe.hlen(data)
            fields, live = await pipe.execute()
        seq, cursor, refreshed, failed, error = (f.decode() if f is not None else None for f in fields)
        return CollectionState(
            seq=int(seq or 0), source_cursor=cursor or "", refreshed_at=float(refreshed or 0),
            failed_at=float(failed or 0), error=error or "", live=int(live),
        )

    async def md_apply(self, tenant: str, collection: str, scope: str, upserts: list[tuple[str, bytes]],
                       deletes: list[str], source_cursor: str, now: float) -> int:
        """Write upserts and tombstone deletes, one seq per real change (see MasterdataStore)."""
        rows, gone = normalise(upserts, deletes)
        args: list[Any] = [source_cursor, _num(now), len(rows)]
        for name, data in rows.items():
            args += [name, data]
        args += gone
        return int(await self._md_apply(keys=self._md_keys(tenant, collection, scope), args=args))

    async def md_failed(self, tenant: str, collection: str, scope: str, error: str, now: float) -> None:
        """Record a failed refresh, keeping every row."""
        state = self._md_keys(tenant, collection, scope)[2]
        await self._raw.hset(state, mapping={"failed_at": _num(now), "error": error})

    async def md_page(self, tenant: str, collection: str, scope: str, after: int, limit: int,
                      tombstones: bool) -> list[MasterRow]:
        """Rows with seq > `after` by seq, at most `limit`; tombstones only if asked."""
        if limit <= 0:
            return []
        log, data, _ = self._md_keys(tenant, collection, scope)
        flat = await self._md_page(keys=[log, data], args=[int(after), int(limit), "1" if tombstones else "0"])
        return [
            MasterRow(name.decode(), int(float(seq)), deleted == b"1", bytes(body))
            for name, seq, deleted, body in zip(flat[0::4], flat[1::4], flat[2::4], flat[3::4], strict=True)
        ]

    async def md_lease(self, tenant: str, collection: str, scope: str, owner: str, now: float, ttl: float) -> bool:
        """Take or extend the collection's refresh lease until now + ttl (see MasterdataStore)."""
        if not owner:
            raise ValueError("a lease needs an owner")  # '' marks a free lease
        state = self._md_keys(tenant, collection, scope)[2]
        return bool(await self._md_lease(keys=[state], args=[owner, _num(now), _num(now + ttl)]))

    async def md_release(self, tenant: str, collection: str, scope: str, owner: str) -> None:
        """Give the lease up if `owner` holds it."""
        if owner:
            await self._md_release(keys=[self._md_keys(tenant, collection, scope)[2]], args=[owner])
