"""A site's clock: Frappe's now()/nowdate()/nowtime() are the site's local time.

Frappe converts the server's clock to System Settings.time_zone before it
stamps creation/modified or an invoice's posting date and time (recorded:
a client's 19:39:18Z became posting_time 22:39:18.624864 on an Africa/Kampala
site). Each StandInSite has a `clock` returning an aware UTC instant, the
real time unless a test pins it; without a time zone the machine's zone is used.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from edge.standin.settings import time_zone

if TYPE_CHECKING:
    from edge.standin.app import StandInSite


def utc_now() -> datetime:
    """The real time, as an aware UTC datetime (the default clock of a site)."""
    return datetime.now(UTC)


def local_now(site: StandInSite) -> datetime:
    """The site's local time, naive (as Frappe's now_datetime())."""
    zone = time_zone(site)
    instant = site.clock()
    return (instant.astimezone(ZoneInfo(zone)) if zone else instant.astimezone()).replace(tzinfo=None)


def now_text(site: StandInSite) -> str:
    """frappe.utils.now(): 'YYYY-MM-DD HH:MM:SS.ffffff', site-local."""
    return local_now(site).strftime("%Y-%m-%d %H:%M:%S.%f")


def nowtime_text(site: StandInSite) -> str:
    """frappe.utils.nowtime(): 'HH:MM:SS.ffffff', site-local."""
    return local_now(site).strftime("%H:%M:%S.%f")


def today(site: StandInSite) -> date:
    """frappe.utils.nowdate() as a date, site-local."""
    return local_now(site).date()
