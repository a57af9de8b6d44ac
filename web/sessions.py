"""Dashboard sessions in encrypted cookies, and CSRF tokens for every form.

The cookie holds only the museum id and the CSRF token, encrypted and authenticated with
Fernet (AES-128-CBC with HMAC-SHA256), so a client can neither read nor forge it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

import structlog
from aiohttp import web
from aiohttp_session import get_session, new_session, setup as setup_session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from pain_actors.config import ConfigError, ServerSettings

log = structlog.get_logger(__name__)

COOKIE_NAME = "pain_session"
CSRF_FIELD = "csrf_token"


def session_key(settings: ServerSettings) -> bytes:
    """Return the configured Fernet key, or a random one when none is configured.

    Raises ConfigError when server.session_secret is set but is not 32 bytes in URL-safe base64.
    """
    if not settings.session_secret:
        log.warning(
            "session_secret_missing",
            detail="dashboard logins end when the server restarts; set PAIN_SERVER_SESSION_SECRET",
        )
        return Fernet.generate_key()
    try:
        raw = base64.urlsafe_b64decode(settings.session_secret.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ConfigError(
            "server.session_secret must be 32 random bytes in URL-safe base64 (44 characters); generate one with"
            ' python -c "import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        )
    return settings.session_secret.encode()


def setup_sessions(app: web.Application, settings: ServerSettings) -> None:
    storage = EncryptedCookieStorage(
        Fernet(session_key(settings)),
        cookie_name=COOKIE_NAME,
        max_age=settings.session_max_age,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    setup_session_middleware(app, storage)


async def csrf_token(request: web.Request) -> str:
    """Return the session's CSRF token, created on first use."""
    session = await get_session(request)
    token = session.get(CSRF_FIELD)
    if not token:
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


async def check_csrf(request: web.Request, submitted: str | None) -> None:
    """Raise 403 unless the submitted form token equals the session's token."""
    session = await get_session(request)
    expected = session.get(CSRF_FIELD)
    if not expected or not submitted or not hmac.compare_digest(str(submitted).encode(), str(expected).encode()):
        log.warning("csrf_rejected", path=request.path, session_has_csrf_value=bool(expected))
        raise web.HTTPForbidden(
            text="csrf_token: missing or invalid; reload the page and submit the form again"
        )


async def current_museum(request: web.Request) -> str | None:
    session = await get_session(request)
    return session.get("museum")


async def log_in(request: web.Request, museum_id: str) -> None:
    """Start a fresh session for the museum, with a new CSRF token (prevents session fixation)."""
    session = await new_session(request)
    session["museum"] = museum_id
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


async def log_out(request: web.Request) -> None:
    session = await get_session(request)
    session.invalidate()
