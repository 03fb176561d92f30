"""A STAND-IN for ERPNext, for tests and demos. It is not ERPNext.

It imitates the parts of Frappe's v1 REST contract that pos-edge relies on
(token auth, the `{"data": ...}` / `{"message": ...}` envelopes, error status
codes and bodies, site selection by Host / X-Frappe-Site-Name) and can be told
to be slow or to fail. For POS documents it behaves like ERPNext 15 (a subset):
Sales Invoice / POS Invoice (invoices.py), POS Closing Entry (closing.py),
Custom Field (custom_fields.py), list queries (listing.py); reference data comes
from seed.seed_pos, faults after commit from faults.py. Run it with
`pos-edge demo-erpnext`.
"""

from edge.standin.app import StandIn, StandInSite, build_app
from edge.standin.seed import seed_pos
from edge.standin.server import StandInServer

__all__ = ["StandIn", "StandInServer", "StandInSite", "build_app", "seed_pos"]
