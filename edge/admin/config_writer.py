"""Adding a store (a branch) to tenants.yaml, when the operator allows it (`gateway.admin.
write_config`): the file stays the source of truth, so the branch is written into it, as an
admin would, and the gateway reloads it.

The file is edited as text, not dumped again: its comments, its order and its `${VAR}`
references stay as the admin wrote them. The new branch becomes one line under the tenant's
own `branches:` block, indented like its siblings, in JSON (which YAML reads as a flow
mapping: nothing in it needs YAML's quoting rules), every `$` doubled so the loader's
`${VAR}` substitution leaves what the admin sent as text. The whole new file is validated before
it is written; it replaces the old one atomically (a temporary file in the same folder,
fsynced, then renamed), under a lock file, so two admins adding stores at once do not lose
one of them.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from edge import config as config_mod
from edge import config_yaml


class ConfigUnwritable(Exception):
    """The branch cannot be written into this file automatically (the reason says why)."""


def with_branch(text: str, tenant: str, branch_id: str, branch: dict[str, Any]) -> str:
    """`text` with the branch added under `tenants.<tenant>.branches`."""
    try:
        located = config_yaml.load(text)
    except yaml.YAMLError:
        raise ConfigUnwritable("the file does not parse as YAML now") from None
    base = ("tenants", tenant, "branches")
    key_at = located.keys.get(base)
    value_at = located.values.get(base)
    if key_at is None:
        raise ConfigUnwritable(f"tenants.{tenant} has no branches: block of its own to add to")
    if (branch_id,) in {p[3:4] for p in located.keys if p[:3] == base and len(p) == 4}:
        raise ConfigUnwritable(f"tenants.{tenant}.branches.{branch_id} exists")
    siblings = [pos for path, pos in located.keys.items() if path[:3] == base and len(path) == 4]
    if value_at is None or value_at[0] == key_at[0] or not siblings:
        raise ConfigUnwritable(f"tenants.{tenant}.branches is written on one line (flow style)")
    indent = siblings[0][1] - 1
    last = max(pos[0] for path, pos in {**located.keys, **located.values}.items() if path[:3] == base)
    lines = text.splitlines(keepends=True)
    # `$$` is a literal `$` to the loader: a value can never reach into the environment
    # (`${POS_EDGE_JWT_SECRET}` sent as a warehouse must stay that text, not become the secret)
    line = " " * indent + _literal(json.dumps(branch_id)) + ": " + _literal(json.dumps(branch)) + "\n"
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.insert(last, line)
    return "".join(lines)


def _literal(text: str) -> str:
    return text.replace("$", "$$")


def add_branch(path: str, tenant: str, branch_id: str, branch: dict[str, Any]) -> None:
    """Write the branch into the file at `path`, validated whole first, atomically.
    Raises ConfigUnwritable, or ConfigError (the new file would not load)."""
    target = Path(path)
    lock_path = target.with_name(f".{target.name}.lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other processes of this gateway, and other admins
        try:
            text = target.read_text(encoding="utf-8")
            new = with_branch(text, tenant, branch_id, branch)
            config_mod.parse(new, str(target))  # the running gateway must load what it writes
            mode = target.stat().st_mode & 0o7777
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(new)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(tmp, mode)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
