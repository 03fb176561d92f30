"""Redis backend: shared state for several gateway replicas and worker processes.

Keys: `pos-edge:{<tenant>}:device:<id>` (hash) and `pos-edge:{<tenant>}:devices`
(set of ids); the braces are a Redis Cluster hash tag, so a tenant's keys share a
slot and the Lua scripts stay valid on a cluster. Read-modify-write steps run as Lua scripts so they are atomic
across replicas.
"""

from __future__ import annotations

from typing import Any, cast

import redis.asyncio as aioredis

from edge.store.base import (
    REPLAY_WINDOW,
    Device,
    DeviceBlocked,
    DeviceProofRequired,
    DeviceStatus,
    EnrollmentCodeInvalid,
    IdempotencyRecord,
)
from edge.store.redis_audit import RedisAudit
from edge.store.redis_events import RedisEvents
from edge.store.redis_live import RedisLive
from edge.store.redis_masterdata import RedisMasterdata
from edge.store.redis_postings import RedisPostings
from edge.store.redis_queue import RedisQueue

PREFIX = "pos-edge"

# KEYS: device hash, tenant device set. ARGV: id, name, branch, now, proven generation ('' if
# none), code hash ('' if none), proof jti ('' if none), replay window. -1 blocked, -2 proof
# required, -3 code invalid; else the record. The rule is edge.store.base.check_registration's.
_REGISTER = """
local h = redis.call('HMGET', KEYS[1], 'status', 'generation', 'code_hash', 'code_until', 'proof_jti', 'updated_at')
if h[1] == 'blocked' then return -1 end
local gen = tonumber(h[2] or '0')
local stored = h[3] or ''
if stored ~= '' then
  if ARGV[6] == '' then return -2 end
  if ARGV[6] ~= stored or tonumber(ARGV[4]) > tonumber(h[4] or '0') then return -3 end
elseif ARGV[6] ~= '' then
  return -3
elseif gen > 0 and ARGV[5] ~= tostring(gen) then
  if ARGV[5] == tostring(gen - 1) and ARGV[7] ~= '' and ARGV[7] == (h[5] or '')
     and tonumber(ARGV[4]) - tonumber(h[6] or '0') <= tonumber(ARGV[8]) then
    return redis.call('HGETALL', KEYS[1])
  end
  return -2
end
local jti = ''
if ARGV[5] ~= '' then jti = ARGV[7] end
local branch = ARGV[3]
local kept = redis.call('HGET', KEYS[1], 'branch_id')
if stored ~= '' and kept and kept ~= '' then branch = kept end  -- an admin's code: its branch
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSETNX', KEYS[1], 'registered_at', ARGV[4])
redis.call('HSET', KEYS[1], 'device_id', ARGV[1], 'device_name', ARGV[2], 'branch_id', branch,
           'status', 'active', 'updated_at', ARGV[4], 'code_hash', '', 'code_until', 0, 'proof_jti', jti)
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: device hash. ARGV: code hash, until, now, branch ('' keeps it). 0 if no such device, else the record.
_RESET = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSET', KEYS[1], 'code_hash', ARGV[1], 'code_until', ARGV[2], 'updated_at', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'branch_id', ARGV[4]) end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: device hash, tenant device set. ARGV: id, name, branch, code hash, until, now.
# 0 if the device exists, else the new record (generation 0: only its code enrols it).
_PROVISION = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'device_id', ARGV[1], 'device_name', ARGV[2], 'branch_id', ARGV[3], 'status', 'active',
           'generation', 0, 'registered_at', ARGV[6], 'updated_at', ARGV[6], 'code_hash', ARGV[4], 'code_until', ARGV[5])
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: device hash. ARGV: seen, sale (0: none). Moves last_seen/last_sale forward only.
_TOUCH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[1]) > tonumber(redis.call('HGET', KEYS[1], 'last_seen') or '0') then
  redis.call('HSET', KEYS[1], 'last_seen', ARGV[1])
end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], 'last_sale') or '0') then
  redis.call('HSET', KEYS[1], 'last_sale', ARGV[2])
end
return 1
"""

# KEYS: device hash, tenant device set. ARGV: id, status, now.
_SET_STATUS = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'device_id', ARGV[1], 'device_name', '', 'branch_id', '',
             'generation', 0, 'registered_at', ARGV[3])
end
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'updated_at', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return redis.call('HGETALL', KEYS[1])
"""


# KEYS: record hash. ARGV: fingerprint, now, lease, ttl, owner. 0 = claimed fresh,
# 1 + fields = taken over (lease expired), 2 + fields = held/completed by another.
_CLAIM = """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then
  redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'in_progress', 'lease_until', ARGV[2] + ARGV[3],
             'owner', ARGV[5])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4])))
  return {0}
end
local r = {}
for i = 1, #h, 2 do r[h[i]] = h[i + 1] end
if r['state'] == 'in_progress' and tonumber(r['lease_until']) <= tonumber(ARGV[2]) and r['fingerprint'] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'lease_until', ARGV[2] + ARGV[3], 'owner', ARGV[5])
  return {1, unpack(h)}
end
return {2, unpack(h)}
"""

# KEYS: record hash. ARGV: status, body, owner. Completes only the owner's live claim.
_COMPLETE = """
if redis.call('HGET', KEYS[1], 'state') ~= 'in_progress' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'completed', 'status', ARGV[1], 'body', ARGV[2])
return 1
"""


# KEYS: record hash. ARGV: "release" (delete) or "abandon" (end the lease now), owner.
_IF_IN_PROGRESS = """
if redis.call('HGET', KEYS[1], 'state') ~= 'in_progress' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'release' then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'lease_until', 0) end
return 1
"""


# KEYS: record hash. ARGV: owner, until. 1 if the owner's in-progress claim was extended.
_RENEW_IDEMPOTENCY = """
if redis.call('HGET', KEYS[1], 'state') ~= 'in_progress' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'lease_until', ARGV[2])
return 1
"""


class RedisStore(RedisQueue, RedisPostings, RedisMasterdata, RedisEvents, RedisAudit, RedisLive):
    """Store backed by a Redis database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = PREFIX
        self._r: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        """The connected client."""
        if self._r is None:
            raise RuntimeError("store is not open")
        return self._r

    async def open(self) -> None:
        self._r = aioredis.from_url(
            self.url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10, health_check_interval=30
        )
        self._register = self._r.register_script(_REGISTER)
        self._reset = self._r.register_script(_RESET)
        self._provision = self._r.register_script(_PROVISION)
        self._touch = self._r.register_script(_TOUCH)
        self._set_status = self._r.register_script(_SET_STATUS)
        # Bodies are bytes: idempotency records go through a client that does not decode.
        self._raw = aioredis.from_url(self.url, decode_responses=False, socket_connect_timeout=5, socket_timeout=10)
        self._claim = self._raw.register_script(_CLAIM)
        self._complete = self._raw.register_script(_COMPLETE)
        self._if_in_progress = self._raw.register_script(_IF_IN_PROGRESS)
        self._renew_idem = self._raw.register_script(_RENEW_IDEMPOTENCY)
        self._register_queue_scripts()
        self._register_live_scripts()
        self._register_posting_scripts()
        self._register_masterdata_scripts()
        self._open_events()

    async def close(self) -> None:
        if self._r is not None:
            await self._r.aclose()
            await self._raw.aclose()
            await self._close_events()
            self._r = None

    async def ping(self) -> None:
        await self.redis.ping()

    async def durability_warnings(self) -> list[str]:
        try:
            conf = await self.redis.config_get("appendonly")
            conf.update(await self.redis.config_get("appendfsync"))
        except Exception:  # managed Redis often forbids CONFIG: say nothing rather than guess
            return []
        if conf.get("appendonly") != "yes":
            return ["Redis runs without its append-only file (appendonly no): a Redis restart loses devices, "
                    "idempotency records and queued sync jobs; set appendonly yes, appendfsync always"]
        if conf.get("appendfsync") != "always":
            return [f"Redis fsyncs its append-only file {conf.get('appendfsync')!r}, not 'always': a crash of its "
                    "host can lose the last second of queued sync jobs that were answered 202"]
        return []

    @staticmethod
    def _keys(tenant: str, device_id: str) -> list[str]:
        return [f"{PREFIX}:{{{tenant}}}:device:{device_id}", f"{PREFIX}:{{{tenant}}}:devices"]

    async def register_device(
        self, tenant: str, device_id: str, device_name: str, branch_id: str, now: float, *,
        proven_generation: int | None = None, proof_jti: str = "", code_hash: str | None = None,
    ) -> Device:
        # The script returns the record it wrote, so concurrent registrations
        # each see their own generation.
        flat = await self._register(keys=self._keys(tenant, device_id), args=[
            device_id, device_name, branch_id, now, "" if proven_generation is None else proven_generation,
            code_hash or "", proof_jti, REPLAY_WINDOW])
        if flat == -1:
            raise DeviceBlocked(device_id)
        if flat == -2:
            raise DeviceProofRequired(device_id)
        if flat == -3:
            raise EnrollmentCodeInvalid(device_id)
        return _device(tenant, _pairs(flat))

    async def reset_device(self, tenant: str, device_id: str, code_hash: str, until: float, now: float, *,
                           branch_id: str | None = None) -> Device | None:
        flat = await self._reset(keys=self._keys(tenant, device_id)[:1], args=[code_hash, until, now, branch_id or ""])
        return _device(tenant, _pairs(flat)) if flat else None

    async def provision_device(self, tenant: str, device_id: str, device_name: str, branch_id: str, code_hash: str,
                               until: float, now: float) -> Device | None:
        flat = await self._provision(keys=self._keys(tenant, device_id),
                                     args=[device_id, device_name, branch_id, code_hash, until, now])
        return _device(tenant, _pairs(flat)) if flat else None

    async def get_device(self, tenant: str, device_id: str) -> Device | None:
        h = await self.redis.hgetall(self._keys(tenant, device_id)[0])
        return _device(tenant, cast(dict[str, Any], h)) if h else None  # decode_responses: text, not bytes

    async def list_devices(self, tenant: str) -> list[Device]:
        ids = sorted(cast(set[str], await self.redis.smembers(self._keys(tenant, "")[1])))
        async with self.redis.pipeline(transaction=False) as pipe:
            for i in ids:
                pipe.hgetall(self._keys(tenant, i)[0])
            rows = await pipe.execute()
        return [_device(tenant, h) for h in rows if h]

    async def set_device_status(self, tenant: str, device_id: str, status: DeviceStatus, now: float) -> Device:
        flat = await self._set_status(keys=self._keys(tenant, device_id), args=[device_id, status, now])
        return _device(tenant, _pairs(flat))

    async def touch_device(self, tenant: str, device_id: str, seen: float, sale: float) -> None:
        await self._touch(keys=self._keys(tenant, device_id)[:1], args=[repr(seen), repr(sale)])

    async def delete_device(self, tenant: str, device_id: str) -> bool:
        record, index = self._keys(tenant, device_id)
        async with self.redis.pipeline(transaction=True) as pipe:  # both keys share the tenant's hash slot
            pipe.delete(record)
            pipe.srem(index, device_id)
            removed, _ = await pipe.execute()
        return bool(removed)


    @staticmethod
    def _idem_key(tenant: str, device: str, key: str) -> str:
        return f"{PREFIX}:{{{tenant}}}:idem:{device}:{key}"

    async def claim_idempotency(
        self, tenant: str, device: str, key: str, fingerprint: str, now: float, lease: float, ttl: float, owner: str
    ) -> tuple[bool, IdempotencyRecord | None]:
        reply = await self._claim(keys=[self._idem_key(tenant, device, key)], args=[fingerprint, now, lease, ttl, owner])
        code = int(reply[0])
        if code == 0:
            return True, None
        h = {k.decode(): v for k, v in zip(reply[1::2], reply[2::2], strict=True)}
        record = IdempotencyRecord(
            fingerprint=h["fingerprint"].decode(),
            state=h["state"].decode(),
            status=int(h["status"]) if "status" in h else None,
            body=h.get("body"),
        )
        return code == 1, record

    async def complete_idempotency(self, tenant: str, device: str, key: str, status: int, body: bytes, owner: str) -> None:
        await self._complete(keys=[self._idem_key(tenant, device, key)], args=[status, body, owner])

    async def release_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        # Only the owner's in-progress claim is released; a completed answer stays for replays.
        await self._if_in_progress(keys=[self._idem_key(tenant, device, key)], args=["release", owner])

    async def renew_idempotency(self, tenant: str, device: str, key: str, owner: str, until: float) -> bool:
        return bool(await self._renew_idem(keys=[self._idem_key(tenant, device, key)], args=[owner, repr(until)]))

    async def abandon_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        await self._if_in_progress(keys=[self._idem_key(tenant, device, key)], args=["abandon", owner])

    async def save_closure(self, tenant: str, closure_id: str, body: bytes, now: float) -> None:
        del now  # Redis keeps no creation time for hash fields; SQLite does
        await self._raw.hset(f"{PREFIX}:{{{tenant}}}:closures", closure_id, body)

    async def get_closure(self, tenant: str, closure_id: str) -> bytes | None:
        body = await self._raw.hget(f"{PREFIX}:{{{tenant}}}:closures", closure_id)
        return bytes(body) if body is not None else None


def _pairs(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _device(tenant: str, h: dict[str, Any]) -> Device:
    return Device(
        tenant=tenant,
        device_id=h["device_id"],
        device_name=h.get("device_name", ""),
        branch_id=h.get("branch_id", ""),
        status=h.get("status", "active"),
        generation=int(h.get("generation", 0)),
        registered_at=float(h.get("registered_at", 0)),
        updated_at=float(h.get("updated_at", 0)),
        code_until=float(h.get("code_until", 0)),
        last_seen=float(h.get("last_seen", 0)),
        last_sale=float(h.get("last_sale", 0)),
    )
