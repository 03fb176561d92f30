"""The plugins shipped with pos-edge, in their default order (by priority)."""

from __future__ import annotations

from plugins.credentials import CredentialsPlugin
from plugins.jwt_auth import JwtAuthPlugin
from plugins.normalise import NormalisePlugin
from plugins.rate_limit import RateLimitPlugin
from plugins.tenant import TenantPlugin

DEFAULT_PLUGINS = (TenantPlugin, JwtAuthPlugin, RateLimitPlugin, NormalisePlugin, CredentialsPlugin)

__all__ = ["DEFAULT_PLUGINS", "CredentialsPlugin", "JwtAuthPlugin", "NormalisePlugin", "RateLimitPlugin", "TenantPlugin"]
