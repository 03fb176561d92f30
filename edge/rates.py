"""A rate for the `limits` library in the configuration: `N/second|minute|hour|day`."""

from __future__ import annotations

from typing import Annotated

from limits import parse
from pydantic import AfterValidator


def _rate(v: str) -> str:
    try:
        item = parse(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a rate like '120/minute' or '10/second'") from None
    if item.amount <= 0:
        raise ValueError("the amount must be positive")
    return v


Rate = Annotated[str, AfterValidator(_rate)]
