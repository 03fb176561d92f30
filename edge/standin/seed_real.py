"""A stand-in site shaped like the real ERPNext 15 site the POS facts were recorded on.

Mirrors ../shared/real-erpnext (wizard.py, masters.py) and the recorded site
documents (tests/fixtures/real_erpnext/pos/site.json): company "Shop One Ltd"
(S1) in UGX, whose smallest fraction is 0 (totals round to whole shillings),
System Settings time zone Africa/Kampala and "Banker's Rounding", customer
"Walk-in Customer", items POSHO-5KG (24000), SUGAR-1KG (5000) and SALT-1KG
(1500, never stocked), POS Profiles "Shop One Main" and "Shop One Counter",
modes of payment Cash -> "Cash - S1" and Mobile Money -> "Mobile Money - S1".
The API user is Administrator. The real ERPNext's rules that the gateway does
not meet yet are on (StandInSite strict_paid_amount, strict_closing).

Stock in "Stores - S1" is the site's as the recording began: masters.py
received 5000 of each item on 2026-11-01; 64 POSHO-5KG had been sold before
the recording (stk-c's shortfall: 1061 of 6000 wanted, after the recorded
sales and returns), so 4936 are left; what SUGAR-1KG had sold is unknown and
no recording depends on it (5000).
"""

from __future__ import annotations

from edge.standin.app import StandInSite
from edge.standin.rounding import BANKERS
from edge.standin.seed import seed_pos

COMPANY = "Shop One Ltd"
PROFILES = ("Shop One Main", "Shop One Counter")
ITEMS = (("POSHO-5KG", "Posho 5kg", 24000.0), ("SUGAR-1KG", "Sugar 1kg", 5000.0),
         ("SALT-1KG", "Salt 1kg (never stocked)", 1500.0))
STOCK = {"POSHO-5KG": 4936, "SUGAR-1KG": 5000, "SALT-1KG": 0}
MODES = {"Cash": "Cash - S1", "Mobile Money": "Mobile Money - S1"}


def real_like_site(name: str, api_key: str, api_secret: str) -> StandInSite:
    """A new site named `name` (its Host) with the real site's master data; `api_key:api_secret` is Administrator."""
    site = StandInSite(name, users={api_key: (api_secret, "Administrator")}, strict_paid_amount=True,
                       strict_closing=True)
    for profile in PROFILES:
        seed_pos(site, COMPANY, suffix="S1", pos_profile=profile, currency="UGX", customers=("Walk-in Customer",),
                 items=ITEMS, modes_of_payment=MODES, stock=STOCK, time_zone="Africa/Kampala",
                 rounding_method=BANKERS, smallest_currency_fraction=0, territory="Uganda")
    # what the setup wizard set besides (site.json)
    for doctype, docname in (("System Settings", "System Settings"), ("Global Defaults", "Global Defaults"),
                             ("Company", COMPANY)):
        site.docs[doctype][docname]["country"] = "Uganda"
    site.docs["Currency"]["UGX"]["symbol"] = "Sh"
    site.docs["Company"][COMPANY].update({"default_receivable_account": "Debtors - S1",
                                          "default_income_account": "Sales - S1"})
    return site
