"""`${VAR}` / `${VAR:-default}` substitution in parsed configuration trees.

Substitution happens on parsed YAML values rather than on the raw text, so a
secret containing YAML syntax (`:`, `#`, quotes) cannot change the file's shape,
and a missing variable can be reported with the path of the value that needs it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

_REF = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class MissingVariable(Exception):
    """An `${VAR}` reference whose variable is not set and has no default."""

    def __init__(self, path: str, variable: str, loc: tuple[Any, ...] = ()) -> None:
        super().__init__(f"{path}: environment variable {variable} is not set")
        self.path = path
        self.variable = variable
        self.loc = loc  # the same path as keys and indices (a key may itself hold a dot)


def substitute(
    tree: Any,
    env: Mapping[str, str] | None = None,
    path: str = "",
    defaulted: list[tuple[str, str]] | None = None,
) -> tuple[Any, list[MissingVariable]]:
    """Return `tree` with every `${VAR}` in its strings replaced from `env`.

    `$$` escapes a literal `$`. Missing variables are collected (not raised) so
    that a config check can report all of them at once. Names of variables that
    fell back to their `:-default` are appended to `defaulted` as (path, name).
    """
    env = os.environ if env is None else env
    missing: list[MissingVariable] = []

    def walk(node: Any, where: str, loc: tuple[Any, ...]) -> Any:
        if isinstance(node, str):
            before = len(missing)
            out = _substitute_str(node, env, where, missing, defaulted)
            for m in missing[before:]:
                m.loc = loc
            return out
        if isinstance(node, dict):
            return {k: walk(v, f"{where}.{k}" if where else str(k), (*loc, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{where}.{i}", (*loc, i)) for i, v in enumerate(node)]
        return node

    return walk(tree, path, ()), missing


def _substitute_str(
    value: str,
    env: Mapping[str, str],
    where: str,
    missing: list[MissingVariable],
    defaulted: list[tuple[str, str]] | None,
) -> str:
    if "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            if defaulted is not None:
                defaulted.append((where, name))
            return default
        missing.append(MissingVariable(where, name))
        return ""

    return _REF.sub(replace, value)
