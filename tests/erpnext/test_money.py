"""ERPNext's rounding of an invoice total (edge/erpnext/money.py), against the outcomes a real
ERPNext 15 booked for UGX (tests/fixtures/real_erpnext/pos/rounding.json)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from edge.erpnext.money import Rounding, covers, due, uncovered

UGX = Rounding(smallest_fraction=Decimal(0), method="Banker's Rounding", disabled=False)
RECORDED = json.loads((Path(__file__).parents[1] / "fixtures/real_erpnext/pos/rounding.json").read_text())


@pytest.mark.parametrize("exchange", [e for e in RECORDED if e["id"] in ("rnd-a", "rnd-b", "rnd-c", "rnd-d")],
                         ids=lambda e: e["id"])
def test_rounded_totals_and_cover_match_the_real_site(exchange) -> None:
    doc = exchange["response"]["data"]
    grand, paid = Decimal(str(doc["grand_total"])), Decimal(str(doc["paid_amount"]))
    assert UGX.total(grand) == Decimal(str(doc["rounded_total"]))
    # ERPNext booked it Paid exactly when the payments cover the rounded total
    assert covers(paid, grand, UGX) == (doc["status"] == "Paid" or float(doc["outstanding_amount"]) == 0)


def test_fractions_half_way_and_switches() -> None:
    cents = Rounding(Decimal("0.05"), "Banker's Rounding", False)
    assert cents.total(Decimal("6.22")) == Decimal("6.20") and cents.total(Decimal("6.23")) == Decimal("6.25")
    assert cents.total(Decimal("6.225")) == Decimal("6.20")  # exactly half: down, as Frappe's remainder rule
    assert Rounding(Decimal(0), "Commercial Rounding", False).total(Decimal("24000.5")) == Decimal("24001")
    assert UGX.total(Decimal("24000.5")) == Decimal("24000") and UGX.total(Decimal("24001.5")) == Decimal("24002")
    off = Rounding(Decimal(0), "Banker's Rounding", True)
    assert off.total(Decimal("24000.6")) == Decimal("24000.6")
    # rounding not known: the till's total less one unit, so an offline upload is never refused for it
    assert due(Decimal("24000.4"), None) == Decimal("23999.4")
    assert "rounds to 24001" in uncovered(Decimal("24000.6"), Decimal("24000.6"), UGX)
