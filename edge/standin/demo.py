"""Demo data for `pos-edge demo-erpnext`, matching the example tenants.yaml."""

from __future__ import annotations

import os

from edge.standin.app import StandIn, StandInSite


def demo_standin() -> StandIn:
    """Two sites (shop1.erp.local, shop2.erp.local), each with an API user and a few records."""
    sites = []
    for shop in ("shop1", "shop2"):
        key = os.environ.get(f"{shop.upper()}_ERPNEXT_API_KEY", f"demo-{shop}-key")
        secret = os.environ.get(f"{shop.upper()}_ERPNEXT_API_SECRET", f"demo-{shop}-secret")
        site = StandInSite(f"{shop}.erp.local", users={key: (secret, f"pos-edge@{shop}.example")})
        for code, name, rate in (("COFFEE", "Coffee", 2.5), ("BREAD", "Bread", 1.2), ("MILK", "Milk 1L", 0.99)):
            site.insert("Item", {"name": code, "item_code": code, "item_name": name, "standard_rate": rate})
        site.insert("Customer", {"name": "Walk-in Customer", "customer_name": "Walk-in Customer"})
        sites.append(site)
    return StandIn(sites)
