"""The aiohttp front end: an app factory whose handlers only translate HTTP to engine calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from model.intake import ImageError
from pain_actors.config import Config
from pain_actors.engine_host import EngineHost
from workers.catalogue import Painting

log = structlog.get_logger(__name__)

CONFIG = web.AppKey("config", Config)
ENGINE = web.AppKey("engine", EngineHost)
STARTED_AT = web.AppKey("started_at", float)

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
    app.cleanup_ctx.append(engine_context)
    app.add_routes(
        [
            web.post("/api/predict", predict),
            web.get("/api/paintings/{id}", get_painting),
            web.get("/api/list-museum/{id}", list_museum),
            web.get("/api/museums", list_museums),
            web.get("/user_content/{image}", user_content),
            web.get("/healthz", healthz),
        ]
    )
    return app


async def engine_context(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    engine = EngineHost(config.data_dir, config.engine)
    app[ENGINE] = engine
    log.info("engine_ready", paintings=len(engine.catalogue), data_dir=str(config.data_dir))
    yield
    engine.close()
    log.info("engine_stopped")


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
    if museum is not None and not request.app[ENGINE].catalogue.has_museum(museum):
        return json_error(404, f"museum: {museum!r} not found; leave it out to search every museum")

    try:
        results = await request.app[ENGINE].predict(image, museum, limit)
    except ImageError as exc:
        return json_error(IMAGE_ERROR_STATUS.get(exc.reason, 422), f"payload: {exc.message}")
    return web.json_response([_painting_json(request, r["painting"], r["score"]) for r in results])


async def get_painting(request: web.Request) -> web.Response:
    painting = request.app[ENGINE].catalogue.get(request.match_info["id"])
    if painting is None:
        return json_error(404, f"painting {request.match_info['id']!r} not found")
    return web.json_response(_painting_json(request, painting))


async def list_museum(request: web.Request) -> web.Response:
    museum = request.match_info["id"]
    paintings = request.app[ENGINE].catalogue.by_museum(museum)
    if not paintings:
        return json_error(404, f"museum {museum!r} not found or has no paintings")
    return web.json_response([_painting_json(request, p) for p in paintings])


async def list_museums(request: web.Request) -> web.Response:
    museums = request.app[ENGINE].catalogue.museums()
    return web.json_response([{"id": name, "paintings": count} for name, count in sorted(museums.items())])


async def user_content(request: web.Request) -> web.StreamResponse:
    path = request.app[ENGINE].catalogue.image_path(request.match_info["image"])
    if path is None:
        return json_error(404, "image not found")
    # Stored names are random and never reused, so the bytes behind a name never change.
    return web.FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})


async def healthz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return web.json_response(
        {
            "status": "ok",
            "paintings": len(engine.catalogue),
            "uptime_seconds": round(time.time() - request.app[STARTED_AT], 1),
        }
    )


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
