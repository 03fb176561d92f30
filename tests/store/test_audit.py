"""The admin audit log (AuditLog) on both backends: newest first, paging by id, tenants apart,
several store instances (processes) appending at once."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.store import Store, open_store

NOW = 1_700_000_000.0


def _twin(store: Any) -> Store:
    return open_store(f"sqlite:///{store.path}" if hasattr(store, "path") else store.url)


async def test_records_come_newest_first_and_page_by_id(store: Store, tenant: str) -> None:
    assert await store.audit_list(tenant, "", 10) == []
    ids = [await store.audit_append(tenant, b'{"n": %d}' % i, NOW + i) for i in range(5)]
    assert len(set(ids)) == 5
    got = await store.audit_list(tenant, "", 3)
    assert [r.data for r in got] == [b'{"n": 4}', b'{"n": 3}', b'{"n": 2}'] and got[0].at == NOW + 4
    rest = await store.audit_list(tenant, got[-1].id, 10)
    assert [r.data for r in rest] == [b'{"n": 1}', b'{"n": 0}']
    assert await store.audit_list(tenant, rest[-1].id, 10) == []
    assert await store.audit_list(tenant, "not-an-id", 10) in ([], got + rest)  # never an error


async def test_tenants_are_apart_and_processes_append_together(store: Store, tenant: str) -> None:
    other = tenant + "x"
    await store.audit_append(other, b"{}", NOW)
    twin = _twin(store)
    await twin.open()
    try:
        await asyncio.gather(*(s.audit_append(tenant, b'{"p": %d}' % i, NOW) for i in range(20)
                               for s in (store, twin)))
    finally:
        await twin.close()
    mine = await store.audit_list(tenant, "", 100)
    assert len(mine) == 40 and len({r.id for r in mine}) == 40
    assert len(await store.audit_list(other, "", 100)) == 1
