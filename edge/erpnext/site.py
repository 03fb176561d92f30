"""What a tenant's ERPNext site says about time and money, read once and cached.

- System Settings: `time_zone` (ERPNext stamps and compares posting times in it)
  and `rounding_method`;
- a POS Profile's `currency` and `disable_rounded_total`, and that currency's
  `smallest_currency_fraction_value`: how an invoice's total is rounded (money.py);
- the API user (`frappe.auth.get_logged_user`): the `user` of a POS Opening Entry.

Each value is fetched on first use and kept `ttl` seconds; concurrent first uses
share one fetch. A value the API user may not read (or an ERPNext that does not
answer) is None for the moment: callers fall back (the tenant's configured time
zone, the till's own arithmetic) and it is asked for again at the next use.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable
from edge.erpnext.money import Rounding

T = TypeVar("T")
TTL = 600.0


class SiteSettings:
    """One tenant's site facts, cached (see the module docstring)."""

    def __init__(self, client: ErpnextClient, time_zone: str | None = None, ttl: float = TTL) -> None:
        self._client = client
        self._zone = ZoneInfo(time_zone) if time_zone else None  # the tenant's configured zone wins
        self._ttl = ttl
        self._values: dict[str, tuple[float, Any]] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}

    async def time_zone(self) -> ZoneInfo | None:
        """The site's time zone (System Settings), or the one configured for the tenant."""
        if self._zone is not None:
            return self._zone
        settings = await self._settings()
        try:
            return ZoneInfo(settings["time_zone"]) if settings and settings.get("time_zone") else None
        except (ZoneInfoNotFoundError, ValueError):
            return None

    async def rounding(self, pos_profile: str) -> Rounding | None:
        """How ERPNext will round an invoice of `pos_profile` (None: not known now)."""
        profile = await self._cached(f"profile:{pos_profile}", lambda: self._client.get_doc("POS Profile", pos_profile))
        settings = await self._settings()
        if not profile or settings is None or not profile.get("currency"):
            return None
        currency = profile["currency"]
        row = await self._cached(f"currency:{currency}", lambda: self._client.get_doc("Currency", currency))
        return _rounding(profile, settings, row) if row else None

    async def warm(self, pos_profiles: list[str]) -> None:
        """Read the time zone and these profiles' rounding now (at start-up, after a reload)."""
        await asyncio.gather(self.time_zone(), *(self.rounding(p) for p in dict.fromkeys(pos_profiles)))

    def known_rounding(self, pos_profile: str) -> Rounding | None:
        """rounding() from what was read before, however long ago, without asking ERPNext
        (None if never read): settings change rarely, and a stale answer beats none."""
        profile, settings = self._known(f"profile:{pos_profile}"), self._known("settings")
        if not profile or not settings:
            return None
        row = self._known(f"currency:{profile.get('currency')}")
        return _rounding(profile, settings, row) if row else None

    def _known(self, key: str) -> Any:
        hit = self._values.get(key)
        return hit[1] if hit is not None else None

    async def user(self) -> str | None:
        """The site user the tenant's API key acts as."""
        async def fetch() -> str:
            return str((await self._client.call("GET", "/api/method/frappe.auth.get_logged_user"))["message"])

        value: str | None = await self._cached("user", fetch)
        return value

    async def _settings(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = await self._cached(
            "settings", lambda: self._client.get_doc("System Settings", "System Settings"))
        return value

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T | None:
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key, fetch))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        return await asyncio.shield(pending)

    async def _fetch(self, key: str, fetch: Callable[[], Awaitable[T]]) -> T | None:
        try:
            value = await fetch()
        except (FrappeError, Unreachable, KeyError, TypeError):
            return None  # not readable now: asked again next time
        self._values[key] = (time.monotonic() + self._ttl, value)
        return value


def _rounding(profile: dict[str, Any], settings: dict[str, Any], currency: dict[str, Any]) -> Rounding:
    return Rounding(smallest_fraction=Decimal(str(currency.get("smallest_currency_fraction_value") or 0)),
                    method=str(settings.get("rounding_method") or "Banker's Rounding"),
                    disabled=bool(int(profile.get("disable_rounded_total") or 0)))
