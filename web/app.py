"""The aiohttp front end: an app factory whose handlers only translate HTTP to actor messages."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from pain_actors.client import ActorClient, new_request_id
from pain_actors.config import Config
from pain_actors.messages import (
    Predicted,
    PredictRejected,
    PredictRequest,
    ReloadAccepted,
    ReloadRequest,
    RequestFailed,
    StatusReport,
    StatusRequest,
    TrainAccepted,
    TrainRequest,
)
from pain_actors.system import COORDINATOR, TRAINER, ActorNotFound, ActorService
from workers.catalogue import Catalogue, Painting

log = structlog.get_logger(__name__)

CONFIG = web.AppKey("config", Config)
SERVICE = web.AppKey("service", ActorService)
CLIENT = web.AppKey("client", ActorClient)
CATALOGUE = web.AppKey("catalogue", Catalogue)
STARTED_AT = web.AppKey("started_at", float)

ADMIN_TIMEOUT = 10.0
FAULT_MODES = ("sigkill", "raise")

MAX_LIMIT = 50
# Simple clients send raw photos untyped or as generic bytes, so those are accepted beside image/*.
RAW_IMAGE_TYPES = ("application/octet-stream", "")
# Unusable images: too many pixels is a size problem (413), nothing sent is 400, the rest 422.
IMAGE_ERROR_STATUS = {"too_large": 413, "empty": 400}


def create_app(config: Config) -> web.Application:
    app = web.Application(
        client_max_size=config.server.max_upload_bytes, middlewares=[access_log_middleware, error_middleware]
    )
    app[CONFIG] = config
    app[STARTED_AT] = time.time()
    app[CATALOGUE] = Catalogue(config.data_dir)
    app.cleanup_ctx.append(actor_context)
    app.add_routes(
        [
            web.post("/api/predict", predict),
            web.get("/api/paintings/{id}", get_painting),
            web.get("/api/list-museum/{id}", list_museum),
            web.get("/api/museums", list_museums),
            web.get("/user_content/{image}", user_content),
            web.get("/healthz", healthz),
            web.get("/api/status", status),
            web.post("/api/reload", reload),
            web.post("/api/train", train),
            web.post("/api/admin/kill", kill_actor),
        ]
    )
    return app


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


@web.middleware
async def access_log_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Log one structured line per request, replacing aiohttp's plain-text access log."""
    started = time.perf_counter()
    response = await handler(request)
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status,
        ms=round((time.perf_counter() - started) * 1000.0, 1),
    )
    return response


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Turn every error into JSON {"error": ...} with its status; log what was not expected."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[CONFIG].server.max_upload_bytes
        return json_error(
            413,
            f"payload: the request body is larger than {limit:,} bytes (server.max_upload_bytes);"
            " send a smaller photo",
        )
    except web.HTTPException as exc:
        # aiohttp's own errors carry text like "404: Not Found"; ours carry a message for the client.
        own_message = exc.text and not exc.text.startswith(f"{exc.status}:")
        return json_error(exc.status, exc.text if own_message else exc.reason)
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path)
        return json_error(500, "Internal error: the request was not processed; try again later.")


def json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def predict(request: web.Request) -> web.Response:
    """POST /api/predict: a photo as multipart field `payload` or as the raw body."""
    config = request.app[CONFIG]
    image, fields = await _read_photo(request)
    museum = fields.get("museum") or request.query.get("museum") or None
    limit = _parse_limit(fields.get("limit") or request.query.get("limit"), config.server.default_limit)
    catalogue = _catalogue(request)
    if museum is not None and not catalogue.has_museum(museum):
        return json_error(404, f"museum: {museum!r} not found; leave it out to search every museum")

    message = PredictRequest(new_request_id(), image, museum, limit)
    reply = await request.app[CLIENT].ask(COORDINATOR, message, config.actors.request_timeout + 5.0)
    if isinstance(reply, PredictRejected):
        return json_error(IMAGE_ERROR_STATUS.get(reply.reason, 422), f"payload: {reply.message}")
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    if not isinstance(reply, Predicted):
        log.error("unexpected_reply", request_id=message.request_id, reply=type(reply).__name__)
        return json_error(500, "Internal error: the request was not processed; try again later.")

    results = []
    for match in reply.matches:
        painting = catalogue.get(match["painting_id"])
        if painting is not None:  # indexed but deleted since: never show it
            results.append(_painting_json(request, painting, match["score"]))
    log.info(
        "predicted",
        request_id=message.request_id,
        predictor=reply.predictor,
        version=reply.version,
        attempts=reply.attempts,
        matches=len(results),
        engine_ms=reply.elapsed_ms,
    )
    return web.json_response(results)


async def get_painting(request: web.Request) -> web.Response:
    painting = _catalogue(request).get(request.match_info["id"])
    if painting is None:
        return json_error(404, f"painting {request.match_info['id']!r} not found")
    return web.json_response(_painting_json(request, painting))


async def list_museum(request: web.Request) -> web.Response:
    museum = request.match_info["id"]
    paintings = _catalogue(request).by_museum(museum)
    if not paintings:
        return json_error(404, f"museum {museum!r} not found or has no paintings")
    return web.json_response([_painting_json(request, p) for p in paintings])


async def list_museums(request: web.Request) -> web.Response:
    museums = _catalogue(request).museums()
    return web.json_response([{"id": name, "paintings": count} for name, count in sorted(museums.items())])


async def user_content(request: web.Request) -> web.StreamResponse:
    path = _catalogue(request).image_path(request.match_info["image"])
    if path is None:
        return json_error(404, "image not found")
    # Stored names are random and never reused, so the bytes behind a name never change.
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})


async def healthz(request: web.Request) -> web.Response:
    """Liveness and readiness: 200 once a predictor serves, 503 while none does."""
    reply = await request.app[CLIENT].ask(COORDINATOR, StatusRequest(new_request_id()), 3.0)
    serving = 0
    if isinstance(reply, StatusReport):
        serving = sum(1 for p in reply.status["predictors"] if p["state"] in ("idle", "busy"))
    body = {
        "status": "ok" if serving else "starting",
        "ready": bool(serving),
        "predictors_serving": serving,
        "paintings": len(_catalogue(request)),
        "uptime_seconds": round(time.time() - request.app[STARTED_AT], 1),
    }
    return web.json_response(body, status=200 if serving else 503)


async def status(request: web.Request) -> web.Response:
    """GET /api/status (admin): predictors and their versions, pool load, training, the actor tree."""
    _require_admin(request)
    client = request.app[CLIENT]
    pool, training = await asyncio.gather(
        client.ask(COORDINATOR, StatusRequest(new_request_id()), ADMIN_TIMEOUT),
        client.ask(TRAINER, StatusRequest(new_request_id()), ADMIN_TIMEOUT),
    )
    service = request.app[SERVICE]
    try:
        tree = await asyncio.to_thread(_tree_json, service)
    except ActorNotFound as exc:
        tree = {"error": str(exc)}
    return web.json_response(
        {
            "pool": pool.status if isinstance(pool, StatusReport) else {"error": pool.error},
            "training": training.status if isinstance(training, StatusReport) else {"error": training.error},
            "tree": tree,
            "root_restarts": service.watcher.restart_count if service.watcher else 0,
        }
    )


async def reload(request: web.Request) -> web.Response:
    """POST /api/reload (admin): move predictors, one at a time, to a version (default: the newest)."""
    _require_admin(request)
    body = await _json_body(request)
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        return json_error(400, "version: must be a string such as \"v0003\"; leave it out for the newest")
    reply = await request.app[CLIENT].ask(COORDINATOR, ReloadRequest(new_request_id(), version), ADMIN_TIMEOUT)
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    assert isinstance(reply, ReloadAccepted)
    return web.json_response({"reload_id": reply.request_id, "version": reply.version}, status=202)


async def train(request: web.Request) -> web.Response:
    """POST /api/train (admin): start a training run; its version is served once it finishes."""
    _require_admin(request)
    reply = await request.app[CLIENT].ask(TRAINER, TrainRequest(new_request_id()), ADMIN_TIMEOUT)
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    assert isinstance(reply, TrainAccepted)
    return web.json_response({"run_id": reply.run_id}, status=202)


async def kill_actor(request: web.Request) -> web.Response:
    """POST /api/admin/kill (admin): fault injection, {"actor": NAME, "mode": "sigkill"|"raise"}."""
    _require_admin(request)
    body = await _json_body(request)
    name, mode = body.get("actor"), body.get("mode", "sigkill")
    if not isinstance(name, str) or not name:
        return json_error(400, "actor: missing; name one, e.g. \"predictor-1\", \"coordinator\" or \"pain\"")
    if mode not in FAULT_MODES:
        return json_error(400, f"mode: {mode!r} is not a fault mode; use \"sigkill\" or \"raise\"")
    service = request.app[SERVICE]
    try:
        node = await asyncio.to_thread(_kill, service, name, mode)
    except ActorNotFound as exc:
        return json_error(404, f"actor: {exc}")
    except ValueError as exc:
        return json_error(400, str(exc))
    return web.json_response({"actor": node.name, "pid": node.pid, "mode": mode}, status=202)


def _kill(service: ActorService, name: str, mode: str):
    with service.private_context() as context:
        return service.kill(context, name, mode)


def _tree_json(service: ActorService) -> dict:
    with service.private_context() as context:
        return _node_json(service.tree(context))


def _node_json(node) -> dict:
    body = {"name": node.name, "pid": node.pid, "state": node.state, "restart_count": node.restart_count}
    if node.children:
        body["children"] = [_node_json(child) for child in node.children]
    return body


def _require_admin(request: web.Request) -> None:
    token = request.app[CONFIG].server.admin_token
    if not token:
        raise web.HTTPForbidden(
            text="admin endpoints are disabled: set server.admin_token (or PAIN_SERVER_ADMIN_TOKEN) and restart"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise web.HTTPUnauthorized(
            text="Authorization: missing; send the header 'Authorization: Bearer <admin token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise web.HTTPUnauthorized(text="Authorization: the admin token is wrong", headers={"WWW-Authenticate": "Bearer"})


async def _json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body: not valid JSON; send a JSON object or no body") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body: must be a JSON object")
    return body


def _catalogue(request: web.Request) -> Catalogue:
    catalogue = request.app[CATALOGUE]
    catalogue.refresh()  # `pain import` may have added paintings since the last request
    return catalogue


async def _read_photo(request: web.Request) -> tuple[bytes, dict[str, str]]:
    fields: dict[str, str] = {}
    image = b""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if part.name == "payload":
                image = await part.read(decode=False)
                fields["payload"] = "sent"
            elif part.name in ("museum", "limit"):
                fields[part.name] = (await part.text()).strip()
        if "payload" not in fields:
            raise web.HTTPBadRequest(text="payload: missing; send the photo in the multipart field 'payload'")
        if not image:
            raise web.HTTPBadRequest(text="payload: the uploaded file is empty; send a JPEG, PNG, WebP or GIF photo")
        return bytes(image), fields
    if request.content_type not in RAW_IMAGE_TYPES and not request.content_type.startswith("image/"):
        raise web.HTTPUnsupportedMediaType(
            text=f"payload: Content-Type {request.content_type} is not supported; send multipart/form-data"
            " with the photo in field 'payload', or the photo itself as image/* or application/octet-stream"
        )
    image = await request.read()
    if not image:
        raise web.HTTPBadRequest(text="payload: the request body is empty; send a JPEG, PNG, WebP or GIF photo")
    return image, fields


def _parse_limit(raw: str | None, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"limit: {raw!r} is not a whole number; use 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise web.HTTPBadRequest(text=f"limit: {limit} is out of range; use 1 to {MAX_LIMIT}")
    return limit


def _painting_json(request: web.Request, painting: Painting, score: float | None = None) -> dict:
    body = {
        "id": painting.id,
        "name": painting.title,
        "artist": painting.artist,
        "year": painting.year,
        "medium": painting.medium,
        "description": painting.description,
        "museum": painting.museum,
        "image_path": painting.image,
        "image_url": str(request.url.with_path(f"/user_content/{painting.image}").with_query(None)),
    }
    if score is not None:
        body["score"] = score
    return body
