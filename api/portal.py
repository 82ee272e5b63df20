"""The consortium portal: the web front built into build/portal, served at `/`.

The portal is a static single-page application that talks only to this API, from the same
origin. It is served at `/` (its page) and `/assets/` (its scripts and styles) and nowhere
else, so it never shadows an API route; client routes live in the URL's fragment
(`/#/orders/3`), which never reaches the server.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

PORTAL_DIR_ENV = "COFAB_PORTAL_DIR"
DEFAULT_PORTAL_DIR = Path(__file__).resolve().parent.parent / "build" / "portal"

# Everything the page loads comes from this origin: no CDN, no inline script.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>cofab</title>
<h1>The portal is not built</h1><p>Run <code>make portal</code> (or <code>make run</code>)
in the project, then reload. The API is served as usual: see <a href="/docs">/docs</a>.</p>
</html>"""


def portal_dir() -> Path:
    """Where the built portal is: $COFAB_PORTAL_DIR, else build/portal in the project."""
    return Path(os.environ.get(PORTAL_DIR_ENV) or DEFAULT_PORTAL_DIR)


def install(app: FastAPI) -> None:
    """Serve the portal's page at `/` and its files at `/assets/` (after the API routes)."""
    root = portal_dir()
    index = root / "index.html"

    @app.get("/", include_in_schema=False, response_model=None)
    def page() -> FileResponse | HTMLResponse:
        if not index.is_file():
            return HTMLResponse(NOT_BUILT, status_code=503, headers=_HEADERS)
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=_HEADERS)

    assets = root / "assets"
    if assets.is_dir():  # else /assets/… is a 404 like any unknown route
        app.mount("/assets", StaticFiles(directory=assets), name="portal-assets")
