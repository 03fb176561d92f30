"""ERPNext credential injection: `Authorization: token <api_key>:<api_secret>`.

The till's own Authorization and Cookie headers are removed by the upstream
header filter before this header is added, so they never reach ERPNext.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel
from starlette.responses import Response

from edge.chain import Context, Services


class CredentialsPlugin:
    """Adds the tenant's ERPNext API token to the upstream request."""

    name: ClassVar[str] = "credentials"
    priority: ClassVar[int] = 100

    class Config(BaseModel):
        """Credentials live under the tenant's `erpnext:` key (api_key, api_secret)."""

    def __init__(self, config: Any, services: Services) -> None:
        erp = config.erpnext
        # Built once at load: the secret is only ever in this header value.
        self._header = (
            "authorization",
            f"token {erp.api_key.get_secret_value()}:{erp.api_secret.get_secret_value()}",
        )

    async def on_request(self, ctx: Context) -> Response | None:
        ctx.upstream_headers.append(self._header)
        return None
