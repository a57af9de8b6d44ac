"""The aiohttp front end: an app factory whose handlers only translate HTTP to domain calls.

Routes live in their own modules: `web.api` (JSON API and admin), `web.dashboard` (museum
managers' HTML pages), `web.visitor` (the visitor page and static files), `web.metrics` and
`web.openapi`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from pain_actors.client import ActorClient
from pain_actors.config import Config
from pain_actors.system import ActorService
from web import api, dashboard, metrics, openapi, visitor
from web.charts import format_loss
from web.errors import error_middleware, security_headers_middleware
from web.request_ids import request_id_middleware
from web.sessions import setup_sessions
from web.login_throttle import LoginThrottle
from web.state import CATALOGUE, CLIENT, CONFIG, LOGIN_THROTTLE, SERVICE, STARTED_AT
from workers.catalogue import Catalogue

log = structlog.get_logger(__name__)

TEMPLATES_DIR = Path(__file__).parent / "templates"


def create_app(config: Config) -> web.Application:
    """Build the application; the database and the actor tree start with it (cleanup_ctx).

    Raises pain_actors.config.ConfigError for an invalid server.session_secret.
    """
    app = web.Application(
        client_max_size=config.server.max_upload_bytes,
        middlewares=[request_id_middleware, security_headers_middleware, metrics.metrics_middleware, error_middleware],
    )
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app[LOGIN_THROTTLE] = LoginThrottle(config.server.login_attempts, config.server.login_window)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"], default=True),
        filters={"loss": format_loss},
    )
    setup_sessions(app, config.server)
    metrics.setup_metrics(app)
    app.cleanup_ctx.append(database_context)
    app.cleanup_ctx.append(actor_context)

    api.add_routes(app)
    dashboard.add_routes(app)
    visitor.add_routes(app)
    app.router.add_get("/metrics", metrics.metrics_handler)
    app.router.add_get("/api/openapi.json", openapi.openapi_handler)
    return app


async def database_context(app: web.Application) -> AsyncIterator[None]:
    """Open the database and migrate its schema before anything serves.

    The connection is closed again before the actor system starts: actor processes are forked
    from this one, and a forked SQLite or PostgreSQL connection must not be shared. Handlers
    reconnect on their first query.
    """
    config = app[CONFIG]
    # Opened and closed on this thread, because peewee keeps one connection per thread.
    catalogue = Catalogue(config.data_dir, config.storage.database_url)
    catalogue.close()
    app[CATALOGUE] = catalogue
    log.info("database_ready", paintings=len(catalogue), schema=catalogue.database.schema_version())
    yield


async def actor_context(app: web.Application) -> AsyncIterator[None]:
    """Own the actor system for the app's lifetime: start the tree before serving, stop it after."""
    config = app[CONFIG]
    service = ActorService(config)
    await asyncio.to_thread(service.start)
    client = ActorClient(service, config.actors.client_threads)
    app[SERVICE] = service
    app[CLIENT] = client
    try:
        yield
    finally:
        await asyncio.to_thread(client.close)
        await asyncio.to_thread(service.stop)
