"""Typed keys of the application state, shared by the handler modules."""

from __future__ import annotations

from aiohttp import web

from pain_actors.client import ActorClient
from pain_actors.config import Config
from pain_actors.system import ActorService
from web.login_throttle import LoginThrottle
from workers.catalogue import Catalogue

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", ActorService)
CLIENT = web.AppKey("client", ActorClient)
CATALOGUE = web.AppKey("catalogue", Catalogue)
STARTED_AT = web.AppKey("started_at", float)
LOGIN_THROTTLE = web.AppKey("login_throttle", LoginThrottle)
