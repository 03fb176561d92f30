"""Terminal (device) actions shared by the admin API and the CLI: what a terminal looks like to
an admin, and blocking/unblocking one (a blocked till's open event stream hears it and ends)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from edge.store.base import Device, Store


def _iso(ts: float) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def view(device: Device, now: float) -> dict[str, Any]:
    """A terminal as the admin API shows it (`status` "reset": an enrollment code is pending)."""
    status = "reset" if device.status == "active" and device.code_pending(now) else device.status
    return {"device_id": device.device_id, "device_name": device.device_name, "branch_id": device.branch_id or None,
            "status": status, "generation": device.generation, "registered": device.generation > 0,
            "registered_at": _iso(device.registered_at) if device.generation > 0 else None,
            "updated_at": _iso(device.updated_at)}


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
