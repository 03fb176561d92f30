"""Posting POS documents to one tenant's ERPNext, never twice.

Before a retry of a post whose outcome is unknown (a timeout or a connection
drop after the request was sent), ERPNext is asked whether an invoice with the
transaction's reference already exists, and that invoice is returned instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from edge.erpnext.client import ErpnextClient, FrappeError, Unreachable
from edge.erpnext.closing import Closer, NoOpenShift
from edge.erpnext.documents import invoice
from edge.erpnext.money import covers, uncovered
from edge.erpnext.returns import ReturnRefused, bind, sold_rows
from edge.erpnext.shifts import Shifts, is_no_open_shift
from edge.erpnext.site import SiteSettings
from edge.sales import Closure, Return, Sale, reference_for

CACHE_SECONDS = 600.0
DUPLICATE_ERRORS = frozenset({"UniqueValidationError", "DuplicateEntryError"})


class Rejected(Exception):
    """The sale cannot be posted as it is (ERPNext or its master data says no)."""

    def __init__(self, messages: list[str], exc_type: str | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.exc_type = exc_type

    @classmethod
    def from_erpnext(cls, exc: FrappeError) -> Rejected | None:
        """ERPNext saying no to the document itself: its 417 ValidationError family, a
        DoesNotExistError (an unknown item on create), or the 500 TypeError it raises in
        set_pos_fields for an unknown customer. Anything else is not about the document."""
        if exc.status == 417 or exc.exc_type == "DoesNotExistError" or (exc.status == 500 and exc.exc_type == "TypeError"):
            return cls(exc.messages, exc.exc_type)
        return None


class Poster:
    """Resolves master data (cached) and posts invoices for one tenant."""

    def __init__(self, client: ErpnextClient, cfg: Any) -> None:
        self.client = client
        self.cfg = cfg
        self.site = SiteSettings(client, cfg.erpnext.time_zone)
        self.shifts = Shifts(client, cfg.company or "")
        self._accounts: dict[str, tuple[float, str]] = {}
        self._customers: dict[str, float] = {}

    async def account_for(self, mode_of_payment: str) -> str:
        """The Mode of Payment's default account for the tenant's company (cached)."""
        hit = self._accounts.get(mode_of_payment)
        now = time.monotonic()
        if hit and hit[0] > now:
            return hit[1]
        doc = await self.client.get_doc("Mode of Payment", mode_of_payment)
        if doc is None:
            raise Rejected([f"Mode of Payment {mode_of_payment} does not exist in ERPNext"], "DoesNotExistError")
        for row in doc.get("accounts") or []:
            if row.get("company") == self.cfg.company and row.get("default_account"):
                self._accounts[mode_of_payment] = (now + CACHE_SECONDS, row["default_account"])
                return row["default_account"]
        raise Rejected([f"Mode of Payment {mode_of_payment} has no default account for company {self.cfg.company}"])

    async def check_customer(self, name: str) -> None:
        """ERPNext answers 500 (a TypeError in set_pos_fields) for an unknown customer: ask first (cached)."""
        now = time.monotonic()
        if self._customers.get(name, 0) > now:
            return
        if await self.client.get_doc("Customer", name) is None:
            raise Rejected([f"Customer {name} does not exist in ERPNext"], "DoesNotExistError")
        self._customers[name] = now + CACHE_SECONDS

    async def original_invoice(self, return_against: str, device: str) -> dict[str, Any]:
        """The sale a return is against: `return_against` may name the invoice or carry the
        original sale's client_txn_id (a sale of the same device: transaction ids are scoped
        per device)."""
        doctype = self.cfg.invoice_doctype
        doc = await self.client.get_doc(doctype, return_against)
        if doc is None:
            doc = await self.find_existing(reference_for(device, return_against))
        if doc is None:
            raise Rejected([f"no {doctype} named {return_against} or with that transaction id"], "DoesNotExistError")
        if int(doc.get("docstatus") or 0) != 1 or int(doc.get("is_return") or 0):
            raise Rejected([f"{doctype} {doc['name']} is not a submitted sale: nothing can be returned against it"])
        return doc

    async def document(self, payload: Sale, reference: str, device: str) -> dict[str, Any]:
        """The invoice to send, with master data resolved (and a return's lines bound to the sale's rows)."""
        bound = None
        if isinstance(payload, Return):
            original = await self.original_invoice(payload.return_against, device)
            payload = payload.model_copy(update={"return_against": original["name"]})
            sold = await sold_rows(self.client, self.cfg.invoice_doctype, original)
            lines = [(self.cfg.item_codes.get(i.item_code, i.item_code), i.qty, i.rate) for i in payload.items]
            try:
                bound = bind(original["name"], sold, lines)
            except ReturnRefused as exc:
                raise Rejected(exc.messages, "ReturnRefused") from None
        customer = payload.customer or self.cfg.default_customer
        await self.check_customer(customer)
        rounding = await self.site.rounding(self.cfg.branches[payload.branch_id].pos_profile)
        if bound is None and not self.cfg.allow_credit_sales and not covers(payload.paid(), payload.expected_total(),
                                                                           rounding):
            raise Rejected([uncovered(payload.paid(), payload.expected_total(), rounding)], "PaymentsDoNotCover")
        accounts = {}
        for p in payload.payments:
            mop = self.cfg.payment_methods[p.method]
            if mop not in accounts:
                accounts[mop] = await self.account_for(mop)
        doc = invoice(payload, self.cfg, reference, accounts, customer, bound)
        if rounding is not None:
            # The POS Profile's switch reaches an invoice only through the desk's form, not a REST
            # insert (tests/fixtures/real_erpnext/pos/rounding.json): send it as the profile says.
            doc["disable_rounded_total"] = int(rounding.disabled)
        return doc

    async def find_existing(self, reference: str) -> dict[str, Any] | None:
        """The invoice carrying `reference` in the tenant's reference field, if ERPNext has one."""
        rows = await self.client.find(
            self.cfg.invoice_doctype, [[self.cfg.reference_field, "=", reference]], ["name"], limit=1
        )
        if not rows:
            return None
        return await self.client.get_doc(self.cfg.invoice_doctype, rows[0]["name"])

    async def post(
        self, payload: Sale, reference: str, device: str, *, check_first: bool = False,
        before_send: Callable[[], Awaitable[None]] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Create and submit the invoice; returns (document, created_now).

        `check_first`: an earlier attempt's outcome is unknown, so look before posting.
        Within one call nothing is posted twice: after a failure that may have
        reached ERPNext (a timeout, a drop after sending, a 502/503/504 from a proxy
        in front of it) the reference is looked up once, and if the invoice is not
        (yet) there the answer is Unreachable(sent=True), "outcome unknown": ERPNext
        may still be committing it, and only a later request, looking first, may
        post again. Raises Rejected when ERPNext (or its master data) says no.
        `before_send` runs right before each insert is sent (and may raise to stop it).
        """
        doc = await self.document(payload, reference, device)
        if check_first:
            existing = await self.look_up(reference)
            if existing is not None:
                return existing, False
        shift_opened = False
        for attempt in range(3):
            if before_send is not None:
                await before_send()
            try:
                return await self.client.insert(self.cfg.invoice_doctype, doc), True
            except Unreachable as exc:
                if not exc.sent and attempt == 0:
                    continue  # never reached ERPNext: one more try is safe
                if not exc.sent:
                    raise
                existing = await self.look_up(reference)
                if existing is not None:
                    return existing, False
                raise
            except FrappeError as exc:
                if exc.exc_type in DUPLICATE_ERRORS:
                    # The reference field is unique (UniqueValidationError, 417, in
                    # Frappe; DuplicateEntryError, 409, for a clashing name): an
                    # earlier attempt got through. Answer with that invoice.
                    existing = await self.look_up(reference)
                    if existing is not None:
                        return existing, False
                if exc.exc_type is None and exc.status in (502, 503, 504):
                    # A proxy in front of ERPNext answered: the insert may have run.
                    existing = await self.look_up(reference)
                    if existing is not None:
                        return existing, False
                    raise Unreachable(f"ERPNext's proxy answered {exc.status}", sent=True, timeout=exc.status == 504) from None
                if exc.status == 417 and is_no_open_shift(exc.messages) and not shift_opened:
                    # Refused, so nothing was booked: open the branch's shift (as a till that knows
                    # nothing of shifts expects) and send the same invoice again, once.
                    if not self.cfg.auto_open_shift:
                        raise Rejected([f"{exc.messages[0]}: open the shift first (POST /v1/opening)"],
                                       exc.exc_type) from None
                    await self.open_shift(doc["pos_profile"], {})
                    shift_opened = True
                    continue
                rejected = Rejected.from_erpnext(exc)
                if rejected is not None:
                    raise rejected from None
                raise
        raise Unreachable("ERPNext could not be reached", sent=False, timeout=False)

    async def open_shift(self, pos_profile: str, balances: dict[str, Decimal],
                         start: datetime | None = None) -> tuple[dict[str, Any], bool]:
        """The branch's open POS Opening Entry, or a new one (now, or at `start`, in site time)."""
        user = await self.site.user()
        if user is None:
            raise Rejected(["the API user's name cannot be read (frappe.auth.get_logged_user): a POS Opening Entry "
                            "needs it"])
        when = start if start is not None else await self.site_now()
        modes = balances or {mop: Decimal(0) for mop in dict.fromkeys(self.cfg.payment_methods.values())}
        return await self.shifts.open_shift(pos_profile, user, when, modes)

    async def site_now(self) -> datetime:
        """Now, in the site's time zone (naive, as ERPNext writes datetimes); UTC if unknown."""
        zone = await self.site.time_zone()
        return datetime.now(zone or UTC).replace(tzinfo=None)

    async def look_up(self, reference: str) -> dict[str, Any] | None:
        """The invoice carrying `reference`, looked for because an attempt's outcome is
        unknown. A failed look-up leaves it unknown: Unreachable(sent=True), never "not posted"."""
        try:
            return await self.find_existing(reference)
        except (FrappeError, Unreachable) as exc:
            timeout = isinstance(exc, Unreachable) and exc.timeout
            raise Unreachable(f"outcome unknown and the look-up failed: {exc}", sent=True, timeout=timeout) from None

    async def close(self, closure: Closure, reference: str) -> dict[str, Any]:
        """ERPNext's per-method totals for the period; for POS Invoice tenants, the POS
        Closing Entry of the branch's shift (closing.Closer)."""
        try:
            return await Closer(self.client, self.cfg, self.site, self.shifts).close(closure, reference)
        except NoOpenShift as exc:
            raise Rejected([str(exc)], "NoOpenShift") from None
        except FrappeError as exc:
            rejected = Rejected.from_erpnext(exc)
            if rejected is not None:
                raise rejected from None
            raise

