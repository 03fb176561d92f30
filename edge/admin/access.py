"""What each admin role may do, and where.

Two questions, answered apart: may this role do this kind of action at all (else 403), and
is the target within the principal's scope (else 404: a store manager of branch A asking
for branch B, or for a terminal of B, learns nothing about B, not even that it exists)?
"""

from __future__ import annotations

from typing import Literal

from edge.admin.principals import Principal
from edge.admin.tokens import ALL_TENANTS

Action = Literal["stores.read", "stores.write", "terminals.read", "terminals.write", "audit.read"]

ALLOWED: dict[Action, frozenset[str]] = {
    "stores.read": frozenset({"operator", "company_admin", "viewer"}),
    "stores.write": frozenset({"operator", "company_admin"}),
    "terminals.read": frozenset({"operator", "company_admin", "store_manager", "viewer"}),
    "terminals.write": frozenset({"operator", "company_admin", "store_manager"}),
    "audit.read": frozenset({"operator", "company_admin"}),
}


def may(principal: Principal, action: Action) -> bool:
    """Whether the principal's role allows this kind of action."""
    return principal.role in ALLOWED[action]


def sees_tenant(principal: Principal, tenant: str) -> bool:
    """Whether the principal administers this tenant."""
    return principal.tenant in (ALL_TENANTS, tenant)


def sees_branch(principal: Principal, branch: str) -> bool:
    """Whether the branch is within the principal's scope (no branches listed: every one)."""
    return not principal.branches or branch in principal.branches
