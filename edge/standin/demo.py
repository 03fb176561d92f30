"""Demo data for `pos-edge demo-erpnext`, matching the example tenants.yaml."""

from __future__ import annotations

import os

from edge.standin.app import StandIn, StandInSite
from edge.standin.seed import seed_master_data, seed_pos

# site -> (company, suffix, POS Profile, modes of payment -> account, doctype with the txn-id Custom Field)
SHOPS = {
    "shop1": ("Shop One Ltd", "S1", "Shop One Main",
              {"Cash": "Cash - S1", "Mobile Money": "Mobile Money - S1", "Credit Card": "Card Clearing - S1"},
              "Sales Invoice"),
    "shop2": ("Shop Two Ltd", "S2", "Shop Two Front",
              {"Cash": "Cash - S2", "Mobile Money": "Mobile Money - S2"},
              "POS Invoice"),
}


def demo_standin() -> StandIn:
    """Two sites (shop1.erp.local, shop2.erp.local), each with an API user, POS reference data and master
    data (item prices on Standard Selling, two more customers, an active selling Pricing Rule)."""
    sites = []
    for shop, (company, suffix, profile, modes, txn_doctype) in SHOPS.items():
        key = os.environ.get(f"{shop.upper()}_ERPNEXT_API_KEY", f"demo-{shop}-key")
        secret = os.environ.get(f"{shop.upper()}_ERPNEXT_API_SECRET", f"demo-{shop}-secret")
        site = StandInSite(f"{shop}.erp.local", users={key: (secret, f"pos-edge@{shop}.example")})
        # a POS Invoice needs an open shift (POS Opening Entry); the gateway does not open one yet
        seed_pos(site, company, suffix=suffix, pos_profile=profile, modes_of_payment=modes, invoice_doctype=txn_doctype,
                 open_shift=txn_doctype == "POS Invoice")
        # item prices, customers and a pricing rule for the master-data sync (issue 12)
        seed_master_data(site)
        sites.append(site)
    return StandIn(sites)
