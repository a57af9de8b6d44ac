"""The JSON API: predictions, the catalogue, health, and the admin routes."""

from __future__ import annotations

import asyncio
import hmac
import time

import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pain_actors.client import new_request_id
from pain_actors.messages import (
    CancelTraining,
    Predicted,
    PredictRejected,
    PredictRequest,
    ReloadAccepted,
    ReloadRequest,
    RequestFailed,
    StatusReport,
    StatusRequest,
    TrainAccepted,
    TrainingCancelling,
    TrainRequest,
)
from pain_actors.system import COORDINATOR, TRAINER, ActorNotFound, ActorService
from web.errors import INTERNAL_ERROR, json_error
from web.request_ids import request_id_of
from web.state import CATALOGUE, CLIENT, CONFIG, SERVICE, STARTED_AT
from workers.catalogue import Catalogue, Painting

log = structlog.get_logger(__name__)

ADMIN_TIMEOUT = 10.0
# Most predicts take well under a second (docs/benchmarks.md), so 5 s without a reply suggests a
# lost request or reply. A slow request is not run twice, because the coordinator ignores a copy
# of a request that it still holds.
PREDICT_RESEND_SECONDS = 5.0
FAULT_MODES = ("sigkill", "raise")

MAX_LIMIT = 50
# Simple clients send raw photos untyped or as generic bytes, so those are accepted beside image/*.
RAW_IMAGE_TYPES = ("application/octet-stream", "")
# Unusable images: too many pixels is a size problem (413), nothing sent is 400, the rest 422.
IMAGE_ERROR_STATUS = {"too_large": 413, "empty": 400}
# What aiohttp raises while reading a malformed multipart or form body: bad boundaries and
# headers (HttpProcessingError, ValueError, AssertionError), or a field in an unknown or wrong
# charset (LookupError, UnicodeDecodeError, which is a ValueError).
MALFORMED_FORM_ERRORS = (HttpProcessingError, ValueError, AssertionError, LookupError)


def add_routes(app: web.Application) -> None:
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
            web.post("/api/train/cancel", cancel_training),
            web.post("/api/admin/kill", kill_actor),
        ]
    )


async def predict(request: web.Request) -> web.Response:
    """POST /api/predict: a photo as multipart field `payload` or as the raw body."""
    config = request.app[CONFIG]
    image, fields = await _read_photo(request)
    museum = fields.get("museum") or request.query.get("museum") or None
    limit = _parse_limit(fields.get("limit") or request.query.get("limit"), config.server.default_limit)
    catalogue = catalogue_of(request)
    if museum is not None and not catalogue.has_museum(museum):
        return json_error(404, f"museum: {museum!r} not found; leave it out to search every museum")

    message = PredictRequest(request_id_of(request), image, museum, limit)
    reply = await request.app[CLIENT].ask(
        COORDINATOR, message, config.actors.request_timeout + 5.0, resend_after=PREDICT_RESEND_SECONDS
    )
    if isinstance(reply, PredictRejected):
        return json_error(IMAGE_ERROR_STATUS.get(reply.reason, 422), f"payload: {reply.message}")
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    if not isinstance(reply, Predicted):
        log.error("unexpected_reply", request_id=message.request_id, reply=type(reply).__name__)
        return json_error(500, INTERNAL_ERROR)

    catalogue = catalogue_of(request)  # the collection may have changed while the photo was matched
    results = []
    for match in reply.matches:
        painting = catalogue.get(match["painting_id"])
        if painting is not None:  # indexed but deleted since: never show it
            results.append(painting_json(request, painting, match["score"]))
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
    painting = catalogue_of(request).get(request.match_info["id"])
    if painting is None:
        return json_error(
            404, f"painting {request.match_info['id']!r} not found; GET /api/list-museum/{{museum}} lists the ids"
        )
    return web.json_response(painting_json(request, painting))


async def list_museum(request: web.Request) -> web.Response:
    museum = request.match_info["id"]
    paintings = catalogue_of(request).by_museum(museum)
    if not paintings:
        return json_error(404, f"museum {museum!r} not found or has no paintings")
    return web.json_response([painting_json(request, p) for p in paintings])


async def list_museums(request: web.Request) -> web.Response:
    catalogue = catalogue_of(request)
    return web.json_response(
        [
            {"id": museum, "name": catalogue.museum_name(museum) or museum, "paintings": count}
            for museum, count in sorted(catalogue.museums().items())
        ]
    )


async def user_content(request: web.Request) -> web.StreamResponse:
    path = catalogue_of(request).image_path(request.match_info["image"])
    if path is None:
        return json_error(404, "image not found; take image names from image_path in the painting JSON")
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
        "paintings": len(catalogue_of(request)),
        "uptime_seconds": round(time.time() - request.app[STARTED_AT], 1),
    }
    return web.json_response(body, status=200 if serving else 503)


async def status(request: web.Request) -> web.Response:
    """GET /api/status (admin): predictors and their versions, pool load, training, the actor tree."""
    require_admin(request)
    return web.json_response(await collect_status(request.app))


async def collect_status(app: web.Application) -> dict:
    """Ask the coordinator and the trainer for their state and the root for the tree.

    Each part that did not reply is replaced by {"error": ...}.
    """
    client = app[CLIENT]
    pool, training = await asyncio.gather(
        client.ask(COORDINATOR, StatusRequest(new_request_id()), ADMIN_TIMEOUT),
        client.ask(TRAINER, StatusRequest(new_request_id()), ADMIN_TIMEOUT),
    )
    service = app[SERVICE]
    try:
        tree = await asyncio.to_thread(_tree_json, service)
    except ActorNotFound as exc:
        tree = {"error": str(exc)}
    return {
        "pool": pool.status if isinstance(pool, StatusReport) else {"error": pool.error},
        "training": training.status if isinstance(training, StatusReport) else {"error": training.error},
        "tree": tree,
        "root_restarts": service.watcher.restart_count if service.watcher else 0,
    }


async def training_status(app: web.Application) -> dict:
    """Return the trainer's state dict, or {"state": "unknown", "error": ...} when it did not reply."""
    reply = await app[CLIENT].ask(TRAINER, StatusRequest(new_request_id()), ADMIN_TIMEOUT)
    if isinstance(reply, StatusReport):
        return reply.status
    return {"state": "unknown", "error": getattr(reply, "error", "the trainer did not answer")}


async def reload(request: web.Request) -> web.Response:
    """POST /api/reload (admin): move predictors, one at a time, to a version (default: the newest)."""
    require_admin(request)
    body = await _json_body(request, ("version",))
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        return json_error(400, "version: must be a string such as \"v0003\"; leave it out for the newest")
    reply = await request.app[CLIENT].ask(COORDINATOR, ReloadRequest(request_id_of(request), version), ADMIN_TIMEOUT)
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    assert isinstance(reply, ReloadAccepted)
    return web.json_response({"reload_id": reply.request_id, "version": reply.version}, status=202)


async def train(request: web.Request) -> web.Response:
    """POST /api/train (admin): start a training run, or {"resume": RUN_ID} to continue one."""
    require_admin(request)
    body = await _json_body(request, ("resume",), " (training settings come from [training] in the server's configuration)")
    resume = body.get("resume")
    if resume is not None and (not isinstance(resume, str) or not resume.isalnum()):
        return json_error(400, "resume: must be the run_id of an earlier run, as returned by POST /api/train")
    reply = await request.app[CLIENT].ask(TRAINER, TrainRequest(request_id_of(request), resume), ADMIN_TIMEOUT)
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    assert isinstance(reply, TrainAccepted)
    return web.json_response({"run_id": reply.run_id}, status=202)


async def cancel_training(request: web.Request) -> web.Response:
    """POST /api/train/cancel (admin): stop the running training run, or {"run_id": ID} to name it."""
    require_admin(request)
    body = await _json_body(request, ("run_id",))
    run_id = body.get("run_id")
    if run_id is not None and (not isinstance(run_id, str) or not run_id.isalnum()):
        return json_error(400, "run_id: must be the run_id of the running run, as returned by POST /api/train")
    reply = await request.app[CLIENT].ask(TRAINER, CancelTraining(request_id_of(request), run_id), ADMIN_TIMEOUT)
    if isinstance(reply, RequestFailed):
        return json_error(reply.status, reply.error)
    assert isinstance(reply, TrainingCancelling)
    return web.json_response({"run_id": reply.run_id, "state": "cancelling"}, status=202)


async def kill_actor(request: web.Request) -> web.Response:
    """POST /api/admin/kill (admin): fault injection, {"actor": NAME, "mode": "sigkill"|"raise"}."""
    require_admin(request)
    body = await _json_body(request, ("actor", "mode"))
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


def require_admin(request: web.Request) -> None:
    """Raise 403 while no admin token is configured, 401 for a missing or wrong bearer token."""
    token = request.app[CONFIG].server.admin_token
    if not token:
        raise web.HTTPForbidden(
            text="admin endpoints are disabled: set server.admin_token (or PAIN_SERVER_ADMIN_TOKEN) and restart"
        )
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if not header:
        raise web.HTTPUnauthorized(
            text="Authorization: missing; send the header 'Authorization: Bearer <admin token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if scheme.lower() != "bearer" or not given:
        raise web.HTTPUnauthorized(
            text="Authorization: not a bearer token; send the header as 'Authorization: Bearer <admin token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(given.encode(), token.encode()):
        raise web.HTTPUnauthorized(text="Authorization: the admin token is wrong", headers={"WWW-Authenticate": "Bearer"})


async def _json_body(request: web.Request, fields: tuple[str, ...] | None = None, hint: str = "") -> dict:
    """Read an optional JSON object body; with `fields`, any other key is a 400 that names it."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body: not valid JSON; send a JSON object or no body") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body: must be a JSON object")
    unknown = sorted(set(body) - set(fields)) if fields is not None else []
    if unknown:
        accepted = ", ".join(f'"{name}"' for name in fields)
        raise web.HTTPBadRequest(text=f"{unknown[0]}: unknown field; this endpoint takes only {accepted}{hint}")
    return body


def catalogue_of(request: web.Request) -> Catalogue:
    """Return the app's catalogue, reloaded first if any process changed the collection."""
    catalogue = request.app[CATALOGUE]
    catalogue.refresh()
    return catalogue


async def _read_photo(request: web.Request) -> tuple[bytes, dict[str, str]]:
    fields: dict[str, str] = {}
    image = b""
    if request.content_type.startswith("multipart/"):
        try:
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload":
                    image = await part.read(decode=False)
                    fields["payload"] = "sent"
                elif part.name in ("museum", "limit"):
                    fields[part.name] = (await part.text()).strip()
        except MALFORMED_FORM_ERRORS as exc:
            log.info("malformed_multipart", path=request.path, error=f"{type(exc).__name__}: {exc}"[:300])
            raise web.HTTPBadRequest(
                text="body: not valid multipart/form-data; send the photo in the multipart field 'payload'"
            ) from None
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


def painting_json(request: web.Request, painting: Painting, score: float | None = None) -> dict:
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
