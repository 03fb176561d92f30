"""README's configuration reference is the schema's, key for key."""

from __future__ import annotations

from pathlib import Path

from edge.config_reference import END, START, rows, table

README = Path(__file__).parents[1] / "README.md"


def test_readme_table_matches_the_schema() -> None:
    text = README.read_text()
    assert START in text and END in text, "README lost its config-reference markers"
    current = text[text.index(START):text.index(END) + len(END)]
    assert current == table(), "README's config reference is stale: run python -m edge.config_reference"


def test_every_key_is_explained() -> None:
    keys = [k for k, _, _ in rows()]
    assert len(keys) == len(set(keys))
    assert {"gateway.jwt.secret", "gateway.sync.max_attempts", "tenants.<key>.erpnext.url",
            "tenants.<key>.rate_limit", "tenants.<key>.branches.<name>.warehouse"} <= set(keys)
    unexplained = [k for k, _, meaning in rows() if not meaning]
    assert unexplained == []
