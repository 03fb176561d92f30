"""Fixtures of the master data and event tests: a stand-in site of their own and a gateway
on each store, to which each test adds a tenant of its own (tests.routes.md_shop.Shop)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from edge.standin import StandIn, StandInServer, StandInSite
from edge.standin.seed import seed_pos
from tests.conftest import Gateway, base_config, start_gateway
from tests.routes.md_shop import COMPANY, KEY, SECRET, SITE


@pytest.fixture(scope="module")
def md_server() -> Iterator[StandInServer]:
    site = StandInSite(SITE, users={KEY: (SECRET, "api@md.test")})
    seed_pos(site, COMPANY, suffix="MD", pos_profile="MD Main", invoice_doctype="Sales Invoice", items=())
    server = StandInServer(StandIn([site]))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def md_gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, md_server: StandInServer) -> Iterator[Gateway]:
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    tmp = tmp_path_factory.mktemp(f"md-{request.param}")
    cfg = base_config(tmp, md_server.url, store=request.param)
    cfg["tenants"] = {}
    gateway = start_gateway(tmp, cfg)
    yield gateway
    gateway.stop()
