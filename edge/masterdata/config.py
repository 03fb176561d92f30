"""`tenants.<key>.masterdata`: what tills get from the tenant's ERPNext, and how fresh."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# A Frappe fieldname: what a custom field may be called (no SQL, no child-table dots)
FIELDNAME = re.compile(r"^[a-z][a-z0-9_]{0,139}$")


class CustomerSelection(BaseModel):
    """Which customers tills get (a shop may have hundreds of thousands)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    groups: list[str] = Field(default_factory=list, description="only customers of these customer groups; [] = any")
    loyalty_only: bool = Field(default=False, description="only customers enrolled in a loyalty program")


class MasterdataConfig(BaseModel):
    """Master data for tills: cached in the gateway's store, refreshed from ERPNext."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    freshness: float = Field(default=60.0, ge=1, le=86400,
                             description="seconds cached master data is served before ERPNext is asked for changes")
    refresh_wait: float = Field(default=5.0, ge=0, le=60,
                                description="seconds a request waits for a due refresh before it is answered from "
                                            "the cache, marked stale")
    page_size: int = Field(default=500, ge=10, le=5000, description="rows per page to tills (`next` links the rest)")
    read_page: int = Field(default=500, ge=2, le=5000,
                           description="rows per ERPNext list call while refreshing (smaller for a slow ERPNext)")
    item_fields: list[str] = Field(default_factory=list,
                                   description="extra Item fields tills get (e.g. custom fields), by fieldname")
    customer_fields: list[str] = Field(default_factory=list, description="extra Customer fields tills get")
    customers: CustomerSelection = Field(default_factory=CustomerSelection, description="which customers tills get")

    @field_validator("item_fields", "customer_fields")
    @classmethod
    def _fieldnames(cls, names: list[str]) -> list[str]:
        for name in names:
            if not FIELDNAME.match(name):
                raise ValueError(f"{name!r} is not a fieldname (lower-case letters, digits and _)")
        return names
