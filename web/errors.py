"""Error responses: JSON {"error": ...} for the API, an HTML page for the dashboard."""

from __future__ import annotations

import aiohttp_jinja2
import structlog
from aiohttp import web

from web.state import CONFIG

log = structlog.get_logger(__name__)

INTERNAL_ERROR = "Internal error: the request was not processed; try again later."
HTML_PREFIXES = ("/dashboard",)
# Pages may load only this server's scripts, styles and images. `blob:` is for the photo preview,
# `mediastream:` for the camera.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def wants_html(request: web.Request) -> bool:
    return request.path.startswith(HTML_PREFIXES)


def error_response(request: web.Request, status: int, message: str, headers: dict | None = None) -> web.Response:
    """Build an error response in the route's format: an HTML page under /dashboard, JSON elsewhere."""
    if wants_html(request):
        response = aiohttp_jinja2.render_template(
            "error.html", request, {"status": status, "message": message, "museum": None, "csrf_token": ""}
        )
        response.set_status(status)
        if headers:
            response.headers.update(headers)
        return response
    return json_error(status, message, headers)


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Turn every error into a response with its status; log what was not expected.

    Redirects and other non-error HTTP exceptions pass through unchanged.
    """
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG].server.max_upload_bytes
        return error_response(
            request,
            413,
            f"payload: the request body is larger than {limit:,} bytes (server.max_upload_bytes);"
            " send a smaller file",
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # aiohttp's own errors carry text like "404: Not Found"; ours carry a message for the client.
        own_message = exc.text and not exc.text.startswith(f"{exc.status}:")
        headers = {k: v for k, v in exc.headers.items() if k in ("WWW-Authenticate", "Allow")}
        message = exc.text if own_message else exc.reason
        if isinstance(exc, web.HTTPMethodNotAllowed):
            message = f"method {request.method} is not allowed for {request.path}; use {', '.join(sorted(exc.allowed_methods))}"
        return error_response(request, exc.status, message, headers)
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path)
        return error_response(request, 500, INTERNAL_ERROR)


@web.middleware
async def security_headers_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Add a content security policy to HTML pages and forbid MIME sniffing everywhere."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
