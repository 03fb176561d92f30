"""Reading tenants.yaml with the position of every key and value, and no duplicate keys.

PyYAML's safe loader keeps the last of two equal keys in a mapping without a word,
so `rate_limit` written twice under a tenant silently takes the second. This loader
composes the node tree first, walks it to record where each key and value was
written (by path, so the positions survive `${VAR}` substitution, which rebuilds
the data but keeps its shape) and to find duplicate keys, and only then builds the
data exactly as `yaml.safe_load` would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[Any, ...]  # keys and list indices from the document's root
Position = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class Duplicate:
    """A key written more than once in the same mapping; `lines` in file order."""

    path: Path
    lines: tuple[int, ...]
    position: Position  # of its second occurrence: that is the one to delete or rename


@dataclass
class Located:
    """A parsed document with where each of its keys and values was written."""

    data: Any
    keys: dict[Path, Position] = field(default_factory=dict)
    values: dict[Path, Position] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)

    def position(self, path: Path, *, value: bool = False) -> Position | None:
        """Where `path` was written: its value's position if asked and known, else its
        key's; for a path not in the file (a missing key), its closest written parent."""
        if value and path in self.values:
            return self.values[path]
        while path:
            if path in self.keys:
                return self.keys[path]
            path = path[:-1]
        return None


def load(text: str) -> Located:
    """Parse one YAML document; raises yaml.YAMLError as yaml.safe_load does."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Located(None)
        located = Located(None)
        _walk(loader, node, (), located, set())
        located.data = loader.construct_document(node)
        return located
    finally:
        loader.dispose()


def _at(mark: yaml.Mark) -> Position:
    return mark.line + 1, mark.column + 1


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path, out: Located, active: set[int]) -> None:
    if id(node) in active:  # an alias to an enclosing node: a recursive structure, walked once
        return
    active.add(id(node))
    try:
        if isinstance(node, yaml.MappingNode):
            _walk_mapping(loader, node, path, out, active)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out.values.setdefault((*path, i), _at(item.start_mark))
                out.keys.setdefault((*path, i), _at(item.start_mark))
                _walk(loader, item, (*path, i), out, active)
    finally:
        active.discard(id(node))


def _walk_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, path: Path, out: Located, active: set[int]) -> None:
    seen: dict[Any, list[yaml.Mark]] = {}
    merged: list[yaml.Node] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            # `<<: *anchor` brings keys in that the mapping's own keys may override:
            # walked after them, so the positions are the ones written here.
            merged += value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            continue
        key = _key(loader, key_node)
        if key is None:
            continue
        seen.setdefault(key, []).append(key_node.start_mark)
        out.keys[(*path, key)] = _at(key_node.start_mark)
        out.values[(*path, key)] = _at(value_node.start_mark)
        _walk(loader, value_node, (*path, key), out, active)
    for key, marks in seen.items():
        if len(marks) > 1:
            out.duplicates.append(Duplicate((*path, key), tuple(m.line + 1 for m in marks), _at(marks[1])))
    for source in merged:
        if isinstance(source, yaml.MappingNode):
            for key_node, value_node in source.value:
                key = _key(loader, key_node)
                if key is not None and key not in seen:
                    out.keys.setdefault((*path, key), _at(key_node.start_mark))
                    out.values.setdefault((*path, key), _at(value_node.start_mark))
                    _walk(loader, value_node, (*path, key), out, active)


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    """The key's value as the loader will build it (`1:` is the int 1); None for a
    key that cannot be a dict key (the build reports that itself)."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    return loader.construct_object(node, deep=True)
