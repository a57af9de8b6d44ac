"""Request ids: one per HTTP request, bound to every log line the request causes.

The id is generated here, never taken from the client, because the actor client matches replies
to requests by it. It travels in the actor messages of the request, so the coordinator's and the
predictor's lines carry it too, and it is returned in the X-Request-ID header so that a user's
report can be traced in the logs.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from pain_actors.client import new_request_id

REQUEST_ID = web.RequestKey("request_id", str)
HEADER = "X-Request-ID"


def request_id_of(request: web.Request) -> str:
    """Return the id of this HTTP request, for the actor message it sends."""
    return request.get(REQUEST_ID) or new_request_id()


@web.middleware
async def request_id_middleware(request: web.Request, handler) -> web.StreamResponse:
    request_id = new_request_id()
    request[REQUEST_ID] = request_id
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # redirects raised by handlers
            exc.headers[HEADER] = request_id
            raise
    response.headers[HEADER] = request_id
    return response
