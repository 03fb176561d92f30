"""The stand-in replays the master-data exchanges (issue 12) recorded on the real Frappe 15.101 /
ERPNext 15.99 site (tests/fixtures/real_erpnext/masterdata, recorded with record.py there; facts in
summary.md) on a fresh real-like site, in recorded order, and must answer as the real site did.

Differences from the POS replay (replay.py): each exchange runs with the site's clock pinned to
the `modified` the real site stamped on the document it wrote (a POST/PUT answer), or to the
Deleted Document's stamp (`clock`, a DELETE), so the stand-in's stamps are the recorded ones to
the microsecond and the recorded filters on the full-precision `modified`/`creation` text select
the same rows; `modified` is compared exactly, `creation` within 1.5 s (a Customer with a contact
is saved twice: its creation is earlier than its modified). A Deleted Document's `data` is
compared as JSON on the fields the recorder kept for the doctype (its stamps within 1.5 s:
the stand-in's pinned clock gives one instant to what the real site wrote milliseconds apart). Rows whose order the real site
leaves to MariaDB's plan (UNORDERED) are compared as multisets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.standin.reading import parse_datetime
from tests.standin.replay import SITE_ZONE, Exchange, Replay

MASTERDATA = Path(__file__).parents[1] / "fixtures" / "real_erpnext" / "masterdata"
TOPICS = ("items", "prices", "customers", "pricing_rules", "deleted", "webhooks", "joins")
# no order_by and a child table joined: the child rows come in the order of their random names
UNORDERED = {"bc-join-unordered": "no order_by at all", "bc-join-bare-order": "barcodes of one item: no child order",
             # Item Price names are hashes whose first character is random per request
             "price-default-order": "no order_by: ascending (random) names",
             # the refresh's child joins (record_joins.py) send no order_by: rows come as MariaDB reads them
             "profile-payments": "no order_by", "item-span-barcodes": "no order_by", "item-span-inner": "no order_by"}
STD = ["name", "owner", "creation", "modified", "docstatus", "doctype"]
DATA_KEYS = {
    "Item": STD + ["item_code", "item_name", "item_group", "stock_uom", "disabled", "is_sales_item", "has_variants"],
    "Item Price": STD + ["item_code", "price_list", "price_list_rate", "uom", "currency", "valid_from", "selling"],
    "Customer": STD + ["customer_name", "customer_group", "territory", "disabled", "mobile_no", "email_id"],
    "Pricing Rule": STD + ["title", "selling", "disable", "company", "for_price_list", "apply_on", "min_qty",
                           "rate_or_discount", "discount_percentage", "rate", "priority", "valid_from"],
}
DATA_ROW_KEYS = ["doctype", "idx", "parentfield", "parenttype", "item_code", "barcode"]


def exchanges() -> list[Exchange]:
    """Every recorded exchange, in recorded order (the topics were recorded one after another)."""
    out = []
    for topic in TOPICS:
        for ex in json.loads((MASTERDATA / f"{topic}.json").read_text()):
            out.append(Exchange(topic, datetime.fromisoformat(ex["at_utc"].replace("Z", "+00:00")), ex))
    return out


def clock_for(ex: Exchange) -> datetime:
    """The moment the real site stamped: the written document's modified, a delete's `clock`, else at_utc."""
    data = (ex.data.get("response") or {}).get("data")
    stamp = ex.data.get("clock") or (data.get("modified") if isinstance(data, dict) else None)
    local = parse_datetime(stamp) if stamp else None
    return local.replace(tzinfo=SITE_ZONE).astimezone(UTC) if local is not None else ex.at


class MasterReplay(Replay):
    """Replay with master-data clocks and comparisons (see the module docstring)."""

    def clock(self, ex: Exchange) -> datetime:
        return clock_for(ex)

    def compare_value(self, expected: Any, actual: Any, where: str, key: str = "", made: bool = False) -> None:
        if key == "modified" and isinstance(expected, str):
            if actual != expected:
                self.fail(where, f"modified {actual!r} != recorded {expected!r}")
            return
        if key == "data" and isinstance(expected, str) and expected.startswith("{"):
            self.compare_data(expected, actual, where)
            return
        super().compare_value(expected, actual, where, key, True)

    def compare_data(self, expected: str, actual: Any, where: str) -> None:
        """A Deleted Document's `data`: Document.as_json text, compared on the kept fields."""
        if not isinstance(actual, str) or not actual.startswith('{\n "'):
            self.fail(where, f"data is not as_json text: {str(actual)[:80]!r}")
            return
        rec, got = json.loads(expected), json.loads(actual)
        keys = DATA_KEYS.get(rec.get("doctype"), STD)
        missing = [k for k in keys if k in rec and k not in got]
        if missing:
            self.fail(where, f"data lacks {missing}")
        trimmed = {k: rec[k] for k in keys if k in rec and k not in ("creation", "modified")}
        for k in ("creation", "modified"):  # a document written twice in one request: within 1.5 s
            if k in rec:
                self.compare_stamp(rec[k], got.get(k), f"{where}(data).{k}")
        for table in ("barcodes", "items"):
            if table in rec:
                trimmed[table] = [{k: r[k] for k in DATA_ROW_KEYS if k in r} for r in rec[table]]
        super().compare_value(trimmed, got, f"{where}(data)", "", True)


def _rows_key(row: Any) -> str:
    return json.dumps(row, sort_keys=True)


def test_the_stand_in_answers_master_data_calls_as_the_real_site() -> None:
    replay = MasterReplay().start()
    try:
        for ex in exchanges():
            r = replay.send(ex)
            if ex.id in UNORDERED and r.status_code == 200:
                recorded = ex.data["response"]["data"]
                got = r.json()["data"]
                if sorted(map(_rows_key, replay.substitute(recorded))) != sorted(map(_rows_key, got)):
                    replay.fail(ex.id, f"rows {got} are not the recorded {recorded} (in any order)")
                continue
            replay.compare(ex, r)
    finally:
        replay.stop()
    assert not replay.failures, "\n".join(replay.failures)
