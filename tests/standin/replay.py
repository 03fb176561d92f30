"""Replaying exchanges recorded on the real ERPNext site against a fresh real-like stand-in site.

A recorded exchange is {id, note, request{method, path, body}, status,
response, at_utc}. The stand-in must answer with the same status, exc_type,
decoded messages (and their titles) and the recorded fields; see
Replay.compare for what is compared and what is not, and why.

Names differ between the runs (the real site had made eleven Sales Invoices
before the recording; child rows get random names): a recorded name seen in
an answer is bound to the stand-in's name at the same place, and replaced in
later requests and expected values. Time: each exchange runs with the site's
clock pinned to the moment the real site stamped (clock_for), so posting
times, today's date and the time windows of the recording hold.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from edge.standin import StandIn, StandInServer
from edge.standin.reading import parse_datetime
from edge.standin.seed_real import real_like_site

POS = Path(__file__).parents[1] / "fixtures" / "real_erpnext" / "pos"
TOPICS = ("site", "pos_invoice", "pos_closing", "returns", "rounding", "payments_time", "stock", "lists")
SITE_ZONE = ZoneInfo("Africa/Kampala")  # the recorded System Settings (site-1)
HOST, KEY, SECRET = "pos.localhost", "real-key", "real-secret"

DOC_NAME = re.compile(r"(?:ACC-SINV|ACC-PSINV|POS-OPE|POS-CLO)-\d{4}-\d{5}|PRLE-\d{4}")  # PRLE: Pricing Rules (masterdata)
ROW_NAME = re.compile(r"^[0-9a-z]{10}$")  # Frappe's hash names (child rows, merge logs)
# a site-local timestamp inside a message; compared to the second (below)
STAMP = re.compile(r"\d{4}-\d\d-\d\d \d{1,2}:\d\d:\d\d(?:\.\d+)?")
# keys that only describe the recording or Frappe's in-memory state, never the behaviour
IGNORED = frozenset({"_exc_source", "exc_excerpt", "__unsaved"})
# absent in the recorded answer means unset: the stand-in must not set it either
PRESENCE = frozenset({"consolidated_invoice"})


@dataclass(frozen=True)
class Exchange:
    """One recorded exchange, with its topic (file) and the moment it was made."""

    topic: str
    at: datetime
    data: dict[str, Any]

    @property
    def id(self) -> str:
        """The recording's id (pinv-e1...)."""
        return str(self.data["id"])


def chronology() -> list[Exchange]:
    """Every recorded exchange in the order it was made (at_utc has whole seconds; one
    without at_utc was made right after the one before it in its file)."""
    found = []
    for rank, topic in enumerate(TOPICS):
        at = ""
        for idx, ex in enumerate(json.loads((POS / f"{topic}.json").read_text())):
            at = ex.get("at_utc") or at
            found.append((at, rank, idx, Exchange(topic, datetime.fromisoformat(at.replace("Z", "+00:00")), ex)))
    return [e for *_, e in sorted(found, key=lambda t: t[:3])]


def clock_for(ex: Exchange) -> datetime:
    """When the real site handled the exchange: the posting moment it stamped on a document
    it created (posting_time, else creation, both site-local), else at_utc (whole seconds)."""
    request, data = ex.data["request"], (ex.data.get("response") or {}).get("data")
    if request["method"] == "POST" and isinstance(data, dict):
        sent = request.get("body") or {}
        stamp = (f"{data['posting_date']} {data['posting_time']}" if data.get("posting_time") and data.get("posting_date")
                 and not sent.get("set_posting_time") else data.get("creation"))
        local = parse_datetime(stamp) if stamp else None
        if local is not None:
            return local.replace(tzinfo=SITE_ZONE).astimezone(UTC)
    return ex.at


@dataclass
class Replay:
    """A fresh real-like stand-in site, its name bindings and the disagreements found."""

    site: Any = None
    server: StandInServer | None = None
    http: httpx.Client | None = None
    names: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)  # exchange id -> the stand-in's JSON answer
    quiet: bool = False  # compare only to bind names (a set-up exchange): disagreements are not kept

    def start(self) -> Replay:
        """Serve a new real-like site on a loopback port."""
        self.site = real_like_site(HOST, KEY, SECRET)
        self.server = StandInServer(StandIn([self.site]))
        self.server.start()
        self.http = httpx.Client(base_url=self.server.url, headers={"Host": HOST, "Authorization": f"token {KEY}:{SECRET}"},
                                 timeout=10)
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self.http is not None:
            self.http.close()
        if self.server is not None:
            self.server.stop()

    def clock(self, ex: Exchange) -> datetime:
        """The moment to pin the site's clock at for `ex` (see clock_for)."""
        return clock_for(ex)

    def send(self, ex: Exchange) -> httpx.Response:
        """Send the recorded request (names substituted) with the site's clock pinned."""
        instant = self.clock(ex)
        self.site.clock = lambda: instant
        request = ex.data["request"]
        body = request.get("body")
        assert self.http is not None
        return self.http.request(request["method"], self.substitute(request["path"]),
                                 json=self.substitute(body) if body is not None else None)

    # --- names ------------------------------------------------------------------------------

    def substitute(self, value: Any) -> Any:
        """`value` with every bound recorded name replaced by the stand-in's (in one pass: no chains)."""
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if not isinstance(value, str) or not self.names:
            return value
        pattern = "|".join(re.escape(n) for n in sorted(self.names, key=len, reverse=True))
        return re.sub(pattern, lambda m: self.names[m.group(0)], value)

    def bind(self, recorded: str, actual: Any, where: str) -> None:
        """Bind a recorded name to the stand-in's, or check an existing binding. Document names
        are bound one to one; child row names are not checked that way, because the real site
        renames a closing entry's rows when it submits it (close-b2 vs close-c5) and the
        stand-in keeps them."""
        if recorded in self.names:
            if self.names[recorded] != actual:
                self.fail(where, f"{recorded} is {self.names[recorded]} here, answered {actual!r}")
        elif DOC_NAME.fullmatch(recorded) and actual in self.names.values():
            self.fail(where, f"{actual!r} already stands for another recorded name than {recorded}")
        else:
            self.names[recorded] = str(actual)

    def unmapped(self, value: Any) -> list[str]:
        """Recorded document names in `value` that nothing in the replay made (they predate the recording)."""
        text = json.dumps(value)
        return sorted({n for n in DOC_NAME.findall(text) if n not in self.names})

    # --- comparing ------------------------------------------------------------------------

    def fail(self, where: str, what: str) -> None:
        """Record a disagreement (unless quiet)."""
        if not self.quiet:
            self.failures.append(f"{where}: {what}")

    def set_up(self, ex: Exchange, r: httpx.Response) -> None:
        """An exchange of another topic, replayed as set-up: its status must agree; its answer
        is compared quietly, for the names it binds."""
        if r.status_code != ex.data["status"]:
            self.fail(f"set-up {ex.topic}/{ex.id}", f"status {r.status_code} != recorded {ex.data['status']}: {r.text[:300]}")
            return
        self.quiet = True
        try:
            self.compare(ex, r)
        finally:
            self.quiet = False

    def compare(self, ex: Exchange, r: httpx.Response, *, fields: bool = True) -> None:
        """Status, error (exc_type, exception line, messages and titles), messages on a success,
        and (`fields`) every recorded field of the answer (compare_value)."""
        rec = ex.data.get("response") or {}
        where = f"{ex.topic}/{ex.id}"
        if r.status_code != ex.data["status"]:
            self.fail(where, f"status {r.status_code} != recorded {ex.data['status']}: {r.text[:400]}")
            return
        body = r.json()
        self.answers[ex.id] = body
        if "exc_type" in rec:
            if body.get("exc_type") != rec["exc_type"]:
                self.fail(where, f"exc_type {body.get('exc_type')} != recorded {rec['exc_type']}")
            # the recorder cut long exception lines: the recorded text must start the stand-in's
            if not self.same_text(rec.get("exception", ""), str(body.get("exception", "")), prefix=True):
                self.fail(where, f"exception {body.get('exception')!r} does not start as recorded {rec.get('exception')!r}")
        messages, titles = decode_messages(body)
        if messages or rec.get("_server_messages"):
            self.compare_value(rec.get("_server_messages") or [], messages, f"{where} _server_messages")
            if rec.get("_server_message_titles") and titles != rec["_server_message_titles"]:
                self.fail(where, f"titles {titles} != recorded {rec['_server_message_titles']}")
        for key in ("data", "message"):
            if key in rec and fields:
                self.compare_value(rec[key], body.get(key), f"{where} {key}")

    def compare_value(self, expected: Any, actual: Any, where: str, key: str = "", made: bool = False) -> None:
        """Recursively: dict keys the recording has (nulls may be left out), lists element by
        element, names bound, strings with names substituted and message timestamps to the
        second, numbers exactly. creation/modified only of documents the recording made
        (`made`: a document named like ACC-SINV-2026-00015, and its rows), within a second and
        a half: the real site stamps a few milliseconds apart from the pinned clock; the site's
        master data was made at setup, whose stamps mean nothing here."""
        if isinstance(expected, dict):
            if not isinstance(actual, dict):
                self.fail(where, f"expected an object, got {actual!r}")
                return
            made = made or bool(DOC_NAME.fullmatch(str(expected.get("name", ""))))
            for k, v in expected.items():
                if k in IGNORED or (k in ("creation", "modified") and not made):
                    continue
                if k not in actual:
                    if v is not None:
                        self.fail(where, f"{k} missing (recorded {v!r})")
                    continue
                self.compare_value(v, actual[k], f"{where}.{k}", k, made)
            for k in PRESENCE - expected.keys():
                if actual.get(k) is not None and "name" in expected:
                    self.fail(where, f"{k} is {actual[k]!r}, recorded unset")
        elif isinstance(expected, list):
            if not isinstance(actual, list) or len(actual) != len(expected):
                self.fail(where, f"expected {len(expected)} entries, got {actual!r}"[:600])
                return
            for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
                self.compare_value(e, a, f"{where}[{i}]", key, made)
        elif key == "name" and isinstance(expected, str) and (DOC_NAME.fullmatch(expected) or ROW_NAME.match(expected)):
            self.bind(expected, actual, where)
        elif key in ("creation", "modified") and isinstance(expected, str):
            self.compare_stamp(expected, actual, where)
        elif isinstance(expected, str):
            if not self.same_text(expected, actual):
                self.fail(where, f"{actual!r} != recorded {expected!r}")
        elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
            if not isinstance(actual, (int, float)) or abs(float(actual) - float(expected)) > 1e-9:
                self.fail(where, f"{actual!r} != recorded {expected!r}")
        elif expected != actual:
            self.fail(where, f"{actual!r} != recorded {expected!r}")

    def compare_stamp(self, expected: str, actual: Any, where: str) -> None:
        """A creation/modified stamp, site-local."""
        recorded = parse_datetime(expected)
        if recorded is None:
            return
        got = parse_datetime(actual) if isinstance(actual, str) else None
        if got is None or abs(got - recorded) > timedelta(seconds=1.5):
            self.fail(where, f"{actual!r} is not within 1.5 s of recorded {expected!r}")

    def same_text(self, expected: str, actual: Any, prefix: bool = False) -> bool:
        """Text equality once the expected text's names are bound: an unbound recorded name is
        bound to what stands in its place (a NegativeStockError names the invoice the insert
        would have made); a timestamp in a message is compared to the second."""
        if not isinstance(actual, str):
            return False
        if expected in self.names:  # a whole value naming a child row (pos_invoice_item)
            return actual == self.names[expected]
        parts, groups = [], []
        for token in re.split(f"({DOC_NAME.pattern}|{STAMP.pattern})", expected):
            if DOC_NAME.fullmatch(token) and token in self.names:
                parts.append(re.escape(self.names[token]))
            elif DOC_NAME.fullmatch(token):
                parts.append(r"([A-Z-]+-\d{4}-\d{5})")
                groups.append(token)
            elif STAMP.fullmatch(token):
                parts.append(re.escape(token.split(".")[0]) + r"(?:\.\d+)?")
            else:
                parts.append(re.escape(token))
        match = (re.match if prefix else re.fullmatch)("".join(parts), actual)
        if match is None:
            return False
        for recorded, got in zip(groups, match.groups(), strict=True):
            self.bind(recorded, got, f"text {expected[:60]!r}")
        return True


def decode_messages(body: dict[str, Any]) -> tuple[list[Any], list[str]]:
    """The messages and titles of Frappe's `_server_messages` (a JSON list of JSON objects)."""
    raw = body.get("_server_messages")
    entries = [json.loads(m) for m in json.loads(raw)] if raw else []
    return [e.get("message") for e in entries], [e.get("title", "Message") for e in entries]
