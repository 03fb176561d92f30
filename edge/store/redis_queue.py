"""The offline-sync queue in Redis: per-tenant sorted sets driven by Lua scripts.

Keys (all under the tenant's `{tenant}` hash tag). The scripts build their key
names from that prefix rather than declaring them in KEYS, so they need a single
Redis (or a proxy that routes EVAL by hash tag), not Redis Cluster's own routing:
- `job:<id>` hash: the job; `txn:<device>` hash: client_txn_id -> job id;
- `batch:<uuid>` hash: device, created_at and the job ids (JSON, upload order);
- `ready` zset: queued job ids scored by next attempt time (the source of truth for
  what is queued: the figures count it); `synced` and `batches` zsets (by time) for
  the retention purge;
- `dready:<device>` zset: the device's ids of `ready`, same scores, kept in step by
  every script that adds to or takes from `ready`;
- `lanes` zset: device -> the turn it was last served at (0: new, served first), one
  per device with ids in `dready:<device>`; `turn` counter: the tenant's last turn;
- `leased` zset: claimed job ids scored by lease expiry; `failed` zset (by time).

Why not streams with consumer groups and XAUTOCLAIM: a stream delivers in
arrival order and can't hold a job back until its next attempt time, and the
per-tenant cap on postings in flight would need a second structure anyway. One
script claims atomically: it returns expired leases to `ready` (marked
`unknown`, as XAUTOCLAIM would hand them over), counts `leased` against the cap,
and moves due ids from `ready` to `leased`. A worker that dies simply stops
renewing; its jobs come back when their lease runs out.

Within a tenant the claim goes round-robin across devices: it walks `lanes` lowest
turn first, takes the head of each lane's `dready` when due, one per lane per pass,
and gives a served lane the next turn (to the back), so a till with thousands of
queued sales does not hold back another's ten, whichever worker claims next. Ids in
`ready` with no `dready` entry (queued by a release before lanes) are taken from
`ready` after the lanes, when room is left.
"""

from __future__ import annotations

import json
import time
from typing import Any

from edge.sync.jobs import Batch, Enqueued, Job, JobUpdate, NewJob

# ARGV: prefix, device, batch uuid, now, n, then per job: id, txn, type, fingerprint,
# reference, return_against, payload. -> {0, conflicting positions...} or {1, enqueued, ids...}
_ENQUEUE = """
local p, dev, batch, now, n = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local X = p .. ':txn:' .. dev
local ids, conflicts, fresh = {}, {}, {}
for i = 0, n - 1 do
  local b = 6 + i * 7
  local existing = redis.call('HGET', X, ARGV[b + 1])
  if existing then
    if redis.call('HGET', p .. ':job:' .. existing, 'fingerprint') ~= ARGV[b + 3] then
      table.insert(conflicts, i)
    end
    ids[i + 1] = existing
  else
    ids[i + 1] = ARGV[b]
    table.insert(fresh, b)
  end
end
if #conflicts > 0 then return {0, unpack(conflicts)} end
for _, b in ipairs(fresh) do redis.call('HSET', X, ARGV[b + 1], ARGV[b]) end
for k, b in ipairs(fresh) do
  local depends = ''
  -- equal scores would come out in member (random id) order: keep the upload's order (all due now)
  local due = string.format('%.6f', tonumber(now) - (#fresh - k) * 0.000001)
  if ARGV[b + 2] == 'return' and ARGV[b + 5] ~= '' then
    local sale = redis.call('HGET', X, ARGV[b + 5])
    if sale and redis.call('HGET', p .. ':job:' .. sale, 'type') == 'sale' then depends = sale end
  end
  redis.call('HSET', p .. ':job:' .. ARGV[b], 'job_id', ARGV[b], 'device', dev, 'batch_uuid', batch,
    'client_txn_id', ARGV[b + 1], 'type', ARGV[b + 2], 'fingerprint', ARGV[b + 3], 'reference', ARGV[b + 4],
    'payload', ARGV[b + 6], 'depends_on', depends, 'status', 'pending', 'attempts', 0, 'next_attempt_at', due,
    'lease_until', 0, 'owner', '', 'unknown', 0, 'created_at', now, 'updated_at', now)
  redis.call('ZADD', p .. ':ready', due, ARGV[b])
  redis.call('ZADD', p .. ':dready:' .. dev, due, ARGV[b])
end
-- a device new to the queue (or back to it) starts at the front; one in rotation keeps its turn
if #fresh > 0 then redis.call('ZADD', p .. ':lanes', 'NX', 0, dev) end
redis.call('HSET', p .. ':batch:' .. batch, 'device', dev, 'created_at', now, 'jobs', cjson.encode(ids))
redis.call('ZADD', p .. ':batches', now, batch)
return {1, #fresh, unpack(ids)}
"""

# ARGV: prefix, now, owner, lease_until, cap, room -> list of job hashes (flat)
_CLAIM = """
-- now stays the caller's string: a Lua number passed to redis.call keeps only 14 digits
local p, now = ARGV[1], ARGV[2]
local R, L, LANES = p .. ':ready', p .. ':leased', p .. ':lanes'
for _, id in ipairs(redis.call('ZRANGEBYSCORE', L, '-inf', now)) do
  redis.call('ZREM', L, id)
  local J = p .. ':job:' .. id
  if redis.call('EXISTS', J) == 1 then
    redis.call('HSET', J, 'owner', '', 'lease_until', 0, 'unknown', 1)
    local due, dev = redis.call('HGET', J, 'next_attempt_at'), redis.call('HGET', J, 'device')
    redis.call('ZADD', R, due, id)
    redis.call('ZADD', p .. ':dready:' .. dev, due, id)
    redis.call('ZADD', LANES, 'NX', 0, dev)
  end
end
local room = math.min(tonumber(ARGV[6]), tonumber(ARGV[5]) - redis.call('ZCARD', L))
if room <= 0 then return {redis.call('ZCARD', L)} end
local out = {0}
local function lease(id)
  redis.call('ZREM', R, id)
  redis.call('ZADD', L, ARGV[4], id)
  local J = p .. ':job:' .. id
  redis.call('HSET', J, 'owner', ARGV[3], 'lease_until', ARGV[4])
  table.insert(out, redis.call('HGETALL', J))
  room = room - 1
end
-- the device's next id due in `ready`, or nil. An entry out of step with `ready` (an older
-- release claimed or rescheduled the job) is dropped, or moved to the job's real time.
local function head(D)
  while true do
    local ids = redis.call('ZRANGEBYSCORE', D, '-inf', now, 'LIMIT', 0, 1)
    if #ids == 0 then return nil end
    local score = redis.call('ZSCORE', R, ids[1])
    if score and tonumber(score) <= tonumber(now) then
      redis.call('ZREM', D, ids[1])
      return ids[1]
    elseif score then
      redis.call('ZADD', D, score, ids[1])
    else
      redis.call('ZREM', D, ids[1])
    end
  end
end
-- passes over the lanes, least recently served first: one due id per lane per pass
local lanes = redis.call('ZRANGE', LANES, 0, -1)
while room > 0 and #lanes > 0 do
  local served = {}
  for _, dev in ipairs(lanes) do
    if room <= 0 then break end
    local D = p .. ':dready:' .. dev
    local id = head(D)
    if id then
      lease(id)
      redis.call('ZADD', LANES, redis.call('INCR', p .. ':turn'), dev)
      table.insert(served, dev)
    elseif redis.call('EXISTS', D) == 0 then
      redis.call('ZREM', LANES, dev)  -- nothing of this device queued: its lane comes back with its next job
    end
  end
  lanes = served
end
-- ids with no lane entry (queued by an older release): claimed rather than stranded
if room > 0 then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', R, '-inf', now, 'LIMIT', 0, room)) do
    local dev = redis.call('HGET', p .. ':job:' .. id, 'device')
    if dev then redis.call('ZREM', p .. ':dready:' .. dev, id) end
    lease(id)
  end
end
out[1] = redis.call('ZCARD', L)
return out
"""

# ARGV: prefix, owner, until, ids... -> ids no longer held
_RENEW = """
local p, lost = ARGV[1], {}
for i = 4, #ARGV do
  local J = p .. ':job:' .. ARGV[i]
  if redis.call('HGET', J, 'owner') == ARGV[2] then
    redis.call('ZADD', p .. ':leased', 'XX', ARGV[3], ARGV[i])
    redis.call('HSET', J, 'lease_until', ARGV[3])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# ARGV: prefix, id, owner, status, attempted (0/1), invoice_id, last_error, next_attempt_at, unknown, now
_SETTLE = """
local p, id = ARGV[1], ARGV[2]
local J = p .. ':job:' .. id
if ARGV[3] == '' or redis.call('HGET', J, 'owner') ~= ARGV[3] then return 0 end
redis.call('ZREM', p .. ':leased', id)
redis.call('HINCRBY', J, 'attempts', ARGV[5])
redis.call('HSET', J, 'status', ARGV[4], 'owner', '', 'lease_until', 0, 'last_error', ARGV[7],
  'next_attempt_at', ARGV[8], 'unknown', ARGV[9], 'updated_at', ARGV[10])
if ARGV[6] ~= '' then redis.call('HSET', J, 'invoice_id', ARGV[6]) end
if ARGV[4] == 'pending' or ARGV[4] == 'retrying' then
  local dev = redis.call('HGET', J, 'device')
  redis.call('ZADD', p .. ':ready', ARGV[8], id)
  redis.call('ZADD', p .. ':dready:' .. dev, ARGV[8], id)
  redis.call('ZADD', p .. ':lanes', 'NX', 0, dev)  -- a claim drops the lane of a device with nothing queued
end
if ARGV[4] == 'failed' then redis.call('ZADD', p .. ':failed', ARGV[10], id) end
if ARGV[4] == 'synced' then redis.call('ZADD', p .. ':synced', ARGV[10], id) end
return 1
"""

# ARGV: prefix, before, limit, now -> jobs purged. Synced jobs settled before `before` go
# (with their txn-index entry); batches created before it whose jobs are all gone go too;
# an old batch that still has jobs is looked at again one retention period later.
_PURGE = """
local p, before, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. ':synced', '-inf', '(' .. before, 'LIMIT', 0, limit)) do
  local J = p .. ':job:' .. id
  local dev, txn = redis.call('HGET', J, 'device'), redis.call('HGET', J, 'client_txn_id')
  if dev and txn and redis.call('HGET', p .. ':txn:' .. dev, txn) == id then redis.call('HDEL', p .. ':txn:' .. dev, txn) end
  redis.call('DEL', J)
  redis.call('ZREM', p .. ':synced', id)
  n = n + 1
end
for _, batch in ipairs(redis.call('ZRANGEBYSCORE', p .. ':batches', '-inf', '(' .. before, 'LIMIT', 0, limit)) do
  local B = p .. ':batch:' .. batch
  local jobs = redis.call('HGET', B, 'jobs')
  local live = false
  if jobs then
    for _, id in ipairs(cjson.decode(jobs)) do
      if redis.call('EXISTS', p .. ':job:' .. id) == 1 then live = true break end
    end
  end
  if live then
    redis.call('ZADD', p .. ':batches', ARGV[4], batch)
  else
    redis.call('DEL', B)
    redis.call('ZREM', p .. ':batches', batch)
  end
end
return n
"""

# ARGV: prefix, now, ids... -> how many were requeued
_REQUEUE = """
local p, n = ARGV[1], 0
for i = 3, #ARGV do
  local J = p .. ':job:' .. ARGV[i]
  if redis.call('HGET', J, 'status') == 'failed' then
    redis.call('HSET', J, 'status', 'pending', 'attempts', 0, 'next_attempt_at', ARGV[2], 'updated_at', ARGV[2])
    redis.call('ZREM', p .. ':failed', ARGV[i])
    local dev = redis.call('HGET', J, 'device')
    redis.call('ZADD', p .. ':ready', ARGV[2], ARGV[i])
    redis.call('ZADD', p .. ':dready:' .. dev, ARGV[2], ARGV[i])
    redis.call('ZADD', p .. ':lanes', 'NX', 0, dev)
    n = n + 1
  end
end
return n
"""


def _num(x: float) -> str:
    # repr keeps every digit; Lua's tostring would round to 14 significant digits
    return repr(float(x))


class RedisQueue:
    """Queue methods of RedisStore (it provides `_raw`, a client that keeps bytes)."""

    _raw: Any
    prefix: str

    def _register_queue_scripts(self) -> None:
        self._enqueue = self._raw.register_script(_ENQUEUE)
        self._claim_jobs = self._raw.register_script(_CLAIM)
        self._renew = self._raw.register_script(_RENEW)
        self._settle = self._raw.register_script(_SETTLE)
        self._requeue = self._raw.register_script(_REQUEUE)
        self._purge = self._raw.register_script(_PURGE)

    def _tenant_prefix(self, tenant: str) -> str:
        return f"{self.prefix}:{{{tenant}}}"

    async def enqueue_batch(self, tenant: str, device: str, batch_uuid: str, jobs: list[NewJob], now: float) -> Enqueued:
        args: list[Any] = [self._tenant_prefix(tenant), device, batch_uuid, _num(now), len(jobs)]
        for j in jobs:
            args += [j.job_id, j.client_txn_id, j.type, j.fingerprint, j.reference, j.return_against, j.payload]
        reply = await self._enqueue(keys=[], args=args)
        if int(reply[0]) == 0:
            return Enqueued([], 0, [int(i) for i in reply[1:]])
        return Enqueued([i.decode() for i in reply[2:]], int(reply[1]), [])

    async def get_batch(self, tenant: str, batch_uuid: str) -> Batch | None:
        p = self._tenant_prefix(tenant)
        head = await self._raw.hgetall(f"{p}:batch:{batch_uuid}")
        if not head:
            return None
        ids = json.loads(head[b"jobs"])
        async with self._raw.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(f"{p}:job:{job_id}")
            rows = await pipe.execute()
        jobs = [_job(tenant, h) for h in rows if h]
        return Batch(batch_uuid, tenant, head[b"device"].decode(), float(head[b"created_at"]), jobs)

    async def get_job(self, tenant: str, job_id: str) -> Job | None:
        h = await self._raw.hgetall(f"{self._tenant_prefix(tenant)}:job:{job_id}")
        return _job(tenant, h) if h else None

    async def claim_jobs(self, rooms: dict[str, int], now: float, owner: str, lease: float, cap: int,
                         leased: dict[str, int] | None = None) -> list[Job]:
        # One script per tenant (a script must stay in one hash slot), one round trip for all.
        async with self._raw.pipeline(transaction=False) as pipe:
            for tenant, room in rooms.items():
                await self._claim_jobs(keys=[], args=[self._tenant_prefix(tenant), _num(now), owner, _num(now + lease),
                                                      cap, room], client=pipe)
            replies = await pipe.execute()
        jobs = []
        for tenant, reply in zip(rooms, replies, strict=True):
            if leased is not None:
                leased[tenant] = int(reply[0])  # the tenant's jobs leased, all workers, after this claim
            for flat in reply[1:]:
                jobs.append(_job(tenant, dict(zip(flat[::2], flat[1::2], strict=True))))
        return jobs

    async def renew_leases(self, owner: str, jobs: list[tuple[str, str]], until: float) -> list[str]:
        by_tenant: dict[str, list[str]] = {}
        for tenant, job_id in jobs:
            by_tenant.setdefault(tenant, []).append(job_id)
        lost: list[str] = []
        for tenant, ids in by_tenant.items():
            reply = await self._renew(keys=[], args=[self._tenant_prefix(tenant), owner, _num(until), *ids])
            lost += [i.decode() for i in reply]
        return lost

    async def settle_job(self, tenant: str, job_id: str, owner: str, update: JobUpdate, now: float) -> bool:
        done = await self._settle(keys=[], args=[
            self._tenant_prefix(tenant), job_id, owner, update.status, int(update.attempted), update.invoice_id or "",
            update.last_error or "", _num(update.next_attempt_at), int(update.unknown), _num(now),
        ])
        return bool(done)

    async def failed_jobs(self, tenant: str) -> list[Job]:
        p = self._tenant_prefix(tenant)
        ids = await self._raw.zrange(f"{p}:failed", 0, -1)
        async with self._raw.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(f"{p}:job:{job_id.decode()}")
            rows = await pipe.execute()
        return [_job(tenant, h) for h in rows if h and h.get(b"status") == b"failed"]

    async def queue_stats(self, tenants: list[str], now: float) -> dict[str, dict[str, float]]:
        async with self._raw.pipeline(transaction=False) as pipe:
            for tenant in tenants:
                p = self._tenant_prefix(tenant)
                pipe.zcard(f"{p}:ready")
                pipe.zcard(f"{p}:leased")
                pipe.zcard(f"{p}:failed")
                pipe.zrange(f"{p}:ready", 0, 0, withscores=True)
            replies = await pipe.execute()
        stats = {}
        for i, tenant in enumerate(tenants):
            ready, leased, failed, first = replies[i * 4:i * 4 + 4]
            oldest = max(0.0, now - first[0][1]) if first else 0.0
            stats[tenant] = {"queued": float(ready), "in_flight": float(leased), "failed": float(failed),
                             "oldest_due_age": oldest}
        return stats

    async def device_queue_stats(self, tenant: str, now: float) -> dict[str, dict[str, float]]:
        p = self._tenant_prefix(tenant)
        async with self._raw.pipeline(transaction=False) as pipe:
            for state in ("ready", "leased", "failed"):
                pipe.zrange(f"{p}:{state}", 0, -1, withscores=True)
            ready, leased, failed = await pipe.execute()
        groups = [("queued", ready), ("in_flight", leased), ("failed", failed)]
        ids = [job_id for _, members in groups for job_id, _ in members]
        async with self._raw.pipeline(transaction=False) as pipe:  # one look per job: an admin's view, not a hot path
            for job_id in ids:
                pipe.hget(f"{p}:job:{job_id.decode() if isinstance(job_id, bytes) else job_id}", "device")
            devices = iter(await pipe.execute())
        stats: dict[str, dict[str, float]] = {}
        for name, members in groups:
            for _, score in members:
                raw = next(devices)
                if raw is None:
                    continue
                device = raw.decode() if isinstance(raw, bytes) else str(raw)
                row = stats.setdefault(device, {"queued": 0.0, "in_flight": 0.0, "failed": 0.0, "oldest_due_age": 0.0})
                row[name] += 1
                if name == "queued":
                    row["oldest_due_age"] = max(row["oldest_due_age"], now - float(score))
        return stats

    async def purge_synced(self, tenant: str, before: float, limit: int) -> int:
        return int(await self._purge(keys=[], args=[self._tenant_prefix(tenant), _num(before), limit, _num(time.time())]))

    async def requeue_failed(self, tenant: str, job_ids: list[str], now: float) -> int:
        if not job_ids:
            return 0
        return int(await self._requeue(keys=[], args=[self._tenant_prefix(tenant), _num(now), *job_ids]))


def _job(tenant: str, h: dict[bytes, bytes]) -> Job:
    fields: dict[str, Any] = {k.decode(): v for k, v in h.items()}
    fields["tenant"] = tenant
    return Job.from_fields(fields)
