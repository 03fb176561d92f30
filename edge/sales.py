"""What tills send: sales and returns (Till King contract), validated with pydantic.

Money and quantities are Decimal end to end; JSON bodies are parsed with
`parse_float=Decimal` (edge.bodies.read_json), so no float ever holds a price.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

TXN_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,139}$"
# A decimal may come as a string ("2.50", the safe way to send money): ASCII digits with
# an optional sign, point and exponent (_plain_number checks the same), then pydantic's
# Decimal parsing and the constraints below.
_NUMBER = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER_TEXT = re.compile(rf"^{_NUMBER}$")
_DECIMAL_STRING = {"type": "string", "pattern": rf"^\s*{_NUMBER}\s*$",
                   "description": 'a decimal number in a string, e.g. "2.50"'}


def _decimal_schema(**number: Any) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": "number", **number}, _DECIMAL_STRING]})


def _plain_number(value: Any) -> Any:
    """A number written as text uses ASCII digits only: Python's Decimal also reads
    "１２", "١٢" and "1_000", which no till means and a display would show otherwise."""
    if isinstance(value, str) and not _NUMBER_TEXT.match(value.strip()):
        raise ValueError('give a decimal number in ASCII digits, e.g. 2.50 or "2.50"')
    return value


_PLAIN = BeforeValidator(_plain_number)
Money = Annotated[Decimal, _PLAIN, Field(ge=0, max_digits=18, decimal_places=6), _decimal_schema(minimum=0)]
Qty = Annotated[Decimal, _PLAIN, Field(gt=0, max_digits=18, decimal_places=6), _decimal_schema(exclusiveMinimum=0)]
Percent = Annotated[Decimal, _PLAIN, Field(ge=0, le=100), _decimal_schema(minimum=0, maximum=100)]


def _temporal_schema(fmt: str, example: str) -> WithJsonSchema:
    # pydantic also parses other ISO 8601 spellings: the schema says so, after the form
    # tills should send. Numbers (Unix times) are refused by _iso_text.
    return WithJsonSchema({"anyOf": [
        {"type": "string", "format": fmt, "examples": [example]},
        {"type": "string", "description": "also accepted: other ISO 8601 forms"},
    ]})


def _iso_text(value: Any) -> Any:
    """Dates and times come as ISO 8601 text: a number (or a string of digits) would be
    read as a Unix time, and a till bug sending 0 would date a sale 1970-01-01."""
    if isinstance(value, date | time):  # already parsed (a datetime is a date)
        return value
    if not isinstance(value, str) or value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise ValueError("give an ISO 8601 string, e.g. 2026-01-31, 14:05:00 or 2026-01-31T14:05:00+01:00")
    return value


_ISO = BeforeValidator(_iso_text)
Date = Annotated[date, _ISO, _temporal_schema("date", "2026-01-31")]
Time = Annotated[time, _ISO, _temporal_schema("time", "14:05:00")]
DateTime = Annotated[datetime, _ISO, _temporal_schema("date-time", "2026-01-31T22:00:00+01:00")]
Code = Annotated[str, Field(min_length=1, max_length=140)]


def id_text(value: Any) -> Any:
    """Ids compared as text: the Till King contract sends a branch as `1` or `"1"` alike."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# A branch id: text, or an integer read as its text.
BranchId = Annotated[str, BeforeValidator(id_text), Field(min_length=1, max_length=140)]
# Answers carry money as JSON numbers (edge.erpnext.client.to_json), not strings.
Amount = Annotated[Decimal, WithJsonSchema({"type": "number"})]


def reference_for(device: str, txn: str) -> str:
    """The value written to the invoice's reference field: the till's transaction id,
    scoped by device as idempotency keys are (two tills may both number sales "1")."""
    ref = f"{device}/{txn}"
    # A Frappe Data field holds 140 characters.
    return ref if len(ref) <= 140 else "sha256:" + hashlib.sha256(ref.encode()).hexdigest()


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


class SaleItem(_Payload):
    """A line: the item, how many, at what unit price."""

    item_code: Code
    item_name: str | None = Field(default=None, max_length=140)
    qty: Qty
    rate: Money


class Payment(_Payload):
    """A tender: the till's method name (mapped per tenant) and the amount."""

    method: Code
    amount: Money
    reference: str | None = Field(default=None, max_length=140, description="e.g. a mobile-money transaction id: "
                                                                          "the payment row's reference_no")


_SALE_EXAMPLE: dict[str, Any] = {
    "items": [{"item_code": "cof", "item_name": "Coffee", "qty": 2, "rate": "2.50"}],
    "payments": [{"method": "cash", "amount": "5.00"}],
    "branch_id": "main", "till_id": "till-01", "client_txn_id": "tx-1001",
}


class Sale(_Payload):
    """`POST /v1/sale`."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SALE_EXAMPLE]})

    items: list[SaleItem] = Field(min_length=1, max_length=500)
    payments: list[Payment] = Field(default_factory=list, max_length=20)
    customer: str | None = Field(default=None, max_length=140)
    branch_id: BranchId | None = Field(default=None, description="the device's branch when left out")
    till_id: Code
    client_txn_id: str | None = Field(default=None, pattern=TXN_ID)
    posting_date: Date | None = None
    posting_time: Time | None = None
    discount_amount: Money | None = None
    additional_discount_percentage: Percent | None = None

    @model_validator(mode="after")
    def _one_discount(self) -> Sale:
        if self.discount_amount is not None and self.additional_discount_percentage is not None:
            raise ValueError("give discount_amount or additional_discount_percentage, not both")
        if self.posting_time is not None and self.posting_date is None:
            raise ValueError("posting_time needs posting_date")
        return self

    def expected_total(self) -> Decimal:
        """What the till says the sale comes to (before ERPNext's own rounding)."""
        total = sum((i.qty * i.rate for i in self.items), Decimal(0))
        if self.discount_amount is not None:
            total -= self.discount_amount
        elif self.additional_discount_percentage is not None:
            total -= total * self.additional_discount_percentage / 100
        return total.quantize(Decimal("0.01"))

    def paid(self) -> Decimal:
        """Sum of the tenders."""
        return sum((p.amount for p in self.payments), Decimal(0))


class Return(Sale):
    """`POST /v1/return`: quantities and amounts are given positive; the document carries them negative."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {**_SALE_EXAMPLE, "client_txn_id": "tx-1001-r", "return_against": "ACC-SINV-2026-00001"}]})

    return_against: Code


class Balance(_Payload):
    """One payment method's cash-up at a till: what was there at opening and counted at closing."""

    method: Code
    opening_amount: Money = Decimal(0)
    closing_amount: Money


class Closure(_Payload):
    """`POST /v1/closure`: the end of a till's period (usually a day)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "branch_id": "main", "till_id": "till-01", "client_txn_id": "close-2026-01-01",
        "period_start": "2026-01-01T06:00:00Z", "period_end": "2026-01-01T22:00:00Z",
        "balances": [{"method": "cash", "opening_amount": "50.00", "closing_amount": "55.00"}]}]})

    branch_id: BranchId | None = Field(default=None, description="the device's branch when left out")
    till_id: Code
    client_txn_id: str | None = Field(default=None, pattern=TXN_ID)
    period_start: DateTime
    period_end: DateTime
    balances: list[Balance] = Field(min_length=1, max_length=20)
    opening_entry: str | None = Field(default=None, max_length=140, description="POS Opening Entry (POS Invoice tenants)")

    @model_validator(mode="after")
    def _period(self) -> Closure:
        if (self.period_start.tzinfo is None) != (self.period_end.tzinfo is None):
            raise ValueError("give both period times with a UTC offset, or neither")
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        _one_balance_per_method(self.balances)
        return self


def _one_balance_per_method(balances: list[Any]) -> None:
    methods = [b.method for b in balances]
    if len(set(methods)) != len(methods):
        raise ValueError("one balance per payment method")


class OpeningBalance(_Payload):
    """A payment method's float at the start of a shift."""

    method: Code
    opening_amount: Money = Decimal(0)


class Opening(_Payload):
    """`POST /v1/opening`: the start of a branch's shift (POS Invoice tenants: a POS Opening Entry)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "branch_id": "front", "till_id": "till-01", "client_txn_id": "open-2026-01-01",
        "balances": [{"method": "cash", "opening_amount": "50.00"}]}]})

    branch_id: BranchId | None = Field(default=None, description="the device's branch when left out")
    till_id: Code
    client_txn_id: str | None = Field(default=None, pattern=TXN_ID)
    period_start: DateTime | None = Field(default=None, description="when the shift starts (default: now)")
    balances: list[OpeningBalance] = Field(default_factory=list, max_length=20,
                                           description="the float per method (default: 0 for each of the tenant's)")

    @model_validator(mode="after")
    def _one_per_method(self) -> Opening:
        _one_balance_per_method(self.balances)
        return self


class OpeningView(_Payload):
    """201 body of /v1/opening: the branch's open POS Opening Entry."""

    opening_entry: str
    created: bool = Field(description="false: the branch's shift was open already, and this is it")
    branch_id: str
    pos_profile: str | None
    period_start: str | None = Field(description="site time")
    status: str | None
    balances: list[dict[str, Any]] = Field(description="mode_of_payment and opening_amount, as ERPNext stored them")


MAX_BATCH = 500


class SyncTransaction(BaseModel):
    """One queued till transaction in a `/sync/batch` upload. `payload` is a /v1/sale,
    /v1/return or /v1/closure body (by `type`), validated by the same rules; its own
    client_txn_id, if any, must equal the envelope's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["sale", "return", "closure"]
    client_txn_id: str = Field(pattern=TXN_ID)
    payload: dict[str, Any]


class SyncBatchRequest(BaseModel):
    """`POST /sync/batch`: an offline till's queue, oldest first."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"transactions": [
        {"type": "sale", "client_txn_id": "tx-1002", "payload": {**_SALE_EXAMPLE, "client_txn_id": "tx-1002"}}]}]})

    transactions: list[SyncTransaction] = Field(min_length=1, max_length=MAX_BATCH)


class SyncAccepted(BaseModel):
    """202 body of /sync/batch: the upload is durably queued."""

    batch_uuid: str
    job_count: int = Field(description="distinct transactions in the batch")
    enqueued: int = Field(description="jobs created now; the rest were uploaded before and point at their existing job")
    redis_ok: bool = Field(description="the queue store (Redis, or the embedded SQLite file) accepted the jobs")


class SyncJobView(BaseModel):
    """One transaction of a batch, as the queue sees it."""

    job_id: str
    client_txn_id: str
    type: Literal["sale", "return", "closure"]
    status: Literal["pending", "retrying", "synced", "failed"]
    attempts: int
    invoice_id: str | None = Field(description="the ERPNext document (or the gateway's closure record) once synced")
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="when a queued job is tried next (UTC); null once final")
    waiting_for: str | None = Field(default=None, description="a return waiting for this sale's client_txn_id to sync")


class SyncStatus(BaseModel):
    """200 body of /sync/status/{batch_uuid}."""

    batch_uuid: str
    status: Literal["pending", "processing", "partial", "synced", "failed"]
    summary: dict[str, int]
    jobs: list[SyncJobView]


class LineView(_Payload):
    """An invoice line as ERPNext stored it."""

    item_code: str | None
    qty: Amount | None
    rate: Amount | None
    amount: Amount | None


class PaymentView(_Payload):
    """A payment row as ERPNext stored it."""

    mode_of_payment: str | None
    amount: Amount | None


class InvoiceView(_Payload):
    """201 body of /v1/sale and /v1/return: ERPNext's own figures from the created document."""

    invoice_id: str
    docstatus: int | None
    is_return: bool
    return_against: str | None
    posting_date: str | None
    posting_time: str | None
    total: Amount | None
    net_total: Amount | None
    grand_total: Amount | None
    rounded_total: Amount | None
    paid_amount: Amount | None
    change_amount: Amount | None
    outstanding_amount: Amount | None
    status: str | None = Field(default=None, description="the invoice's state as ERPNext books it: Paid, "
                               "Partly Paid, Unpaid, Return, Consolidated... (never the stale Draft of a submitted one)")
    items: list[LineView]
    payments: list[PaymentView]
    messages: list[str] = Field(default_factory=list, description="what ERPNext said while accepting the document")
    warnings: list[str] = Field(default_factory=list, description="what the gateway noticed: e.g. a sale ERPNext "
                                "booked as not fully paid on a tenant without credit sales")


class MethodTotals(_Payload):
    """One payment method at closing: opening + ERPNext's takings = expected; counted - expected = difference."""

    method: str
    mode_of_payment: str
    opening_amount: Amount
    erpnext_amount: Amount
    expected_amount: Amount
    closing_amount: Amount
    difference: Amount


class Difference(_Payload):
    """Where ERPNext's record of a closure differs from what the till sent."""

    field: str
    method: str | None = None
    till: str
    erpnext: str


class ClosureView(_Payload):
    """201 body of /v1/closure: ERPNext's figures (for POS Invoice tenants, as its POS Closing Entry stored them)."""

    closure_id: str
    closing_entry: str | None = Field(description="the POS Closing Entry, for tenants on POS Invoices")
    opening_entry: str | None = Field(default=None, description="the POS Opening Entry (shift) it closed")
    branch_id: str
    till_id: str
    period_start: str = Field(description="site time (the shift's start for POS Invoice tenants)")
    period_end: str = Field(description="site time")
    invoice_count: int
    grand_total: Amount
    methods: list[MethodTotals]
    differences: list[Difference] = Field(default_factory=list, description="where ERPNext's figures are not the till's")
    warnings: list[str] = Field(default_factory=list)


# The payload model of each transaction type (/v1/<type>, and `type` in a sync batch).
PAYLOAD_MODELS: dict[str, type[Sale | Closure | Opening]] = {
    "sale": Sale, "return": Return, "closure": Closure, "opening": Opening}
