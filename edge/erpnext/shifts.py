"""The cashier's shift of a POS Invoice tenant: ERPNext's POS Opening Entry.

ERPNext refuses a POS Invoice while its POS Profile has no open, submitted POS
Opening Entry (417 "No open POS Opening Entry found for POS Profile X"), does not
refuse a second open entry for the same profile, and closes an entry only through
a POS Closing Entry naming it (tests/fixtures/real_erpnext/pos/pos_invoice.json,
pos_closing.json). A shift here is per POS Profile, that is per branch: the tills
of a branch sell in one shift, as ERPNext's check only looks at the profile.

`open_shift` is idempotent within a process (one lock per profile around
look-then-create); two replicas racing can still open two entries, which the
closure then closes together (closing.py).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

from edge.erpnext.client import ErpnextClient

NO_OPEN_SHIFT = "No open POS Opening Entry"  # how ERPNext's refusal of a POS Invoice starts


class Shifts:
    """A tenant's POS Opening Entries: found, and opened when none is."""

    def __init__(self, client: ErpnextClient, company: str) -> None:
        self._client = client
        self._company = company
        self._locks: dict[str, asyncio.Lock] = {}

    async def open_entries(self, pos_profile: str) -> list[dict[str, Any]]:
        """The profile's open, submitted POS Opening Entries, oldest first."""
        rows = await self._client.find(
            "POS Opening Entry", [["pos_profile", "=", pos_profile], ["status", "=", "Open"], ["docstatus", "=", 1]],
            ["name", "period_start_date", "user"], limit=0)
        return sorted(rows, key=lambda r: (str(r.get("period_start_date")), str(r["name"])))

    async def open_shift(self, pos_profile: str, user: str, start: datetime,
                         balances: dict[str, Decimal]) -> tuple[dict[str, Any], bool]:
        """The profile's open entry, or a new one opened at `start` (site time, naive) with
        `balances` (Mode of Payment -> opening amount); returns (entry, created now)."""
        lock = self._locks.setdefault(pos_profile, asyncio.Lock())
        async with lock:
            found = await self.open_entries(pos_profile)
            if found:
                entry = await self._client.get_doc("POS Opening Entry", str(found[0]["name"]))
                if entry is not None:
                    return entry, False
            entry = await self._client.insert("POS Opening Entry", {
                "pos_profile": pos_profile,
                "company": self._company,
                "user": user,
                "period_start_date": start.replace(microsecond=0).isoformat(sep=" "),
                "posting_date": start.date().isoformat(),
                "docstatus": 1,
                "balance_details": [{"mode_of_payment": mop, "opening_amount": amount}
                                    for mop, amount in balances.items()],
            })
            return entry, True


def is_no_open_shift(messages: list[str]) -> bool:
    """Whether ERPNext refused a POS Invoice for want of an open POS Opening Entry."""
    return any(NO_OPEN_SHIFT in m for m in messages)
