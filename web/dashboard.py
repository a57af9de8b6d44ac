"""The museum dashboard: server-rendered pages where managers register, log in and edit paintings.

Every form carries the session's CSRF token, and every change goes through the catalogue with
the logged-in museum as the owner, so a manager can only change their own museum's paintings.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import aiohttp_jinja2
import structlog
from aiohttp import web
from aiohttp_session import get_session

from web.api import MALFORMED_FORM_ERRORS, catalogue_of, training_status
from web.charts import loss_chart_svg
from web.sessions import CSRF_FIELD, check_csrf, csrf_token, current_museum, log_in, log_out
from web.state import CATALOGUE, CONFIG, LOGIN_THROTTLE
from web.uploads import IMAGE_ERROR_STATUS, ImageError, normalise_image
from workers.accounts import AccountError, authenticate, register_museum
from workers.catalogue import Painting, new_painting_id
from workers.database import NotFound, NotOwner

log = structlog.get_logger(__name__)

# Maximum characters of each painting text field; the title is required.
FIELD_LIMITS = {"title": 300, "artist": 200, "year": 50, "medium": 200, "description": 10_000}
RUNS_SHOWN = 10


class FormError(Exception):
    """Invalid form input: re-render the form with `message` next to `field`, with `status`."""

    def __init__(self, status: int, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.status = status
        self.field = field
        self.message = message


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/dashboard", home),
            web.get("/dashboard/register", register_form),
            web.post("/dashboard/register", register),
            web.get("/dashboard/login", login_form),
            web.post("/dashboard/login", login),
            web.post("/dashboard/logout", logout),
            web.get("/dashboard/paintings", paintings_page),
            web.get("/dashboard/paintings/new", new_painting_form),
            web.post("/dashboard/paintings/new", create_painting),
            web.get("/dashboard/paintings/{id}/edit", edit_painting_form),
            web.post("/dashboard/paintings/{id}/edit", edit_painting),
            web.get("/dashboard/paintings/{id}/delete", delete_painting_form),
            web.post("/dashboard/paintings/{id}/delete", delete_painting),
            web.get("/dashboard/training", training_page),
        ]
    )


# --- helpers -----------------------------------------------------------------------------


async def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    """Render a page with the logged-in museum, its name, the CSRF token and a pending flash message."""
    museum = await current_museum(request)
    session = await get_session(request)
    catalogue = catalogue_of(request)
    base = {
        "museum": museum,
        "museum_name": catalogue.museum_name(museum) if museum else None,
        "csrf_token": await csrf_token(request),
        "flash": session.pop("flash", None),
        "error": None,
        "error_field": None,
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context})
    response.set_status(status)
    response.headers["Cache-Control"] = "no-store"
    return response


async def require_login(request: web.Request) -> str:
    """Return the logged-in museum id; redirect a page view to the login form, reject a POST with 401."""
    museum = await current_museum(request)
    if museum is not None and catalogue_of(request).has_museum(museum):
        return museum
    if request.method == "GET":
        raise web.HTTPFound("/dashboard/login")
    raise web.HTTPUnauthorized(text="session: not logged in, or the login expired; log in and submit the form again")


async def read_form(request: web.Request, multipart: bool = False):
    """Read a submitted form and check its CSRF token before anything else looks at it."""
    if multipart and not request.content_type.startswith("multipart/form-data"):
        raise web.HTTPUnsupportedMediaType(
            text=f"Content-Type {request.content_type} is not supported; submit the form as multipart/form-data"
        )
    if not multipart and request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise web.HTTPUnsupportedMediaType(
            text=f"Content-Type {request.content_type} is not supported; submit the form from the dashboard page"
        )
    try:
        form = await request.post()
    except MALFORMED_FORM_ERRORS as exc:
        log.info("malformed_form", path=request.path, error=f"{type(exc).__name__}: {exc}"[:300])
        raise web.HTTPBadRequest(text="body: not a valid form; submit the form from the dashboard page") from None
    await check_csrf(request, form.get(CSRF_FIELD) if isinstance(form.get(CSRF_FIELD), str) else None)
    return form


def text_field(form, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def painting_fields(form) -> dict[str, str]:
    """Read the painting's text fields from a form; raise FormError (422) for invalid values."""
    values = {}
    for name, limit in FIELD_LIMITS.items():
        value = text_field(form, name).strip()
        if "\x00" in value:
            raise FormError(422, name, "contains a NUL character; remove it")
        if len(value) > limit:
            raise FormError(422, name, f"is {len(value):,} characters long, over the limit of {limit:,}; shorten it")
        values[name] = value
    if not values["title"]:
        raise FormError(422, "title", "missing; enter the painting's title")
    return values


async def stored_upload(request: web.Request, form, required: bool) -> str | None:
    """Check the uploaded image field, store a normalised copy and return its generated name.

    Returns None when no file was chosen and `required` is false. Raises FormError.
    """
    field = form.get("image")
    if not isinstance(field, web.FileField) or not field.filename:
        if required:
            raise FormError(400, "image", "missing; choose the painting's image file")
        return None
    data = await asyncio.to_thread(field.file.read)
    if not data:
        raise FormError(400, "image", "the chosen file is empty; choose the painting's image file")
    max_pixels = request.app[CONFIG].engine.max_pixels
    try:
        jpeg = await asyncio.to_thread(normalise_image, data, max_pixels)
    except ImageError as exc:
        raise FormError(IMAGE_ERROR_STATUS.get(exc.reason, 422), "image", exc.message) from None
    return await asyncio.to_thread(request.app[CATALOGUE].store_image, jpeg, "upload.jpg")


async def flash(request: web.Request, message: str) -> None:
    session = await get_session(request)
    session["flash"] = message


def owned_painting(request: web.Request, museum: str) -> Painting:
    """Return the painting named in the URL; raise 404 when unknown, 403 when it is another museum's."""
    painting_id = request.match_info["id"]
    painting = catalogue_of(request).get(painting_id)
    if painting is None:
        raise web.HTTPNotFound(text=f"painting {painting_id!r} not found; pick one from your list of paintings")
    if painting.museum != museum:
        log.warning("cross_museum_access_rejected", museum=museum, painting_id=painting_id, owner=painting.museum)
        raise web.HTTPForbidden(text=f"painting {painting_id!r} belongs to another museum; you can change only your own")
    return painting


def ownership_error(painting_id: str, error: Exception) -> web.HTTPException:
    if isinstance(error, NotOwner):
        return web.HTTPForbidden(text=f"painting {painting_id!r} belongs to another museum; you can change only your own")
    return web.HTTPNotFound(text=f"painting {painting_id!r} not found; it may have been deleted")


# --- accounts ----------------------------------------------------------------------------


async def home(request: web.Request) -> web.Response:
    museum = await current_museum(request)
    raise web.HTTPFound("/dashboard/paintings" if museum else "/dashboard/login")


async def register_form(request: web.Request) -> web.Response:
    return await render(request, "register.html", {"form": {}})


async def register(request: web.Request) -> web.Response:
    form = await read_form(request)
    museum_id, name, password = text_field(form, "museum_id"), text_field(form, "name"), text_field(form, "password")
    database = request.app[CATALOGUE].database
    try:
        museum = await asyncio.to_thread(register_museum, database, museum_id, name, password)
    except AccountError as error:
        status = 409 if error.taken else 422
        context = {"form": {"museum_id": museum_id, "name": name}, "error": str(error), "error_field": error.field}
        return await render(request, "register.html", context, status)
    await log_in(request, museum.id)
    await flash(request, f"Welcome, {museum.name}. Add your first painting.")
    raise web.HTTPFound("/dashboard/paintings")


async def login_form(request: web.Request) -> web.Response:
    return await render(request, "login.html", {"form": {}})


async def login(request: web.Request) -> web.Response:
    form = await read_form(request)
    museum_id, password = text_field(form, "museum_id"), text_field(form, "password")

    # NOTE: behind a reverse proxy every client has the proxy's address. The address limit then
    # applies to all managers together, and only the museum limit separates them.
    throttle = request.app[LOGIN_THROTTLE]
    keys = (f"address:{request.remote}", f"museum:{museum_id[:64]}")
    wait = math.ceil(throttle.retry_after(*keys))
    if wait > 0:
        log.warning("login_throttled", museum=museum_id[:64], retry_after=wait)
        error = f"too many failed logins; wait {wait} seconds, then try again"
        response = await render(request, "login.html", {"form": {"museum_id": museum_id}, "error": error}, 429)
        response.headers["Retry-After"] = str(wait)
        return response

    museum = await asyncio.to_thread(authenticate, request.app[CATALOGUE].database, museum_id, password)
    if museum is None:
        throttle.failed(*keys)
        log.info("login_failed", museum=museum_id[:64])
        context = {"form": {"museum_id": museum_id}, "error": "museum id or password is wrong; check both and try again"}
        return await render(request, "login.html", context, 401)
    # Only the museum's count is cleared: a guesser who owns another museum must not be able to
    # reset their address's count by logging in to it.
    throttle.succeeded(keys[1])
    await log_in(request, museum.id)
    log.info("login_succeeded", museum=museum.id)
    raise web.HTTPFound("/dashboard/paintings")


async def logout(request: web.Request) -> web.Response:
    await read_form(request)
    await log_out(request)
    raise web.HTTPFound("/dashboard/login")


# --- paintings ---------------------------------------------------------------------------


async def paintings_page(request: web.Request) -> web.Response:
    museum = await require_login(request)
    paintings = list(reversed(catalogue_of(request).by_museum(museum)))  # newest first
    return await render(request, "paintings.html", {"paintings": paintings})


async def new_painting_form(request: web.Request) -> web.Response:
    await require_login(request)
    return await render(request, "painting_form.html", {"painting": None, "form": {}})


async def create_painting(request: web.Request) -> web.Response:
    museum = await require_login(request)
    form = await read_form(request, multipart=True)
    catalogue = request.app[CATALOGUE]
    try:
        values = painting_fields(form)
        image = await stored_upload(request, form, required=True)
    except FormError as error:
        context = {"painting": None, "form": _form_values(form), "error": str(error), "error_field": error.field}
        return await render(request, "painting_form.html", context, error.status)
    painting = Painting(id=new_painting_id(), museum=museum, image=image, **values)
    try:
        await asyncio.to_thread(catalogue.add, painting)
    except Exception:
        catalogue.remove_image(image)
        raise
    log.info("painting_added", museum=museum, painting_id=painting.id)
    await flash(request, f"Added “{painting.title}”. Visitors can find it within a few seconds.")
    raise web.HTTPFound("/dashboard/paintings")


async def edit_painting_form(request: web.Request) -> web.Response:
    museum = await require_login(request)
    painting = owned_painting(request, museum)
    return await render(request, "painting_form.html", {"painting": painting, "form": _painting_values(painting)})


async def edit_painting(request: web.Request) -> web.Response:
    museum = await require_login(request)
    form = await read_form(request, multipart=True)
    painting = owned_painting(request, museum)
    catalogue = request.app[CATALOGUE]
    try:
        values = painting_fields(form)
        image = await stored_upload(request, form, required=False)
    except FormError as error:
        context = {"painting": painting, "form": _form_values(form), "error": str(error), "error_field": error.field}
        return await render(request, "painting_form.html", context, error.status)
    try:
        if image is None:
            await asyncio.to_thread(catalogue.update, painting.id, museum, values)
        else:
            await asyncio.to_thread(catalogue.replace_image, painting.id, museum, image, values)
    except (NotFound, NotOwner) as error:
        if image is not None:
            catalogue.remove_image(image)
        raise ownership_error(painting.id, error) from None
    log.info("painting_updated", museum=museum, painting_id=painting.id, new_image=image is not None)
    await flash(request, f"Saved “{values['title']}”.")
    raise web.HTTPFound("/dashboard/paintings")


async def delete_painting_form(request: web.Request) -> web.Response:
    museum = await require_login(request)
    return await render(request, "delete.html", {"painting": owned_painting(request, museum)})


async def delete_painting(request: web.Request) -> web.Response:
    museum = await require_login(request)
    await read_form(request)
    painting = owned_painting(request, museum)
    try:
        await asyncio.to_thread(request.app[CATALOGUE].delete, painting.id, museum)
    except (NotFound, NotOwner) as error:
        raise ownership_error(painting.id, error) from None
    log.info("painting_deleted", museum=museum, painting_id=painting.id)
    await flash(request, f"Deleted “{painting.title}”.")
    raise web.HTTPFound("/dashboard/paintings")


# --- training ----------------------------------------------------------------------------


async def training_page(request: web.Request) -> web.Response:
    """Show the trainer's state from the actors, the loss curve, and recorded runs from the database."""
    await require_login(request)
    state = await training_status(request.app)
    runs = await asyncio.to_thread(request.app[CATALOGUE].database.list_runs, RUNS_SHOWN)
    epochs = state.get("epochs") or (runs[0]["epochs"] if runs else [])
    context = {
        "training": state,
        "runs": runs,
        "chart": loss_chart_svg(epochs) if epochs else None,
        "epochs": epochs,
        "refresh": state.get("state") == "running",
    }
    return await render(request, "training.html", context)


def _form_values(form) -> dict[str, str]:
    return {name: text_field(form, name) for name in FIELD_LIMITS}


def _painting_values(painting: Painting) -> dict[str, str]:
    return {name: getattr(painting, name) for name in FIELD_LIMITS}
