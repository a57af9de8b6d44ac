"""The visitor page at / and the static files it and the dashboard use."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    # Static files keep aiohttp's ETag and Last-Modified headers; browsers revalidate them.
    app.router.add_static("/static", STATIC_DIR, follow_symlinks=False)


async def index(request: web.Request) -> web.Response:
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    # no-cache: a new release reaches phones on their next visit.
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-cache"})
