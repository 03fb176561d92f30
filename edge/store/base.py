"""The Store protocol and the records it keeps. The store knows nothing of HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

DeviceStatus = Literal["active", "blocked"]


@dataclass(frozen=True)
class Device:
    """A till registered with a tenant. `generation` increases at each registration."""

    tenant: str
    device_id: str
    device_name: str
    branch_id: str
    status: DeviceStatus
    generation: int
    registered_at: float
    updated_at: float


@dataclass(frozen=True)
class IdempotencyRecord:
    """What the store holds for an idempotency key (scoped per tenant and device)."""

    fingerprint: str
    state: Literal["in_progress", "completed"]
    status: int | None = None
    body: bytes | None = None


class DeviceBlocked(Exception):
    """Registration refused: an admin blocked this device."""


class Store(Protocol):
    """Durable gateway state. Every method is safe to call from many processes."""

    async def open(self) -> None:
        """Connect and create what is missing (tables, scripts)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""
        ...

    async def register_device(
        self, tenant: str, device_id: str, device_name: str, branch_id: str, now: float
    ) -> Device:
        """Create or update a device and bump its token generation, atomically.

        Raises DeviceBlocked (changing nothing) when the device is blocked.
        """
        ...

    async def get_device(self, tenant: str, device_id: str) -> Device | None:
        """The device, or None."""
        ...

    async def list_devices(self, tenant: str) -> list[Device]:
        """All devices of a tenant, ordered by id."""
        ...

    async def set_device_status(self, tenant: str, device_id: str, status: DeviceStatus, now: float) -> Device:
        """Block or unblock. Blocking an unknown id creates a blocked placeholder so it can never enrol."""
        ...

    async def claim_idempotency(
        self, tenant: str, device: str, key: str, fingerprint: str, now: float, lease: float, ttl: float, owner: str
    ) -> tuple[bool, IdempotencyRecord | None]:
        """Try to own `key` for a request (as `owner`); returns (owned, previous record).

        (True, None): a new key, now in progress under a lease of `lease` seconds.
        (True, record): an in-progress claim whose lease ran out (its holder died)
        with the same fingerprint, taken over: the earlier attempt's outcome is unknown.
        (False, record): someone holds or completed the key; the caller replays,
        waits, or refuses. Records expire `ttl` seconds after their claim.
        """
        ...

    async def complete_idempotency(self, tenant: str, device: str, key: str, status: int, body: bytes, owner: str) -> None:
        """Store the final response for replays (only while `owner` still holds the claim)."""
        ...

    async def release_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        """Forget `owner`'s in-progress claim (the request ended, known not to have posted anything)."""
        ...

    async def abandon_idempotency(self, tenant: str, device: str, key: str, owner: str) -> None:
        """End `owner`'s in-progress claim's lease now, keeping the record: the request ended with
        its outcome unknown, so the next claim takes it over and looks before posting."""
        ...

    async def save_closure(self, tenant: str, closure_id: str, body: bytes, now: float) -> None:
        """Keep a till's closure (the gateway's record where ERPNext gets no closing document)."""
        ...

    async def get_closure(self, tenant: str, closure_id: str) -> bytes | None:
        """A recorded closure, or None."""
        ...
