"""Reading what changed in ERPNext since a watermark, tie-safe and in bounded pages.

Frappe stamps every write in `modified` (microseconds), and a bulk import gives many
rows one stamp. Paging by `modified > m` alone would skip the rest of a tie that a
page boundary cut; paging by offset would skip or repeat rows that change meanwhile.
So the watermark is the pair (modified, name), and each step asks for the rest of the
watermark's own stamp (`modified = m and name > n`, by name) before the next stamps
(`modified > m`, by modified then name). Every comparison is made by the database, in
its own collation, never in Python.

Deletions come from `Deleted Document` (deleted_doctype, deleted_name, creation), read
the same way on (creation, name).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from edge.erpnext.client import ErpnextClient, FrappeError
from edge.masterdata.collections import Collection, Row


@dataclass(frozen=True)
class Watermark:
    """Where a collection's reading of ERPNext stands."""

    modified: str = ""
    name: str = ""
    deleted: str = ""  # Deleted Document creation
    deleted_name: str = ""

    def encode(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> Watermark:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(**{k: str(raw.get(k) or "") for k in ("modified", "name", "deleted", "deleted_name")})


Batch = list[tuple[str, Row | None]]  # (document name, the till's row, or None: not (any more) in the collection)


async def changes(client: ErpnextClient, coll: Collection, cfg: Any, scope: str, mark: Watermark,
                  page: int) -> AsyncIterator[tuple[Batch, Watermark]]:
    """Batches of what changed after `mark`, in ERPNext's order, each with the watermark
    that follows it (so a refresh cut short resumes after the last batch it stored)."""
    fields = coll.read_fields(cfg)
    base = coll.scoped(scope)
    while True:
        if mark.modified:
            tie = await client.find(coll.doctype, [*base, ["modified", "=", mark.modified], ["name", ">", mark.name]],
                                    fields, limit=page, order_by="name asc")
            if tie:
                mark = replace(mark, name=str(tie[-1]["name"]))
                yield await _batch(client, coll, cfg, scope, tie, base), mark
                if len(tie) == page:
                    continue
        after = [["modified", ">", mark.modified]] if mark.modified else []
        rows = await client.find(coll.doctype, [*base, *after], fields, limit=page, order_by="modified asc, name asc")
        if not rows:
            break
        mark = replace(mark, modified=str(rows[-1]["modified"]), name=str(rows[-1]["name"]))
        yield await _batch(client, coll, cfg, scope, rows, base), mark
    async for gone, deleted_mark in _deletions(client, coll.doctype, mark, page):
        yield [(name, None) for name in gone], deleted_mark


async def _deletions(client: ErpnextClient, doctype: str, mark: Watermark,
                     page: int) -> AsyncIterator[tuple[list[str], Watermark]]:
    base = [["deleted_doctype", "=", doctype]]
    fields = ["name", "deleted_name", "creation"]
    try:
        while True:
            if mark.deleted:
                tie = await client.find("Deleted Document", [*base, ["creation", "=", mark.deleted],
                                                              ["name", ">", mark.deleted_name]],
                                        fields, limit=page, order_by="name asc")
                if tie:
                    mark = replace(mark, deleted_name=str(tie[-1]["name"]))
                    yield [str(r["deleted_name"]) for r in tie], mark
                    if len(tie) == page:
                        continue
            after = [["creation", ">", mark.deleted]] if mark.deleted else []
            rows = await client.find("Deleted Document", [*base, *after], fields, limit=page,
                                     order_by="creation asc, name asc")
            if not rows:
                return
            mark = replace(mark, deleted=str(rows[-1]["creation"]), deleted_name=str(rows[-1]["name"]))
            yield [str(r["deleted_name"]) for r in rows], mark
    except FrappeError as exc:
        if exc.status != 403:
            raise
        # the API user may not read Deleted Document: deletions are not seen (disabling is)


async def _batch(client: ErpnextClient, coll: Collection, cfg: Any, scope: str, rows: list[Row],
                 base: list[list[Any]]) -> Batch:
    """The till's rows for a page of ERPNext rows, with their child rows: one call per child
    table for the whole page, selecting the page's span of `modified` (the page was read in
    that order), never a list of names (500 names would not fit in a request line)."""
    kept = {str(r["name"]): r for r in rows if coll.keep(r, cfg, scope) is not None}
    span = [["modified", ">=", rows[0]["modified"]], ["modified", "<=", rows[-1]["modified"]]]
    for child in coll.children if kept else ():
        found: dict[str, list[Row]] = {name: [] for name in kept}
        joined = await client.find(coll.doctype, [*base, *span],
                                   ["name", *(f"{child.table}.{f}" for f in child.fields)], limit=0)
        for j in joined:
            values = {f: j.get(f) for f in child.fields}
            name = str(j["name"])
            # a parent without children joins as nulls; rows sharing a boundary stamp may be another page's
            if name in found and any(v is not None for v in values.values()):
                found[name].append(values)
        for name, row in kept.items():
            row[child.key] = found[name]
    return [(str(r["name"]), coll.keep(r, cfg, scope)) for r in rows]
