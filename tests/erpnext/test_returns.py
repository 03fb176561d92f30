"""Binding return lines to the sale's rows (edge/erpnext/returns.py)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from edge.erpnext.returns import BoundLine, ReturnRefused, SoldRow, bind

SOLD = [SoldRow("r1", "BREAD", D("1.20"), D("2")), SoldRow("r2", "COFFEE", D("2.50"), D("1")),
        SoldRow("r3", "BREAD", D("1.50"), D("1"))]


def test_lines_link_to_rows_of_the_same_item_and_rate_first() -> None:
    assert bind("INV-1", SOLD, [("BREAD", D("2"), D("1.20")), ("COFFEE", D("1"), D("2.50"))]) == [
        BoundLine("BREAD", D("2"), D("1.20"), "r1"), BoundLine("COFFEE", D("1"), D("2.50"), "r2")]


def test_a_line_spreads_over_rows_at_its_rate_or_dearer() -> None:
    assert bind("INV-1", SOLD, [("BREAD", D("3"), D("1.20"))]) == [
        BoundLine("BREAD", D("2"), D("1.20"), "r1"), BoundLine("BREAD", D("1"), D("1.20"), "r3")]


@pytest.mark.parametrize(("lines", "message"), [
    ([("MILK", D("1"), D("0.99"))], "line 1: MILK is not on invoice INV-1"),
    ([("BREAD", D("4"), D("1.20"))], "line 1: cannot return 4 of BREAD at 1.2: 3 of it remain to return on invoice INV-1"),
    ([("BREAD", D("2"), D("1.40"))], "1 at that rate or more"),  # a return dearer than the sale
    ([("BREAD", D("2"), D("1.20")), ("BREAD", D("2"), D("1.20"))], "line 2: cannot return 2 of BREAD"),
])
def test_what_cannot_be_returned_is_refused(lines, message) -> None:
    with pytest.raises(ReturnRefused) as info:
        bind("INV-1", SOLD, lines)
    assert any(message in m for m in info.value.messages), info.value.messages
