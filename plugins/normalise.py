"""POS payload normalisation: validate a till's sale/return and map it onto the
tenant's ERPNext vocabulary (branches, payment methods, item codes).

Its Config is the tenant's mapping rules; they sit directly under the tenant in
tenants.yaml (`tenants.shop1.company`, `tenants.shop1.payment_methods`, ...).
The plugin leaves `ctx.pos` (a PosRequest) for the route that posts it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from starlette.responses import Response

from edge.bodies import read_json
from edge.chain import Context, Services
from edge.config_errors import field_error
from edge.erpnext.money import Rounding, covers, uncovered
from edge.problems import Problem, problem_response, validation_errors
from edge.sales import MAX_BATCH, PAYLOAD_MODELS, BranchId, Closure, Opening, Sale, SyncTransaction, reference_for

# The reference field: the standard po_no, or a Custom Field (Frappe names them custom_*).
FIELDNAME = re.compile(r"^(po_no|custom_[a-z0-9_]{1,132})$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,139}$")


class Branch(BaseModel):
    """Where a till's sales land in ERPNext."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pos_profile: str = Field(min_length=1, description="the branch's POS Profile")
    warehouse: str = Field(min_length=1, description="the warehouse its sales take stock from")
    cost_center: str | None = Field(default=None, description="cost center of its invoice lines")
    price_list: str | None = Field(default=None, description="selling price list of its invoices")


@dataclass(frozen=True)
class PosRequest:
    """A validated, normalised POS call, ready to post."""

    kind: Literal["sale", "return", "closure", "opening"]
    payload: Sale | Closure | Opening
    fingerprint: str  # sha256 of the canonical payload: same key + other payload is refused
    txn_fingerprint: str  # of the type and payload: the same transaction through /v1 and /sync alike
    idempotency_key: str | None
    reference: str  # written to the invoice's reference field
    device: str


@dataclass(frozen=True)
class PosBatch:
    """A validated /sync/batch upload: one PosRequest per distinct transaction, in upload order."""

    items: tuple[PosRequest, ...]


class NormalisePlugin:
    """Validates /v1 payloads against the tenant's mapping rules."""

    name: ClassVar[str] = "normalise"
    priority: ClassVar[int] = 1_000

    class Config(BaseModel):
        """Mapping rules (directly under the tenant's entry)."""

        company: str | None = Field(default=None, description="the ERPNext company (required for POS)")
        invoice_doctype: Literal["Sales Invoice", "POS Invoice"] = Field(
            default="Sales Invoice", description="`Sales Invoice` or `POS Invoice`")
        default_customer: str | None = Field(default=None, description="used when a sale names no customer")
        payment_methods: dict[str, str] = Field(
            default_factory=dict, description="till method -> ERPNext Mode of Payment (an unknown method is 422)")
        branches: dict[BranchId, Branch] = Field(
            default_factory=dict, description="branch_id -> where its sales land (an unknown branch is 422); "
                                              "an integer key is its text (`1:` is branch \"1\")")
        item_codes: dict[str, str] = Field(default_factory=dict, description="till item code -> ERPNext item_code")
        update_stock: bool = Field(default=True, description="invoices move stock out of the branch's warehouse")
        ignore_pricing_rule: bool = Field(default=False, description="ERPNext applies no pricing rules to till prices")
        reference_field: str = Field(
            default="custom_pos_edge_txn_id",
            description="invoice field holding `<device_id>/<client_txn_id>`: `po_no` or a `custom_*` field")
        allow_credit_sales: bool = Field(default=False, description="accept sales whose payments do not cover the total")
        auto_open_shift: bool = Field(
            default=True, description="POS Invoice tenants: a sale in a branch with no open POS Opening Entry opens one "
                                      "(zero balances); off: such a sale is 422 until POST /v1/opening")

        @field_validator("reference_field")
        @classmethod
        def _fieldname(cls, v: str) -> str:
            if not FIELDNAME.match(v):
                raise ValueError("po_no, or a Custom Field name custom_<lower-case letters, digits, _>")
            return v

        @model_validator(mode="after")
        def _pos_needs_company(self) -> Any:
            if (self.branches or self.payment_methods) and not self.company:
                # reported at `company`, the key to add, rather than at the whole tenant
                raise field_error("company", "company is required when branches or payment_methods are set")
            return self

        @property
        def pos_enabled(self) -> bool:
            """Whether the tenant has a POS mapping at all (else /v1 answers pos_not_configured)."""
            return bool(self.company and self.branches and self.payment_methods)

    def __init__(self, config: Any, services: Services) -> None:
        self._cfg = config
        self._limit = services.gateway.max_body_bytes
        self._batch_limit = services.gateway.sync.max_batch_bytes
        self._enabled = config.pos_enabled

    async def on_request(self, ctx: Context) -> Response | None:
        if not self._enabled:
            return _answer(ctx, Problem("pos_not_configured",
                                        "this tenant has no POS mapping (company, branches, payment_methods)"))
        if ctx.group == "sync":  # /sync/batch, and SaleFlex's /pos/transactions/
            return await self._batch(ctx)
        last = ctx.scope["path"].rstrip("/").rsplit("/", 1)[-1]  # the route table admits sale, return, closure...
        kind = _ALIASES.get(last, last)
        raw = await read_json(ctx.receive, ctx.headers, self._limit)
        try:
            payload = _MODELS[kind].model_validate(raw)
        except ValidationError as exc:
            return _answer(ctx, Problem("validation_failed", f"the {kind} is invalid", errors=validation_errors(exc)))
        branch = _token_branch(ctx)
        if payload.branch_id is None:
            if branch is None:
                return _answer(ctx, Problem("validation_failed", f"the {kind} names no branch", errors=[_NO_BRANCH]))
            payload = payload.model_copy(update={"branch_id": branch})
        errors = self.mapping_errors(payload, kind, _known_rounding(ctx))
        if errors:
            return _answer(ctx, Problem("validation_failed", f"the {kind} cannot be mapped to ERPNext", errors=errors))
        if branch is not None and payload.branch_id != branch:
            return _answer(ctx, Problem("branch_not_allowed", f"this device is registered for branch "
                                        f"{branch!r}, not {payload.branch_id!r}",
                                        errors=[{"loc": ["branch_id"], "msg": "not this device's branch"}]))
        header = ctx.headers.get(b"idempotency-key", b"").decode("latin-1").strip()
        if header and not IDEMPOTENCY_KEY.match(header):
            return _answer(ctx, Problem("validation_failed", "the Idempotency-Key is invalid", errors=[
                {"loc": ["header", "Idempotency-Key"], "msg": "1-140 characters: letters, digits and . _ : -"}]))
        idem = header or payload.client_txn_id
        dump = payload.model_dump()
        ctx.pos = PosRequest(
            kind=kind,
            payload=payload,
            fingerprint=fingerprint(dump),
            txn_fingerprint=txn_fingerprint(kind, dump),
            idempotency_key=idem or None,
            reference=reference_for(ctx.device_id or "-", payload.client_txn_id or idem or uuid.uuid4().hex),
            device=ctx.device_id or "-",
        )
        return None

    async def _batch(self, ctx: Context) -> Response | None:
        """Validate a whole upload; every error is reported with its position, and any
        error refuses the whole batch (nothing of it is stored)."""
        raw = await read_json(ctx.receive, ctx.headers, self._batch_limit)
        txns = raw.get("transactions") if isinstance(raw, dict) else None
        if not isinstance(txns, list):
            return self._refuse(ctx, "the body must be an object with a transactions array",
                                [{"loc": ["transactions"], "msg": "required: an array of transactions"}])
        if not 1 <= len(txns) <= MAX_BATCH:
            return self._refuse(ctx, f"a batch holds 1 to {MAX_BATCH} transactions, this one {len(txns)}",
                                [{"loc": ["transactions"], "msg": f"1 to {MAX_BATCH} transactions (got {len(txns)})"}])
        device = ctx.device_id or "-"
        branch = _token_branch(ctx)
        rounding_of = _known_rounding(ctx)
        foreign: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        items: list[PosRequest] = []
        seen: dict[str, tuple[int, str]] = {}
        for i, entry in enumerate(txns):
            at = ["transactions", str(i)]
            try:
                txn = SyncTransaction.model_validate(entry)
            except ValidationError as exc:
                errors += _under(at, validation_errors(exc))
                continue
            own = txn.payload.get("client_txn_id")
            if own is not None and own != txn.client_txn_id:
                errors.append({"loc": [*at, "payload", "client_txn_id"], "msg": "differs from the transaction's client_txn_id"})
                continue
            try:
                payload = _MODELS[txn.type].model_validate({**txn.payload, "client_txn_id": txn.client_txn_id})
            except ValidationError as exc:
                errors += _under([*at, "payload"], validation_errors(exc))
                continue
            if payload.branch_id is None:
                if branch is None:
                    errors += _under([*at, "payload"], [_NO_BRANCH])
                    continue
                payload = payload.model_copy(update={"branch_id": branch})
            mapping = self.mapping_errors(payload, txn.type, rounding_of)
            if mapping:
                errors += _under([*at, "payload"], mapping)
                continue
            if branch is not None and payload.branch_id != branch:
                foreign.append({"loc": [*at, "payload", "branch_id"], "msg": "not this device's branch"})
            fp = txn_fingerprint(txn.type, payload.model_dump())
            first = seen.get(txn.client_txn_id)
            if first is not None:
                if first[1] != fp:
                    errors.append({"loc": [*at, "client_txn_id"],
                                   "msg": f"repeats transaction {first[0]}'s client_txn_id with a different payload"})
                continue  # the same transaction twice in one upload: queued once
            seen[txn.client_txn_id] = (i, fp)
            items.append(PosRequest(kind=txn.type, payload=payload, fingerprint=fp, txn_fingerprint=fp,
                                    idempotency_key=txn.client_txn_id,
                                    reference=reference_for(device, txn.client_txn_id), device=device))
        if errors:
            return self._refuse(ctx, f"{len({e['loc'][1] for e in errors})} of {len(txns)} transactions are invalid; "
                                     "nothing of this batch was stored", errors)
        if foreign:
            return _answer(ctx, Problem("branch_not_allowed", f"this device is registered for branch {branch!r}; "
                                        "nothing of this batch was stored", errors=foreign))
        ctx.pos = PosBatch(tuple(items))
        return None

    @staticmethod
    def _refuse(ctx: Context, detail: str, errors: list[dict[str, Any]]) -> Response:
        return _answer(ctx, Problem("validation_failed", detail, errors=errors))

    def mapping_errors(self, payload: Sale | Closure | Opening, kind: str,
                       rounding_of: Callable[[str], Rounding | None] | None = None) -> list[dict[str, Any]]:
        """What the tenant's rules refuse, with the field each error is about. `rounding_of`
        (a POS Profile's rounding, if known) makes the cover check ERPNext's."""
        cfg = self._cfg
        errors: list[dict[str, Any]] = []
        if payload.branch_id not in cfg.branches:
            errors.append({"loc": ["branch_id"], "msg": f"unknown branch {payload.branch_id!r}"})
        field = "balances" if isinstance(payload, Closure | Opening) else "payments"
        for i, p in enumerate(getattr(payload, field)):
            if p.method not in cfg.payment_methods:
                known = ", ".join(sorted(cfg.payment_methods))
                errors.append({"loc": [field, str(i), "method"], "msg": f"unknown payment method {p.method!r} (known: {known})"})
        if isinstance(payload, Closure | Opening):
            return errors
        if not (payload.customer or cfg.default_customer):
            errors.append({"loc": ["customer"], "msg": "no customer given and the tenant has no default_customer"})
        if kind == "sale" and not cfg.allow_credit_sales:
            total = payload.expected_total()
            rounding = rounding_of(cfg.branches[payload.branch_id].pos_profile) if (
                rounding_of and payload.branch_id in cfg.branches) else None
            if not covers(payload.paid(), total, rounding):
                errors.append({"loc": ["payments"], "msg": uncovered(payload.paid(), total, rounding)})
        return errors


_MODELS = PAYLOAD_MODELS
_ALIASES = {"closures": "closure"}  # SaleFlex GATE's POST /pos/closures/


def _answer(ctx: Context, problem: Problem) -> Response:
    # The rate limiter ran before this plugin: its headers go on refusals too.
    return problem_response(problem, ctx.request_id, ctx.response_headers)


_NO_BRANCH = {"loc": ["branch_id"], "msg": "required: this device was registered without a branch"}


def _known_rounding(ctx: Context) -> Callable[[str], Rounding | None] | None:
    # ERPNext's rounding of a POS Profile, if the tenant's site settings are cached already:
    # validation never waits for ERPNext (an offline upload must be taken while it is down).
    site = getattr(getattr(ctx.tenant, "poster", None), "site", None)
    return site.known_rounding if site is not None else None


def _token_branch(ctx: Context) -> str | None:
    """The branch the device registered for, as its token says (the jwt_auth plugin ran
    first); None for a device registered without one (it names its branch per sale)."""
    branch = (ctx.claims or {}).get("branch_id")
    return str(branch) if branch not in (None, "") else None


def _under(prefix: list[str], errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "loc": [*prefix, *e["loc"]]} for e in errors]


def fingerprint(payload: dict[str, Any]) -> str:
    """A stable hash of a validated payload (`model_dump()`): key order and number
    formatting (2.5 and 2.50) do not matter."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=_canonical)
    return hashlib.sha256(canonical.encode()).hexdigest()


def txn_fingerprint(kind: str, dump: dict[str, Any]) -> str:
    """A transaction's fingerprint (`type` and validated payload), the same whether it came
    through /v1/<type> or in a /sync/batch: posting records and sync jobs compare by it."""
    return fingerprint({"type": kind, "payload": dump})


def _canonical(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, date | time):  # datetime is a date
        return value.isoformat()
    raise TypeError(type(value).__name__)
