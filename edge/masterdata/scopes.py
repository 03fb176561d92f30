"""Which scope of a collection a branch's tills use: prices come per price list, the branch's
own (`branches.<b>.price_list`) or else its POS Profile's selling price list."""

from __future__ import annotations

from typing import Any

import orjson

from edge.masterdata.collections import SETTINGS


def price_list_of(branch: Any, profile: dict[str, Any] | None) -> str | None:
    """The branch's price list: its own, else its POS Profile's (None when neither says)."""
    if branch.price_list:
        return str(branch.price_list)
    price_list = (profile or {}).get("selling_price_list")
    return str(price_list) if price_list else None


async def cached_price_list(edge: Any, tenant: Any, branch: str) -> str | None:
    """The branch's price list from what the store holds, never asking ERPNext (None when
    the branch's profile was never read: no till of it has prices yet)."""
    cfg = tenant.config.branches[branch]
    if cfg.price_list:
        return str(cfg.price_list)
    rows = await edge.store.md_page(tenant.key, SETTINGS.name, cfg.pos_profile, 0, 1, False)
    return price_list_of(cfg, orjson.loads(rows[0].data) if rows else None)
