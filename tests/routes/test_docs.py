"""`/docs` (Swagger UI, served by the gateway itself) and `/docs/errors`, where every
problem `type` points. Over a real socket, against `pos-edge serve`."""

from __future__ import annotations

import re
from urllib.parse import urljoin

from edge.problems import CODES
from tests.conftest import Gateway
from tests.routes.test_erpnext import assert_problem


def test_docs_page_and_its_files_come_from_the_gateway(gateway: Gateway) -> None:
    page = gateway.http.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "<script>" not in page.text  # no inline script: the CSP holds
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(not a.startswith(("http:", "https:", "//")) for a in assets), assets  # no CDN
    for asset in assets:
        r = gateway.http.get(urljoin(str(gateway.http.base_url) + "/docs", asset))
        assert r.status_code == 200, (asset, r.status_code)
        assert len(r.content) > 100, asset
    init = gateway.http.get("/docs/init.js")
    assert init.headers["content-type"].startswith("text/javascript")
    spec_url = re.search(r'url: "([^"]+)"', init.text)
    assert spec_url is not None
    spec = gateway.http.get(urljoin(str(gateway.http.base_url) + "/docs", spec_url.group(1)))
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.1")
    bundle = gateway.http.get("/docs/static/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text[:200_000] or "SwaggerUIBundle" in bundle.text
    assert gateway.http.get("/docs/static/../../edge/app.py").status_code == 404


def test_every_problem_type_resolves_to_its_row(gateway: Gateway) -> None:
    problem = assert_problem(gateway.http.get("/no/such/route", headers={"Host": "shop1.tillking.test"}), 404,
                             "not_found")
    path, _, anchor = problem["type"].partition("#")
    assert anchor == "not_found"
    page = gateway.http.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = dict(re.findall(r'<tr id="([a-z_]+)"><td>(\d{3})</td>', page.text))
    assert rows == {code: str(status) for code, (status, _) in CODES.items()}


def test_the_readme_error_table_names_every_code() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = readme[readme.index("## Errors"):readme.index("## Security")]
    documented = set(re.findall(r"`([a-z_]+)`", table))
    assert set(CODES) <= documented, set(CODES) - documented
