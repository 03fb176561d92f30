"""`/docs`: the OpenAPI description rendered by Swagger UI, and `/docs/errors`, the page
every problem `type` points at.

Swagger UI's files come from the swagger-ui-py package and are served by the gateway
itself: nothing is fetched from a CDN at run time (a shop's network may have no
internet, and a page that pulls third-party script is an attack surface). The pages
carry no inline script, so a strict Content-Security-Policy holds.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from edge.problems import CODES, problem_type

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pos-edge API</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""

# Relative URLs: the page works behind a reverse proxy that mounts the gateway under a prefix.
_INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout"
});
"""


def _errors_page() -> str:
    rows = "\n".join(
        f'<tr id="{code}"><td>{status}</td><td><code>{code}</code></td><td>{html.escape(title)}</td></tr>'
        for code, (status, title) in sorted(CODES.items(), key=lambda kv: (kv[1][0], kv[0])))
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pos-edge errors</title></head>
<body>
<h1>pos-edge errors</h1>
<p>Every error is RFC 9457 <code>application/problem+json</code> with a stable <code>code</code>; its
<code>type</code> is <code>{html.escape(problem_type("CODE"))}</code> on this gateway. The README's
"Errors" section says when each is answered.</p>
<table>
<thead><tr><th>status</th><th>code</th><th>title</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body>
</html>
"""


def swagger_ui_static() -> StaticFiles:
    """Swagger UI's distribution files (swagger-ui-py's package data), served as they are."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of pos-edge)")
    return StaticFiles(directory=Path(next(iter(spec.submodule_search_locations))) / "static")


# Built once at import: the pages never change while the process runs.
_ERRORS_HTML = _errors_page()


async def docs_page(request: Request) -> Response:
    """`GET /docs`: Swagger UI over `/openapi.json`."""
    return HTMLResponse(_PAGE, headers=HEADERS)


async def docs_init(request: Request) -> Response:
    """`GET /docs/init.js`: Swagger UI's start-up (a file, not inline, for the CSP)."""
    return Response(_INIT, media_type="text/javascript", headers=HEADERS)


async def errors_page(request: Request) -> Response:
    """`GET /docs/errors`: every problem code, each row the anchor of its `type` URI."""
    return HTMLResponse(_ERRORS_HTML, headers=HEADERS)
