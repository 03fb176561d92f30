"""A STAND-IN for ERPNext, for tests and demos. It is not ERPNext.

It imitates the parts of Frappe's v1 REST contract that pos-edge relies on
(token auth, the `{"data": ...}` / `{"message": ...}` envelopes, error status
codes and bodies, site selection by Host / X-Frappe-Site-Name) and can be told
to be slow or to fail. For POS documents it behaves like ERPNext 15 (a subset),
as checked against exchanges recorded on a real ERPNext 15.99 site
(tests/fixtures/real_erpnext): Sales Invoice / POS Invoice (invoices.py, with
totals.py, rounding.py, returns.py, stock.py), POS Opening Entry (opening.py),
POS Closing Entry and the consolidation it submits (closing.py,
consolidation.py), Custom Field (custom_fields.py), list queries (listing.py,
selecting.py), values read back from the database (reading.py), a site's
settings and clock (settings.py, clock.py). Reference data comes from
seed.seed_pos (seed_real.py: a site shaped like the recorded one), faults after
commit from faults.py. Run it with `pos-edge demo-erpnext`.
"""

from edge.standin.app import StandIn, StandInSite, build_app
from edge.standin.seed import seed_pos
from edge.standin.server import StandInServer

__all__ = ["StandIn", "StandInServer", "StandInSite", "build_app", "seed_pos"]
