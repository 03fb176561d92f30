"""The JSON Schema of tenants.yaml, generated from the pydantic models that validate it.

The repository carries it as tenants.schema.json, so that an editor with the YAML
language server (the example's first line names it) marks a misspelt key while the
file is written; a test fails when the committed file is stale. Regenerate with
`pos-edge config schema > tenants.schema.json` (or `python -m edge.config_schema`).

It is a help for editing, not the check: `pos-edge check` is (host conflicts,
rates, URLs and the other checks written in Python are not all in the schema).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic.json_schema import models_json_schema

from edge.config import TENANT_KEY, GatewayConfig, tenant_model

SCHEMA_FILE = "tenants.schema.json"
REGENERATE = f"pos-edge config schema > {SCHEMA_FILE}"
_REF = "#/$defs/{model}"
# `${VAR}` in place of a number or a boolean: substituted (and then validated) at load
_ENV_REFERENCE = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def schema() -> dict[str, Any]:
    """The schema of a whole tenants.yaml: gateway, defaults and tenants."""
    tenant = tenant_model()
    refs, top = models_json_schema([(GatewayConfig, "validation"), (tenant, "validation")], ref_template=_REF)
    defs: dict[str, Any] = top["$defs"]
    tenant_name = refs[(tenant, "validation")]["$ref"].rsplit("/", 1)[-1]
    gateway_ref = refs[(GatewayConfig, "validation")]["$ref"]
    defaults_name = _partial(defs, tenant_name)
    _allow_env_references(defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "pos-edge tenants.yaml",
        "description": f"Generated from pos-edge's configuration models ({REGENERATE}); "
                       "`pos-edge check` is the full check.",
        "type": "object",
        "additionalProperties": False,
        "required": ["gateway", "tenants"],
        "properties": {
            "gateway": {"$ref": gateway_ref, "description": "process-wide settings"},
            "defaults": {
                "anyOf": [{"$ref": _REF.format(model=defaults_name)}, {"type": "null"}],
                "description": "any tenant key; each tenant's entry is merged over these",
            },
            "tenants": {
                "type": "object",
                "description": "subdomain (a lower-case DNS label) -> tenant",
                "propertyNames": {"pattern": TENANT_KEY.pattern},
                "additionalProperties": {"$ref": _REF.format(model=tenant_name)},
            },
        },
        "$defs": dict(sorted(defs.items())),
    }


def text() -> str:
    """The schema as written to tenants.schema.json."""
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


def _partial(defs: dict[str, Any], name: str) -> str:
    """Add a copy of `defs[name]`, and of every model it refers to, with nothing required
    (what `defaults:` may hold: any part of a tenant); return the copy's name."""
    partial = f"{name}Defaults"
    if partial in defs:
        return partial
    body = copy.deepcopy(defs[name])
    body.pop("required", None)
    body["title"] = partial
    defs[partial] = body

    def rewrite(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = _REF.format(model=_partial(defs, ref.rsplit("/", 1)[-1]))
            for value in node.values():
                rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(body)
    return partial


def _allow_env_references(node: Any) -> None:
    """Let a number or boolean be written as `${VAR}`: the loader substitutes it before
    validating, so an editor must not mark it."""
    if isinstance(node, dict):
        for value in node.values():
            _allow_env_references(value)
        if node.get("type") in ("integer", "number", "boolean"):
            keep = {k: node.pop(k) for k in ("title", "description", "default") if k in node}
            typed = dict(node)
            node.clear()
            node.update(keep, anyOf=[typed, _ENV_REFERENCE])
    elif isinstance(node, list):
        for value in node:
            _allow_env_references(value)


if __name__ == "__main__":
    print(text(), end="")
