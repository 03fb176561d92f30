"""The plugins shipped with pos-edge, in their default order (by priority)."""

from __future__ import annotations

from edge.chain import Plugin
from plugins.credentials import CredentialsPlugin
from plugins.jwt_auth import JwtAuthPlugin
from plugins.normalise import NormalisePlugin
from plugins.rate_limit import RateLimitPlugin
from plugins.tenant import TenantPlugin

# mypy reads each plugin's nested `class Config` as a read-only attribute, not the ClassVar
# the Plugin protocol names, so it cannot match them; the classes do satisfy it at run time.
DEFAULT_PLUGINS: tuple[type[Plugin], ...] = (  # type: ignore[assignment]
    TenantPlugin, JwtAuthPlugin, RateLimitPlugin, NormalisePlugin, CredentialsPlugin)

__all__ = ["DEFAULT_PLUGINS", "CredentialsPlugin", "JwtAuthPlugin", "NormalisePlugin", "RateLimitPlugin", "TenantPlugin"]
