"""Terminal (device) actions shared by the admin API and the CLI: what a terminal looks like to
an admin, and blocking/unblocking one (a blocked till's open event stream hears it and ends)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

import orjson

from edge.routes.devices import code_digest
from edge.store.base import Device, Store
from edge.sync.jobs import Job


def iso(ts: float) -> str | None:
    """A Unix time as the admin API writes times (UTC, ISO 8601, `Z`); None for 0 (never)."""
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def view(device: Device, now: float, queue: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """A terminal as the admin API shows it (`status` "reset": an enrollment code is pending;
    `queue`: its figures from Store.device_queue_stats)."""
    status = "reset" if device.status == "active" and device.code_pending(now) else device.status
    out: dict[str, Any] = {
        "device_id": device.device_id, "device_name": device.device_name, "branch_id": device.branch_id or None,
        "status": status, "generation": device.generation, "registered": device.generation > 0,
        "registered_at": iso(device.registered_at) if device.generation > 0 else None,
        "updated_at": iso(device.updated_at), "last_seen": iso(device.last_seen), "last_sale": iso(device.last_sale)}
    if queue is not None:
        q = queue.get(device.device_id) or {}
        out["jobs"] = {"queued": int(q.get("queued", 0) + q.get("in_flight", 0)), "failed": int(q.get("failed", 0))}
    return out


def store_figures(devices: list[Device], queue: dict[str, dict[str, float]]) -> dict[str, Any]:
    """A store's terminal counts, last sale and sync queue, from its devices."""
    rows = [queue.get(d.device_id) or {} for d in devices]
    return {"terminals": {"total": len(devices), "active": sum(d.status == "active" for d in devices),
                          "blocked": sum(d.status == "blocked" for d in devices)},
            "last_sale": iso(max((d.last_sale for d in devices), default=0.0)),
            "sync": {"depth": int(sum(r.get("queued", 0) + r.get("in_flight", 0) for r in rows)),
                     "failed": int(sum(r.get("failed", 0) for r in rows)),
                     "oldest_pending_age": round(max((r.get("oldest_due_age", 0.0) for r in rows), default=0.0), 1)}}


async def set_blocked(store: Store, tenant: str, device_id: str, blocked: bool, now: float) -> tuple[Device | None, bool]:
    """Block or unblock a terminal: (the device, whether it was unknown before). Blocking an
    unknown id makes a blocked placeholder (a stolen till's id can be blocked before it ever
    enrols); unblocking an unknown id does nothing (None)."""
    existing = await store.get_device(tenant, device_id)
    if existing is None and not blocked:
        return None, False
    device = await store.set_device_status(tenant, device_id, "blocked" if blocked else "active", now)
    if blocked:  # its open event stream says so and ends (GET /v1/events)
        await store.ev_append(tenant, "device.blocked", device_id, orjson.dumps({"device_id": device_id}), now)
    return device, existing is None


def new_code() -> str:
    """A one-time enrollment code: 64 bits, e.g. 3F9A-1B2C-7D4E-0A51 (only its sha256 is kept)."""
    return "-".join(secrets.token_hex(2).upper() for _ in range(4))


async def reset(store: Store, tenant: str, device_id: str, hours: float, now: float,
                branch_id: str | None = None) -> tuple[Device | None, str]:
    """Retire a terminal's tokens and give it a one-time enrollment code (and, `branch_id`,
    move it: its next registration, with the code, lands it there). (None, "") if unknown."""
    code = new_code()
    device = await store.reset_device(tenant, device_id, code_digest(code), now + hours * 3600, now, branch_id=branch_id)
    return (device, code) if device is not None else (None, "")


async def provision(store: Store, tenant: str, device_id: str, device_name: str, branch_id: str, hours: float,
                    now: float) -> tuple[Device | None, str]:
    """A terminal made ahead of its till, in `branch_id`, with the one-time code that alone
    enrols it; (None, "") when the id exists."""
    code = new_code()
    device = await store.provision_device(tenant, device_id, device_name, branch_id, code_digest(code),
                                          now + hours * 3600, now)
    return (device, code) if device is not None else (None, "")


async def failed_jobs(store: Store, tenant: str, device_id: str) -> list[Job]:
    """The terminal's failed sync jobs."""
    return [j for j in await store.failed_jobs(tenant) if j.device == device_id]


async def retry_jobs(store: Store, tenant: str, job_ids: list[str], now: float) -> int:
    """Re-queue failed jobs with fresh attempts; how many were failed (the others are left alone)."""
    return await store.requeue_failed(tenant, job_ids, now) if job_ids else 0


async def delete(store: Store, tenant: str, device: Device, force: bool) -> bool:
    """Forget a terminal's record. A registered till needs `force`: once its record is gone,
    anyone holding the enrollment key may enrol its id again, with no proof of the old one.
    False when that is refused."""
    if device.generation > 0 and not force:
        return False
    await store.delete_device(tenant, device.device_id)
    return True
