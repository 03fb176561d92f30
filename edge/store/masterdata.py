"""Master data kept for tills: the store's half (a protocol that knows nothing of HTTP or ERPNext).

Each (tenant, collection, scope) is a compacted change log: one row per ERPNext document
name, each row stamped with the collection's change sequence `seq` when it last changed.
A refresher writes what ERPNext says changed (`md_apply`); tills read "everything after
seq N" (`md_page`) and keep the last seq they saw as their cursor. A row that left the
collection (deleted, disabled, moved to another price list) stays as a tombstone, so a
till's delta can say so.

`collection` is e.g. "products", "prices", "customers", "campaigns", "settings"; `scope`
narrows it where tills differ ("" for the whole tenant, a price list's name for prices,
a branch for settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class MasterRow:
    """One document of a collection as the store holds it."""

    name: str  # the ERPNext document name: the row's key
    seq: int  # the collection's change sequence when this row last changed (>= 1)
    deleted: bool  # a tombstone: the row left the collection at `seq`
    data: bytes  # the row as the till gets it (JSON); b"" for a tombstone


@dataclass(frozen=True)
class CollectionState:
    """Where a collection stands."""

    seq: int = 0  # the latest change sequence (0: nothing stored yet)
    source_cursor: str = ""  # opaque to the store: where the refresher reads ERPNext from next
    refreshed_at: float = 0.0  # the last successful refresh (epoch seconds; 0: never)
    failed_at: float = 0.0  # the last failed refresh after `refreshed_at` (0: none)
    error: str = ""  # that failure, short and secret-free
    live: int = 0  # rows that are not tombstones


class MasterdataStore(Protocol):
    """Master data in the gateway's store; safe from many processes at once."""

    async def md_state(self, tenant: str, collection: str, scope: str) -> CollectionState:
        """The collection's state (a default CollectionState if never written)."""
        ...

    async def md_apply(self, tenant: str, collection: str, scope: str, upserts: list[tuple[str, bytes]],
                       deletes: list[str], source_cursor: str, now: float) -> int:
        """Atomically: write `upserts` (name, data) and tombstone `deletes` (names), giving
        each row that really changed the next seq (an upsert with the same bytes as the live
        row, or a delete of a missing or already deleted row, changes nothing and takes no
        seq); set `source_cursor`, `refreshed_at = now` and clear the failure. A name in
        both lists is an upsert. Returns the collection's seq afterwards."""
        ...

    async def md_failed(self, tenant: str, collection: str, scope: str, error: str, now: float) -> None:
        """Record a failed refresh (`failed_at`, `error`), keeping every row."""
        ...

    async def md_page(self, tenant: str, collection: str, scope: str, after: int, limit: int,
                      tombstones: bool) -> list[MasterRow]:
        """Rows with seq > `after`, by seq ascending, at most `limit`; tombstones only if asked."""
        ...

    async def md_lease(self, tenant: str, collection: str, scope: str, owner: str, now: float, ttl: float) -> bool:
        """Take (or extend, if `owner` holds it) the collection's refresh lease until now + ttl;
        False while another owner holds an unexpired one. One refresher per collection
        across every process and replica."""
        ...

    async def md_release(self, tenant: str, collection: str, scope: str, owner: str) -> None:
        """Give the lease up (only if `owner` holds it)."""
        ...


def normalise(upserts: list[tuple[str, bytes]], deletes: list[str]) -> tuple[dict[str, bytes], list[str]]:
    """What an `md_apply` call asks for, each name once: the upserts (the last data given
    for a name wins, in the order names first appear) and the deletes that are not also
    upserts (a name in both lists is an upsert). Both backends apply this, so they hand
    out the same seqs for the same call."""
    rows: dict[str, bytes] = {}
    for name, data in upserts:
        rows[name] = bytes(data)
    gone = [name for name in dict.fromkeys(deletes) if name not in rows]
    return rows, gone
