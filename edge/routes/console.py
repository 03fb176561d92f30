"""The admin web console (`/admin/`): three static files served by the gateway itself, no
build step and nothing fetched from elsewhere at run time. The page is a client of the
admin API; what it may do is what the API lets its admin token do. A strict Content
Security Policy allows only these files: no inline script, no other origin, no framing."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from edge.problems import Problem

FOLDER = Path(__file__).resolve().parents[1] / "admin" / "console"
TYPES = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}
# read once, at import: serving them costs no file access
PAGE = (FOLDER / "index.html").read_bytes()
FILES = {name: (FOLDER / name).read_bytes() for name in TYPES}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


async def console_page(request: Request) -> Response:
    """`GET /admin/`: the console's page."""
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=HEADERS)


async def console_redirect(request: Request) -> Response:
    """`GET /admin`: to the page (relative links need the slash)."""
    return RedirectResponse("/admin/", status_code=308)


async def console_file(request: Request) -> Response:
    """`GET /admin/static/<name>`: the console's script and style sheet."""
    name = request.path_params["name"]
    body = FILES.get(name)
    if body is None:
        raise Problem("not_found", f"no console file {name!r}")
    return Response(body, media_type=TYPES[name], headers=HEADERS)
