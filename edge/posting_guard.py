"""Exactly-once posting of a till's sale or return, guarded by the gateway's store.

ERPNext's unique index on the reference field is one guard; this is the other, and
the only one where the field is not unique (`po_no`, or a Custom Field made without
`unique`). Every posting of a transaction, from /v1 (under any Idempotency-Key) or
from a sync worker, first claims its reference (`<device>/<client_txn_id>`) in the
store (Store.claim_posting):

- nobody has it: post;
- posted already with the same payload: answer with that invoice, post nothing;
- posted (or being posted) with another payload: ReferenceConflict, never a second sale;
- another live attempt holds it: PostingBusy;
- an earlier attempt's outcome is unknown (a timeout, a dropped answer, a holder that
  died): look it up in ERPNext. Found: that invoice. Not found, on a unique field:
  post (the index refuses a duplicate). Not found, on a field that is not unique:
  ERPNext may still be committing the earlier attempt, so nothing is posted until
  `erpnext.commit_grace` (longer than ERPNext's own request timeout) has passed since
  that attempt, and a look-up made after it finds nothing (OutcomeUnknown says when).

While the posting runs its claim is renewed, so the lease can be short and a dead
holder's claim is taken over within seconds.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge.config import GatewayConfig
from edge.erpnext.client import FrappeError, Unreachable
from edge.erpnext.posting import Rejected
from edge.erpnext.setup import ReferenceFields
from edge.leases import renewing
from edge.sales import Sale
from edge.store.base import SettleOutcome, Store


class ReferenceConflict(Exception):
    """The reference was posted (or is being posted) with another payload."""

    def __init__(self, reference: str, invoice: str | None) -> None:
        super().__init__(reference)
        self.reference = reference
        self.invoice = invoice


class PostingBusy(Exception):
    """Another live attempt is posting this reference now."""


class ClaimLost(PostingBusy):
    """This attempt's claim ran out and another attempt took it over: nothing was sent."""


class OutcomeUnknown(Exception):
    """An earlier attempt may still be committing in ERPNext: nothing is posted before `retry_at`."""

    def __init__(self, reference: str, retry_at: float) -> None:
        super().__init__(reference)
        self.reference = reference
        self.retry_at = retry_at


@dataclass(frozen=True)
class Posted:
    """The transaction's invoice: `doc` is ERPNext's document (None when the store already
    knew the invoice and the caller did not ask for the document)."""

    invoice: str
    doc: dict[str, Any] | None
    created: bool


class PostingGuard:
    """Claims, posts and settles one reference at a time (see the module docstring)."""

    def __init__(self, store: Store, references: ReferenceFields, gateway: Callable[[], GatewayConfig], log: Any) -> None:
        self.store = store
        self.references = references
        self._gateway = gateway  # the serving config's `gateway:` (a reload may change the lease)
        self.log = log

    @staticmethod
    def ttl(gw: GatewayConfig) -> float:
        """How long a posting record is kept: as long as an idempotency record or a synced
        job, so that a retry through either path still finds it."""
        return float(max(gw.idempotency_ttl, gw.sync.retention))

    async def post(self, tenant: Any, payload: Sale, reference: str, device: str, fingerprint: str, owner: str, *,
                   check_first: bool = False, want_doc: bool = True) -> Posted:
        """Post `payload` under `reference` at most once. Raises ReferenceConflict,
        PostingBusy, OutcomeUnknown, and the Poster's Rejected / Unreachable / FrappeError."""
        key, poster = tenant.key, tenant.poster
        gw = self._gateway()
        lease, ttl = gw.claim_lease, self.ttl(gw)
        result, record = await self.store.claim_posting(key, reference, fingerprint, owner, time.time(), lease, ttl)
        if result == "posted":
            assert record is not None and record.invoice
            doc = None
            if want_doc:
                try:
                    doc = await poster.client.get_doc(tenant.config.invoice_doctype, record.invoice)
                except (FrappeError, Unreachable) as exc:  # posted all the same: answer without ERPNext's figures
                    self.log.warning("posted_invoice_unreadable", invoice=record.invoice, error=type(exc).__name__)
            return Posted(record.invoice, doc, False)
        if result == "conflict":
            raise ReferenceConflict(reference, record.invoice if record else None)
        if result == "busy":
            raise PostingBusy(reference)
        since = record.unknown_since if result == "taken_over" and record else 0.0
        # How the claim is settled: "unknown since" the last moment an insert may have been
        # sent, "not_posted" when nothing of this transaction can be in ERPNext.
        outcome: SettleOutcome = "unknown" if since else "not_posted"
        invoice: str | None = None
        unknown_since = since
        sending = False
        renew = functools.partial(self.store.renew_posting, key, reference, owner)
        async with renewing(renew, lease, self.log, tenant=key, reference=reference):
            try:
                if result == "taken_over" and not self.references.unique(key):
                    existing = await poster.look_up(reference)
                    if existing is not None:
                        outcome, invoice = "posted", str(existing["name"])
                        return Posted(invoice, existing, False)
                    grace_end = since + tenant.config.erpnext.commit_grace
                    if time.time() < grace_end:
                        self.log.info("posting_waits_for_grace", reference=reference, retry_at=round(grace_end, 3))
                        raise OutcomeUnknown(reference, grace_end)
                    check_first = False  # just looked, after the grace: the earlier attempt is not there
                elif result == "taken_over":
                    check_first = True  # a unique field: look, then post (the index refuses a duplicate)
                sending = True
                doc, created = await poster.post(payload, reference, device, check_first=check_first,
                                                 before_send=functools.partial(self._fence, renew, lease, reference))
                outcome, invoice = "posted", str(doc["name"])
                return Posted(invoice, doc, created)
            except BaseException as exc:
                if sending and _may_have_reached_erpnext(exc):
                    outcome, unknown_since = "unknown", time.time()
                elif sending:
                    outcome = "not_posted"
                raise
            finally:
                await asyncio.shield(self._settle(key, reference, owner, outcome, invoice, unknown_since, ttl))

    @staticmethod
    async def _fence(renew: Callable[[float], Awaitable[bool]], lease: float, reference: str) -> None:
        """Right before an insert is sent: still the holder? A holder whose lease ran out
        (a stalled store, a paused process) may have been taken over, and must not send."""
        try:
            held = await renew(time.time() + lease)
        except Exception:  # the store cannot say: never send unguarded
            held = False
        if not held:
            raise ClaimLost(reference)

    async def _settle(self, tenant: str, reference: str, owner: str, outcome: SettleOutcome, invoice: str | None,
                      unknown_since: float, ttl: float) -> None:
        try:
            settled = await self.store.settle_posting(tenant, reference, owner, outcome, invoice=invoice,
                                                      unknown_since=unknown_since, now=time.time(), ttl=ttl)
        except Exception as exc:  # the claim's lease runs out; the next attempt looks first
            self.log.error("posting_record_failed", tenant=tenant, reference=reference, outcome=outcome,
                           error=type(exc).__name__, detail=str(exc)[:200])
            return
        if not settled:
            self.log.warning("posting_claim_lost", tenant=tenant, reference=reference, outcome=outcome)


def _may_have_reached_erpnext(exc: BaseException) -> bool:
    """Whether a posting that failed so may have been committed all the same."""
    if isinstance(exc, Rejected | ClaimLost):  # refused by ERPNext (or its master data); or never sent
        return False
    if isinstance(exc, Unreachable):
        return exc.sent
    if isinstance(exc, FrappeError):
        return exc.status >= 500
    return True  # cancelled or broken mid-posting
