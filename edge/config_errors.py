"""Config errors a shop admin can act on: where in the file, which key, what to write.

pydantic reports an error at the model's location with its own wording ("Value
error, ...", "Extra inputs are not permitted"). This module turns that into
`tenants.yaml:14:5: tenants.shop1.erpnext.timout: unknown key; did you mean
'timeout'?`: the line and column come from edge.config_yaml, the suggestion from
the field names of the model at that location.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

Loc = tuple[Any, ...]

# ctx key naming the field (dotted, relative to the model) a model-level check is about
FIELD_CTX = "field"
# pydantic's prefixes for an exception raised inside a validator: noise to an admin
_PREFIXES = ("Value error, ", "Assertion failed, ")


class Issue(tuple):
    """One error: a (path, message) pair, as ConfigError always held, that also knows
    the line and column it was written at (None when it is not in the file)."""

    line: int | None
    column: int | None

    def __new__(cls, path: str, message: str, line: int | None = None, column: int | None = None) -> Issue:
        self = super().__new__(cls, (path, message))
        self.line, self.column = line, column
        return self

    @property
    def path(self) -> str:
        """The dotted path of the key, as written in the file."""
        return self[0]

    @property
    def message(self) -> str:
        """What is wrong, and what to write instead where that is known."""
        return self[1]


@dataclass
class ConfigError(Exception):
    """A tenants.yaml that cannot be used; `errors` are (path, message) pairs, each an
    Issue with its line and column where the loader knew them."""

    source: str
    errors: list[tuple[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per error, `source:line:col: path: message` (the form editors and
        terminals turn into a link to the place); what `check` prints and reload logs."""
        out = []
        for error in self.errors:
            path, message = error
            line, column = getattr(error, "line", None), getattr(error, "column", None)
            where = f"{self.source}:{line}:{column}" if line is not None else self.source
            out.append(f"{where}: {path}: {message}" if path else f"{where}: {message}")
        return out

    def __str__(self) -> str:
        return "\n".join([f"{self.source}: {len(self.errors)} error(s)", *self.lines()])


def field_error(name: str, message: str) -> PydanticCustomError:
    """An error for a model validator to raise about one of its fields (dotted, relative
    to the model): reported at that field's path and line, not the model's."""
    return PydanticCustomError("config_field", "{message}", {FIELD_CTX: name, "message": message})


@dataclass(frozen=True)
class Found:
    """A validation error located in the document: `value` says whether the value's
    position (a bad value) or the key's (an unknown or missing key) is the one to show."""

    loc: Loc
    message: str
    value: bool
    kind: str


def from_validation(exc: ValidationError, model: type[BaseModel]) -> list[Found]:
    """pydantic's errors for `model`, with locations moved to the field a model-level
    check names, admin wording, and a "did you mean" for a misspelt key."""
    out = []
    # Only location and message: pydantic's `input` could echo a secret.
    for e in exc.errors(include_input=False, include_url=False):
        loc: Loc = tuple(e["loc"])
        ctx = e.get("ctx") or {}
        message = e["msg"]
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        kind = e["type"]
        if kind == "config_field":
            # list indices in the dotted name are ints, as in pydantic's own locations
            loc += tuple(int(p) if p.isdigit() else p for p in str(ctx[FIELD_CTX]).split("."))
        if kind == "extra_forbidden":
            message = unknown_key(loc[-1], fields_at(model, loc[:-1]))
        out.append(Found(loc, message, value=kind not in ("extra_forbidden", "missing"), kind=kind))
    return out


def unknown_key(key: Any, known: list[str]) -> str:
    """'unknown key', with the closest known key when one is close enough to be a typo."""
    close = difflib.get_close_matches(str(key), known, n=1) if known else []
    return f"unknown key; did you mean {close[0]!r}?" if close else "unknown key"


def fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """Field names of the model found at `loc` under `model` (list indices and mapping
    keys stepped over); empty when `loc` leads to no model."""
    current: Any = model
    steps = list(loc)
    while steps:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        info = current.model_fields.get(steps.pop(0))
        if info is None:
            return []
        current = info.annotation
        # list[X] and dict[K, X] take one more step (the index or key) to reach X
        while True:
            current = _without_none(current)
            origin = typing.get_origin(current)
            if origin in (list, dict) and steps:
                current = typing.get_args(current)[-1]
                steps.pop(0)
                continue
            break
    current = _without_none(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


class Collector:
    """Gathers errors by location while a document is validated, then places each at
    its line and column and reports each (location, message) once."""

    def __init__(self, positions: Any) -> None:
        self._positions = positions  # an edge.config_yaml.Located, or None before parsing
        self._found: list[tuple[Loc, str, bool]] = []

    def add(self, loc: Loc, message: str, *, value: bool = False) -> None:
        """An error at `loc`; `value`: show the value's position rather than the key's."""
        self._found.append((loc, message, value))

    def extend(self, found: list[Found], prefix: Loc) -> None:
        """Validation errors of a model that was given the data at `prefix`."""
        for f in found:
            self.add((*prefix, *f.loc), f.message, value=f.value)

    def drop_under(self, locs: set[Loc], keep: str) -> None:
        """Forget errors at or under any of `locs` unless their message starts with `keep`."""
        self._found = [f for f in self._found if f[1].startswith(keep)
                       or not any(f[0][:len(u)] == u for u in locs)]

    def issues(self) -> list[Issue]:
        """The errors, each once, in the order they appear in the file."""
        out: list[Issue] = []
        seen: set[tuple[Loc, str]] = set()
        for loc, message, value in self._found:
            if (loc, message) in seen:
                continue
            seen.add((loc, message))
            at = self._positions.position(loc, value=value) if self._positions is not None else None
            out.append(Issue(".".join(str(p) for p in loc), message, *(at or (None, None))))
        # stable: errors at the same place keep the order they were found in
        return sorted(out, key=lambda i: (i.line or 0, i.column or 0))


def written_in_defaults(loc: Loc, own: Any, defaults: Any) -> bool:
    """Whether the key at `loc` of a tenant's merged entry came from `defaults:` rather
    than the tenant's own entry (deep merge: a mapping key the tenant does not write is
    the default's; a list or scalar the tenant writes replaces the default's whole)."""
    for part in loc:
        if isinstance(own, dict) and part in own:
            own = own[part]
            defaults = defaults.get(part) if isinstance(defaults, dict) else None
            continue
        return isinstance(own, dict) and isinstance(defaults, dict) and part in defaults
    return False
