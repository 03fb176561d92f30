"""The effective configuration as an admin reads it: what `pos-edge config show` prints.

Each tenant is shown with the `defaults:` section already merged in and every default
filled, so "which timeout does shop2 really get?" has one answer. Secrets never
appear: SecretStr fields dump masked, and passwords inside connection URLs are cut.
"""

from __future__ import annotations

from typing import Any

import yaml

from edge.config import LoadedConfig
from edge.store import redacted

MASK = "**********"
URL_FIELDS = frozenset({"store", "rate_limit_storage"})


def _masked(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    if key in URL_FIELDS and isinstance(value, str):
        return redacted(value)
    return value


def effective(cfg: LoadedConfig) -> str:
    """The validated config as YAML: gateway, then each tenant in full; secrets masked."""
    # mode="json" turns SecretStr into its mask and networks/URLs into text
    data = {
        "gateway": cfg.gateway.model_dump(mode="json"),
        "tenants": {key: tenant.model_dump(mode="json") for key, tenant in cfg.tenants.items()},
    }
    return yaml.safe_dump(_masked(data), sort_keys=False, allow_unicode=True)
