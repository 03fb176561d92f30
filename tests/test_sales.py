"""Till payload rules that are not about one tenant's mapping."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edge.sales import Closure, Sale

SALE = {"items": [{"item_code": "cof", "qty": 1, "rate": "2.50"}], "branch_id": "main", "till_id": "t1"}


@pytest.mark.parametrize("value", [0, 1700000000, "0", "1700000000", 1.5, True])
def test_dates_and_times_are_iso_text_never_unix_times(value: object) -> None:
    with pytest.raises(ValidationError) as err:
        Sale.model_validate({**SALE, "posting_date": value})
    assert err.value.errors()[0]["loc"] == ("posting_date",)
    with pytest.raises(ValidationError):
        Closure.model_validate({"branch_id": "main", "till_id": "t1", "period_start": value,
                                "period_end": "2026-01-31T23:00:00", "balances": [{"method": "cash", "closing_amount": 1}]})


def test_iso_forms_are_accepted() -> None:
    sale = Sale.model_validate({**SALE, "posting_date": "2026-01-31", "posting_time": "14:05:00"})
    assert (sale.posting_date.isoformat(), sale.posting_time.isoformat()) == ("2026-01-31", "14:05:00")
    again = Sale.model_validate_json(sale.model_dump_json())  # what a sync worker reads back
    assert again == sale
