"""The OpenAPI 3.1 document of the JSON API, served at GET /api/openapi.json.

tests/web/test_openapi.py checks that every route of the app that is not an HTML page appears
here with its methods, and runs generated requests against it (schemathesis).
"""

from __future__ import annotations

from aiohttp import web

from web.api import MAX_LIMIT


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _optional_fields(properties: dict) -> dict:
    """Return an optional JSON object request body that allows only these fields, because the server rejects others with 400."""
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    return {"required": False, "content": {"application/json": {"schema": schema}}}


PAINTING_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
ADMIN = [{"adminToken": []}]
ADMIN_ERRORS = {
    "401": _error("missing or wrong admin token"),
    "403": _error("admin routes are disabled because server.admin_token is empty"),
}
PHOTO_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}

PREDICT_QUERY = [
    {
        "name": "museum",
        "in": "query",
        "required": False,
        "description": "only match paintings of this museum; a multipart field of the same name wins",
        "schema": {"type": "string"},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "the most paintings to return (default server.default_limit)",
        "schema": PHOTO_LIMIT,
    },
]
RAW_PHOTO = {"schema": {"type": "string", "format": "binary"}}

DOCUMENT: dict = {
    "openapi": "3.1.0",
    "info": {
        "title": "PAIN: Painting Analyzer Intelligence Network",
        "version": "1",
        "description": "Recognise museum paintings in visitors' photos. Every error is JSON {\"error\": ...}"
        " whose message names the field at fault and the fix.",
    },
    "paths": {
        "/api/predict": {
            "post": {
                "operationId": "predict",
                "summary": "Find the paintings a photo shows, best first",
                "parameters": PREDICT_QUERY,
                "requestBody": {
                    "required": True,
                    "content": {
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["payload"],
                                "properties": {
                                    "payload": {"type": "string", "format": "binary"},
                                    "museum": {"type": "string"},
                                    "limit": PHOTO_LIMIT,
                                },
                            },
                            "encoding": {"payload": {"contentType": "image/*, application/octet-stream"}},
                        },
                        "image/jpeg": RAW_PHOTO,
                        "image/png": RAW_PHOTO,
                        "image/webp": RAW_PHOTO,
                        "image/gif": RAW_PHOTO,
                        "application/octet-stream": RAW_PHOTO,
                    },
                },
                "responses": {
                    "200": _json(
                        "matching paintings, best first; an empty array when nothing matches",
                        {"type": "array", "items": {"$ref": "#/components/schemas/Match"}},
                    ),
                    "400": _error("missing or empty photo, invalid limit or malformed multipart body"),
                    "404": _error("unknown museum"),
                    "413": _error("body over server.max_upload_bytes, or an image over engine.max_pixels"),
                    "415": _error("a body that is neither multipart/form-data nor an image"),
                    "422": _error("not an image, or a truncated or corrupt one"),
                    "503": _error("every predictor is busy and the queue is full, or none answered in time"),
                },
            }
        },
        "/api/paintings/{id}": {
            "get": {
                "operationId": "getPainting",
                "summary": "One painting",
                "parameters": [PAINTING_ID],
                "responses": {
                    "200": _json("the painting", {"$ref": "#/components/schemas/Painting"}),
                    "404": _error("unknown painting id"),
                },
            }
        },
        "/api/list-museum/{id}": {
            "get": {
                "operationId": "listMuseum",
                "summary": "All paintings of a museum",
                "parameters": [{**PAINTING_ID, "description": "museum id"}],
                "responses": {
                    "200": _json("the museum's paintings", {"type": "array", "items": {"$ref": "#/components/schemas/Painting"}}),
                    "404": _error("unknown museum, or one without paintings"),
                },
            }
        },
        "/api/museums": {
            "get": {
                "operationId": "listMuseums",
                "summary": "Museums that have paintings, with their painting counts",
                "responses": {
                    "200": _json("museums sorted by id", {"type": "array", "items": {"$ref": "#/components/schemas/Museum"}})
                },
            }
        },
        "/user_content/{image}": {
            "get": {
                "operationId": "getImage",
                "summary": "A stored painting image; names are never reused, so it is cached for a year",
                "parameters": [
                    {
                        "name": "image",
                        "in": "path",
                        "required": True,
                        "description": "image_path of a painting",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "the image bytes",
                        "headers": {"Cache-Control": {"schema": {"type": "string"}}},
                        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
                    },
                    "404": _error("unknown image name"),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "summary": "Liveness and readiness",
                "responses": {
                    "200": _json("a predictor serves", {"$ref": "#/components/schemas/Health"}),
                    "503": _json("no predictor serves yet", {"$ref": "#/components/schemas/Health"}),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Admin: Prometheus metrics: requests by route and status, pool, restarts, model version, training",
                "security": ADMIN,
                "responses": {
                    "200": {
                        "description": "Prometheus text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **ADMIN_ERRORS,
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document",
                "responses": {"200": _json("OpenAPI 3.1 document", {"type": "object"})},
            }
        },
        "/api/status": {
            "get": {
                "operationId": "status",
                "summary": "Admin: predictors, model versions, queue, reload errors, training run, actor tree",
                "security": ADMIN,
                "responses": {
                    "200": _json(
                        "the service's state",
                        {
                            "type": "object",
                            "required": ["pool", "training", "tree", "root_restarts"],
                            "properties": {
                                "pool": {"type": "object"},
                                "training": {"$ref": "#/components/schemas/Training"},
                                "tree": {"type": "object"},
                                "root_restarts": {"type": "integer"},
                            },
                        },
                    ),
                    **ADMIN_ERRORS,
                },
            }
        },
        "/api/reload": {
            "post": {
                "operationId": "reload",
                "summary": "Admin: move predictors one at a time to a model version (default: the newest)",
                "security": ADMIN,
                "requestBody": _optional_fields({"version": {"type": "string", "example": "v0003"}}),
                "responses": {
                    "202": _json(
                        "reload started",
                        {
                            "type": "object",
                            "required": ["reload_id", "version"],
                            "properties": {"reload_id": {"type": "string"}, "version": {"type": "string"}},
                        },
                    ),
                    "400": _error("invalid JSON body, unknown field or version"),
                    "404": _error("unknown model version"),
                    "503": _error("the coordinator did not answer in time"),
                    **ADMIN_ERRORS,
                },
            }
        },
        "/api/train": {
            "post": {
                "operationId": "train",
                "summary": "Admin: start a training run; its model version is served once it finishes",
                "description": "Training settings come from [training] in the server's configuration. "
                "Send {\"resume\": RUN_ID} to continue a run that was killed or cancelled.",
                "security": ADMIN,
                "requestBody": _optional_fields({"resume": {"type": "string", "pattern": "^[A-Za-z0-9]+$"}}),
                "responses": {
                    "202": _json(
                        "run started",
                        {"type": "object", "required": ["run_id"], "properties": {"run_id": {"type": "string"}}},
                    ),
                    "400": _error("invalid JSON body, unknown field or resume value"),
                    "404": _error("the run to resume left no checkpoint"),
                    "409": _error(
                        "a training run is already in progress, the collection has fewer than 2 paintings with an image, "
                        "or the run to resume already succeeded"
                    ),
                    "503": _error("the trainer did not answer in time"),
                    **ADMIN_ERRORS,
                },
            }
        },
        "/api/train/cancel": {
            "post": {
                "operationId": "cancelTraining",
                "summary": "Admin: stop the running training run after its current batch; it publishes no version",
                "security": ADMIN,
                "requestBody": _optional_fields(
                    {
                        "run_id": {
                            "type": "string",
                            "pattern": "^[A-Za-z0-9]+$",
                            "description": "cancel only if this run is the running one",
                        }
                    }
                ),
                "responses": {
                    "202": _json(
                        "the run stops after its current batch",
                        {
                            "type": "object",
                            "required": ["run_id", "state"],
                            "properties": {"run_id": {"type": "string"}, "state": {"type": "string"}},
                        },
                    ),
                    "400": _error("run_id is not a run id"),
                    "409": _error("no training run is running, or another one is"),
                    "503": _error("the trainer did not answer in time"),
                    **ADMIN_ERRORS,
                },
            }
        },
        "/api/admin/kill": {
            "post": {
                "operationId": "killActor",
                "summary": "Admin: fault injection, kill an actor of the tree",
                "security": ADMIN,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["actor"],
                                "additionalProperties": False,
                                "properties": {
                                    "actor": {"type": "string", "example": "predictor-1"},
                                    "mode": {"type": "string", "enum": ["sigkill", "raise"], "default": "sigkill"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(
                        "the actor was killed",
                        {
                            "type": "object",
                            "required": ["actor", "pid", "mode"],
                            "properties": {
                                "actor": {"type": "string"},
                                "pid": {"type": ["integer", "null"]},
                                "mode": {"type": "string"},
                            },
                        },
                    ),
                    "400": _error("missing actor, unknown mode, or 'raise' sent to a supervisor"),
                    "404": _error("no actor of that name is running"),
                    **ADMIN_ERRORS,
                },
            }
        },
    },
    "components": {
        "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer", "description": "server.admin_token"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
            "Painting": {
                "type": "object",
                "required": ["id", "name", "artist", "year", "medium", "description", "museum", "image_path", "image_url"],
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string", "description": "the painting's title"},
                    "artist": {"type": "string"},
                    "year": {"type": "string", "description": "free text, such as \"c. 1510\""},
                    "medium": {"type": "string"},
                    "description": {"type": "string"},
                    "museum": {"type": "string", "description": "museum id"},
                    "image_path": {"type": "string", "description": "image name for /user_content/{image}"},
                    "image_url": {"type": "string", "format": "uri"},
                },
            },
            "Match": {
                "allOf": [
                    {"$ref": "#/components/schemas/Painting"},
                    {
                        "type": "object",
                        "required": ["score"],
                        "properties": {
                            "score": {"type": "number", "minimum": 0, "maximum": 1, "description": "confidence"}
                        },
                    },
                ]
            },
            "Museum": {
                "type": "object",
                "required": ["id", "name", "paintings"],
                "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "paintings": {"type": "integer"}},
            },
            "Health": {
                "type": "object",
                "required": ["status", "ready", "predictors_serving", "paintings", "uptime_seconds"],
                "properties": {
                    "status": {"type": "string", "enum": ["ok", "starting"]},
                    "ready": {"type": "boolean"},
                    "predictors_serving": {"type": "integer"},
                    "paintings": {"type": "integer"},
                    "uptime_seconds": {"type": "number"},
                },
            },
            "Training": {
                "type": "object",
                "required": ["state"],
                "description": "the trainer's state; the other fields appear once a run started",
                "properties": {
                    "state": {"type": "string"},
                    "run_id": {"type": "string"},
                    "progress": {"type": "number"},
                    "done": {"type": "integer"},
                    "total": {"type": "integer"},
                    "version": {"type": ["string", "null"]},
                    "error": {"type": ["string", "null"]},
                    "epochs": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
    },
}


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
