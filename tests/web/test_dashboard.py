"""The museum dashboard against a real server: accounts, CSRF, uploads, edits, training page.

The server runs the real actor tree, so every upload here must become recognisable through
POST /api/predict without a training run, and no bad upload may crash a worker.
"""

import asyncio
import hashlib
import io
import re

import cv2
import jinja2
import numpy as np
import pytest
from aiohttp import ClientSession, CookieJar, FormData
from PIL import Image

from live_server import LiveServer
from model.synthetic import photograph, render_painting
from web.app import TEMPLATES_DIR
from web.charts import format_loss, loss_chart_svg
from workers.database import open_database

TOKEN = "dashboard-admin-token"
PASSWORD = "a long enough password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
LOGIN_WINDOW = 8.0  # seconds over which the test server counts failed logins (5 allowed)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dashboard-data")


@pytest.fixture(scope="module")
def server(data_dir):
    live = LiveServer(data_dir, token=TOKEN, predictors=1)
    # A short window, so the login limit test waits seconds rather than minutes. Every test here
    # logs in from 127.0.0.1, and the limit counts failures per address too.
    live.env["PAIN_SERVER_LOGIN_WINDOW"] = str(LOGIN_WINDOW)
    with live:
        yield live


def png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def photo_of(seed: int) -> bytes:
    ok, encoded = cv2.imencode(".jpg", photograph(render_painting(seed), seed=seed + 7)[..., ::-1])
    assert ok
    return encoded.tobytes()


class Manager:
    """A browser-like client: its own cookie jar, and the CSRF token read from each form page."""

    def __init__(self, session: ClientSession) -> None:
        self.session = session

    async def token(self, path: str) -> str:
        response = await self.session.get(path)
        assert response.status == 200, (path, response.status)
        return CSRF.search(await response.text()).group(1)

    async def register(self, museum_id: str, name: str = "", password: str = PASSWORD):
        token = await self.token("/dashboard/register")
        return await self.session.post(
            "/dashboard/register",
            data={"csrf_token": token, "museum_id": museum_id, "name": name or museum_id.title(), "password": password},
            allow_redirects=False,
        )

    async def login(self, museum_id: str, password: str = PASSWORD):
        token = await self.token("/dashboard/login")
        return await self.session.post(
            "/dashboard/login",
            data={"csrf_token": token, "museum_id": museum_id, "password": password},
            allow_redirects=False,
        )

    async def logout(self):
        token = await self.token("/dashboard/paintings")
        return await self.session.post("/dashboard/logout", data={"csrf_token": token}, allow_redirects=False)

    async def add(self, image: bytes | None, filename: str = "painting.png", token: str | None = None, **fields):
        form = FormData(default_to_multipart=True)  # as a browser sends an enctype="multipart/form-data" form
        form.add_field("csrf_token", token or await self.token("/dashboard/paintings/new"))
        values = {"title": "Untitled", "artist": "Artist", "year": "1600", "medium": "oil", "description": "Text"}
        for name, value in {**values, **fields}.items():
            form.add_field(name, value)
        if image is not None:
            form.add_field("image", image, filename=filename, content_type="application/octet-stream")
        return await self.session.post("/dashboard/paintings/new", data=form, allow_redirects=False)

    async def edit(self, painting_id: str, image: bytes | None = None, **fields):
        token = await self.token("/dashboard/paintings/new")
        form = FormData()
        form.add_field("csrf_token", token)
        for name, value in fields.items():
            form.add_field(name, value)
        if image is not None:
            form.add_field("image", image, filename="new.png", content_type="image/png")
        else:
            form.add_field("image", b"", filename="", content_type="application/octet-stream")
        return await self.session.post(f"/dashboard/paintings/{painting_id}/edit", data=form, allow_redirects=False)

    async def delete(self, painting_id: str):
        token = await self.token("/dashboard/paintings/new")
        return await self.session.post(
            f"/dashboard/paintings/{painting_id}/delete", data={"csrf_token": token}, allow_redirects=False
        )


@pytest.fixture
async def browser(server):
    async with ClientSession(base_url=server.url, cookie_jar=CookieJar(unsafe=True)) as session:
        yield Manager(session)


@pytest.fixture
async def other_browser(server):
    async with ClientSession(base_url=server.url, cookie_jar=CookieJar(unsafe=True)) as session:
        yield Manager(session)


@pytest.fixture
async def api(server):
    async with ClientSession(base_url=server.url) as session:
        yield session


@pytest.fixture
async def manager(browser, request):
    """A logged-in manager of a museum named after the test."""
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:8]
    museum = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.originalname)[:50] + "-" + digest
    response = await browser.register(museum)
    assert response.status == 302, await response.text()
    browser.museum = museum
    return browser


async def museum_paintings(api, museum: str) -> list[dict]:
    response = await api.get(f"/api/list-museum/{museum}")
    return await response.json() if response.status == 200 else []


async def predicted_ids(api, seed: int) -> list[str]:
    response = await api.post("/api/predict", data=photo_of(seed), headers={"Content-Type": "image/jpeg"})
    assert response.status == 200
    return [match["id"] for match in await response.json()]


async def wait_for(predicate, timeout: float = 40.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.5)


def image_files(data_dir) -> set[str]:
    directory = data_dir / "images"
    return {p.name for p in directory.iterdir()} if directory.is_dir() else set()


# --- accounts ----------------------------------------------------------------------------


async def test_register_logout_and_login(browser):
    response = await browser.register("flow-museum", "Flow Museum")
    assert response.status == 302
    assert response.headers["Location"] == "/dashboard/paintings"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    page = await (await browser.session.get("/dashboard/paintings")).text()
    assert "Paintings of Flow Museum" in page

    assert (await browser.logout()).status == 302
    logged_out = await browser.session.get("/dashboard/paintings", allow_redirects=False)
    assert logged_out.status == 302
    assert logged_out.headers["Location"] == "/dashboard/login"

    wrong = await browser.login("flow-museum", "not the password")
    assert wrong.status == 401
    assert "wrong" in await wrong.text()

    right = await browser.login("flow-museum")
    assert right.status == 302
    assert "Flow Museum" in await (await browser.session.get("/dashboard/paintings")).text()


async def test_failed_logins_are_limited(browser):
    assert (await browser.register("guessed-museum")).status == 302
    assert (await browser.logout()).status == 302

    # Other tests' failed logins from 127.0.0.1 may still be in the window, so fewer guesses than
    # the 5 allowed may reach the limit.
    statuses = [(await browser.login("guessed-museum", "a wrong guess")).status for _ in range(5)]
    assert statuses[0] == 401
    assert set(statuses) <= {401, 429}
    # Even the right password waits until the oldest failure leaves the window.
    blocked = await browser.login("guessed-museum")
    assert blocked.status == 429
    wait = int(blocked.headers["Retry-After"])
    assert 1 <= wait <= LOGIN_WINDOW
    assert f"wait {wait} seconds" in await blocked.text()

    await asyncio.sleep(LOGIN_WINDOW)
    assert (await browser.login("guessed-museum")).status == 302


@pytest.mark.parametrize(
    "museum_id, password, status, fragment",
    [
        ("taken-museum", PASSWORD, 409, "already registered"),
        ("bad id!", PASSWORD, 422, "museum_id"),
        ("short-password", "short", 422, "password"),
    ],
)
async def test_register_rejects_bad_input(browser, other_browser, museum_id, password, status, fragment):
    await other_browser.register("taken-museum")
    response = await browser.register(museum_id, password=password)
    assert response.status == status
    assert fragment in await response.text()


async def test_session_cookie_cannot_be_forged(server):
    jar = CookieJar(unsafe=True)
    async with ClientSession(base_url=server.url, cookie_jar=jar) as session:
        session.cookie_jar.update_cookies({"pain_session": '{"session": {"museum": "flow-museum"}}'})
        response = await session.get("/dashboard/paintings", allow_redirects=False)
        assert response.status == 302
        assert response.headers["Location"] == "/dashboard/login"


# --- CSRF --------------------------------------------------------------------------------


async def test_forms_need_the_csrf_token(manager, other_browser, data_dir):
    stranger_token = await other_browser.token("/dashboard/login")
    before = image_files(data_dir)

    for token in ("", "forged-token", stranger_token):
        response = await manager.add(png(render_painting(40)), token=token or "x")
        assert response.status == 403
        assert "csrf_token" in await response.text()
    assert image_files(data_dir) == before

    missing = await manager.session.post("/dashboard/logout", data={}, allow_redirects=False)
    assert missing.status == 403
    still_in = await manager.session.get("/dashboard/paintings", allow_redirects=False)
    assert still_in.status == 200

    login = await other_browser.session.post(
        "/dashboard/login", data={"museum_id": manager.museum, "password": PASSWORD}, allow_redirects=False
    )
    assert login.status == 403


# --- paintings ---------------------------------------------------------------------------


async def test_upload_is_recognisable_without_training(manager, api, data_dir):
    response = await manager.add(png(render_painting(21)), title="The Upload", artist="Painter", year="1620")
    assert response.status == 302
    [painting] = await museum_paintings(api, manager.museum)
    assert painting["name"] == "The Upload"
    assert painting["artist"] == "Painter"

    ids = await wait_for(lambda: predicted_ids(api, 21))
    assert ids[0] == painting["id"]

    image = await api.get(f"/user_content/{painting['image_path']}")
    assert image.status == 200
    assert (await image.read())[:3] == b"\xff\xd8\xff"  # stored as JPEG
    assert painting["image_path"] in image_files(data_dir)


async def test_edit_text_and_replace_image(manager, api):
    assert (await manager.add(png(render_painting(22)), title="Before")).status == 302
    [painting] = await museum_paintings(api, manager.museum)
    await wait_for(lambda: predicted_ids(api, 22))

    edited = await manager.edit(painting["id"], title="After", artist="New artist", description="New text")
    assert edited.status == 302
    after = await (await api.get(f"/api/paintings/{painting['id']}")).json()
    assert (after["name"], after["artist"], after["description"]) == ("After", "New artist", "New text")

    replaced = await manager.edit(painting["id"], image=png(render_painting(23)), title="Replaced")
    assert replaced.status == 302
    [new] = await museum_paintings(api, manager.museum)
    assert new["id"] != painting["id"]
    assert new["name"] == "Replaced"
    assert (await api.get(f"/api/paintings/{painting['id']}")).status == 404
    assert (await api.get(f"/user_content/{painting['image_path']}")).status == 404

    assert (await wait_for(lambda: predicted_ids(api, 23)))[0] == new["id"]
    assert painting["id"] not in await predicted_ids(api, 22)


async def test_deleted_painting_never_appears_again(manager, api, data_dir):
    assert (await manager.add(png(render_painting(24)), title="Short-lived")).status == 302
    [painting] = await museum_paintings(api, manager.museum)
    await wait_for(lambda: predicted_ids(api, 24))

    confirm = await manager.session.get(f"/dashboard/paintings/{painting['id']}/delete")
    assert "Short-lived" in await confirm.text()
    assert (await manager.delete(painting["id"])).status == 302

    # At once, before any predictor has synced: the web layer drops ids the catalogue lost.
    assert painting["id"] not in await predicted_ids(api, 24)
    assert (await api.get(f"/api/paintings/{painting['id']}")).status == 404
    assert await museum_paintings(api, manager.museum) == []
    assert painting["image_path"] not in image_files(data_dir)
    await asyncio.sleep(5)  # the predictors' sync interval, twice over
    assert painting["id"] not in await predicted_ids(api, 24)


async def test_manager_cannot_touch_another_museums_painting(manager, other_browser, api):
    assert (await manager.add(png(render_painting(25)), title="Mine")).status == 302
    [painting] = await museum_paintings(api, manager.museum)
    assert (await other_browser.register("the-other-museum")).status == 302
    path = f"/dashboard/paintings/{painting['id']}"

    for page in ("edit", "delete"):
        response = await other_browser.session.get(f"{path}/{page}")
        assert response.status == 403
        assert "another museum" in await response.text()
    assert (await other_browser.edit(painting["id"], title="Stolen")).status == 403
    assert (await other_browser.edit(painting["id"], image=png(render_painting(26)), title="Stolen")).status == 403
    assert (await other_browser.delete(painting["id"])).status == 403

    assert await museum_paintings(api, manager.museum) == [painting]
    assert await museum_paintings(api, "the-other-museum") == []


def truncated_png() -> bytes:
    data = png(render_painting(27))
    return data[: len(data) // 2]


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "image, fields, status, fragment",
    [
        (None, {}, 400, "image: missing"),
        (b"", {}, 400, "image"),
        (b"just some text", {}, 422, "not an image"),
        ("truncated", {}, 422, "truncated"),
        ("bomb", {}, 413, "pixels"),
        (b"\xff" * 2_100_000, {}, 413, "server.max_upload_bytes"),
        ("valid", {"title": ""}, 422, "title: missing"),
        ("valid", {"title": "x" * 301}, 422, "title"),
        ("valid", {"description": "nul \x00 byte"}, 422, "NUL"),
    ],
)
async def test_bad_uploads_are_rejected_and_store_nothing(manager, api, data_dir, image, fields, status, fragment):
    image = {"truncated": truncated_png, "bomb": bomb_png, "valid": lambda: png(render_painting(28))}.get(
        image, lambda: image
    )() if isinstance(image, str) else image
    before = image_files(data_dir)
    response = await manager.add(image, **fields)
    assert response.status == status
    page = await response.text()
    assert fragment in page
    assert "<form" in page or status == 413  # the form comes back with the message, or the error page
    assert image_files(data_dir) == before
    assert await museum_paintings(api, manager.museum) == []


async def test_form_with_wrong_content_type_is_415(manager):
    token = await manager.token("/dashboard/paintings/new")
    response = await manager.session.post(
        "/dashboard/paintings/new", data={"csrf_token": token, "title": "x"}, allow_redirects=False
    )
    assert response.status == 415
    assert "multipart/form-data" in await response.text()


def as_mode(rgb: np.ndarray, kind: str) -> bytes:
    image = Image.fromarray(rgb)
    buffer = io.BytesIO()
    if kind == "cmyk":
        image.convert("CMYK").save(buffer, format="JPEG", quality=92)
    elif kind == "16-bit":
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
        Image.fromarray(grey).save(buffer, format="PNG")
    elif kind == "palette":
        image.convert("P", palette=Image.Palette.ADAPTIVE).save(buffer, format="PNG")
    elif kind == "alpha":
        rgba = image.convert("RGBA")
        rgba.putalpha(200)
        rgba.save(buffer, format="PNG")
    elif kind == "animated":
        noise = Image.fromarray(np.zeros_like(rgb))
        image.save(buffer, format="GIF", save_all=True, append_images=[noise], duration=100, loop=0)
    elif kind == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6  # display rotated 90 degrees clockwise
        Image.fromarray(np.ascontiguousarray(np.rot90(rgb))).save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["cmyk", "16-bit", "palette", "alpha", "animated", "exif-rotated"])
async def test_unusual_images_are_stored_as_upright_rgb_jpeg(manager, api, data_dir, kind):
    painting = render_painting(29, size=(400, 560))  # portrait: width 400, height 560
    response = await manager.add(as_mode(painting, kind), filename=f"upload-{kind}.img", title=kind)
    assert response.status == 302, await response.text()
    [stored] = await museum_paintings(api, manager.museum)
    with Image.open(data_dir / "images" / stored["image_path"]) as image:
        assert image.format == "JPEG"
        assert image.mode == "RGB"
        assert image.size == (400, 560)


async def test_sql_and_html_in_fields_are_stored_and_shown_escaped(manager, api):
    title = "Robert'); DROP TABLE painting;--"
    description = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'
    response = await manager.add(png(render_painting(30)), title=title, description=description, artist="<b>Bold</b>")
    assert response.status == 302
    [painting] = await museum_paintings(api, manager.museum)
    assert painting["name"] == title
    assert painting["description"] == description
    assert painting["artist"] == "<b>Bold</b>"

    listing = await (await manager.session.get("/dashboard/paintings")).text()
    assert "&lt;b&gt;Bold&lt;/b&gt;" in listing
    assert "<b>Bold</b>" not in listing
    edit_page = await (await manager.session.get(f"/dashboard/paintings/{painting['id']}/edit")).text()
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in edit_page
    assert "<script>alert" not in edit_page
    assert (await api.get("/api/museums")).status == 200  # the table is still there


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/paintings/no-such-painting/edit",
        "/dashboard/paintings/no-such-painting/delete",
        "/dashboard/paintings/..%2F..%2Fpain.sqlite3/edit",
        "/dashboard/..%2F..%2Fpain.sqlite3",
    ],
)
async def test_unknown_ids_and_traversal_are_404(manager, path):
    response = await manager.session.get(path, allow_redirects=False)
    assert response.status == 404
    assert "text/html" in response.headers["Content-Type"]


async def test_upload_name_from_the_client_is_never_used(manager, api, data_dir):
    response = await manager.add(png(render_painting(31)), filename="../../../etc/passwd.png")
    assert response.status == 302
    [painting] = await museum_paintings(api, manager.museum)
    assert re.fullmatch(r"[0-9a-f]{32}\.jpg", painting["image_path"])
    assert (data_dir / "images" / painting["image_path"]).is_file()
    assert not (data_dir.parent / "etc").exists()


async def test_pages_need_a_login(server):
    async with ClientSession(base_url=server.url, cookie_jar=CookieJar(unsafe=True)) as session:
        for path in ("/dashboard/paintings", "/dashboard/paintings/new", "/dashboard/training", "/dashboard"):
            response = await session.get(path, allow_redirects=False)
            assert response.status == 302, path
            assert response.headers["Location"] == "/dashboard/login"
        form = FormData()
        form.add_field("title", "x")
        response = await session.post("/dashboard/paintings/new", data=form, allow_redirects=False)
        assert response.status == 401


async def test_pages_carry_security_headers(manager):
    response = await manager.session.get("/dashboard/paintings")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


# --- training ----------------------------------------------------------------------------


async def test_training_page_draws_recorded_loss_curve(manager, data_dir):
    page = await (await manager.session.get("/dashboard/training")).text()
    assert "idle" in page
    assert "No epochs reported yet" in page

    database = open_database(data_dir)
    database.record_run("recorded-run", total=3)
    epochs = [{"epoch": n, "train_loss": 1.0 / n, "val_loss": 1.2 / n} for n in (1, 2, 3)]
    database.update_run("recorded-run", state="succeeded", done=3, epochs=epochs, version="v0009")
    database.close()

    page = await (await manager.session.get("/dashboard/training")).text()
    assert '<svg class="chart"' in page
    assert page.count('<polyline class="chart-') == 2
    assert "recorded-run" in page
    assert "0.4" in page  # the validation loss of epoch 3, in the table


def test_training_page_names_an_interrupted_run():
    # The template alone: a live trainer reads the last run once, when it starts.
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True)
    environment.filters["loss"] = format_loss
    error = "the trainer stopped during this run (server restart or crash); continue it with pain train --resume abc123"
    last_run = {"run_id": "abc123", "state": "interrupted", "version": None, "error": error, "resumable": True}
    page = environment.get_template("training.html").render(
        training={"state": "idle", "last_run": last_run}, runs=[], chart=None, epochs=[], refresh=False, museum="museum-1"
    )

    assert "No run in progress." in page
    assert 'The last recorded run, abc123, is <span class="state state-interrupted">interrupted</span>.' in page
    assert "pain train --resume abc123" in page


def test_loss_chart_runs_stages_one_after_another():
    # Each stage numbers its epochs from 0; the chart must not draw a stage back over the one before.
    epochs = [{"stage": stage, "epoch": n, "train_loss": 1.0 - 0.1 * n} for stage in ("reconstruction", "head") for n in (0, 1)]
    svg = str(loss_chart_svg(epochs))
    points = re.search(r'<polyline class="[^"]*" fill="none" points="([^"]+)"', svg).group(1)
    xs = [float(pair.split(",")[0]) for pair in points.split()]

    assert len(xs) == 4
    assert xs == sorted(xs)
    assert len(set(xs)) == 4


async def test_training_page_follows_a_real_run(manager, api):
    assert (await manager.add(png(render_painting(32)), title="For training")).status == 302
    started = await api.post("/api/train", headers={"Authorization": f"Bearer {TOKEN}"})
    assert started.status == 202
    run_id = (await started.json())["run_id"]

    async def finished() -> str | None:
        page = await (await manager.session.get("/dashboard/training")).text()
        return page if f"<dd>{run_id}</dd>" in page and "state-succeeded" in page else None

    page = await wait_for(finished, timeout=240)
    assert "<progress" in page, page
    assert re.search(r"v\d{4}", page)


async def test_bad_dashboard_input_crashed_no_worker(api):
    """Runs last in this module: every bad upload above left every actor running."""
    response = await api.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    status = await response.json()
    stack = [status["tree"]]
    while stack:
        node = stack.pop()
        assert node["restart_count"] == 0, node
        stack.extend(node.get("children", []))
    assert status["root_restarts"] == 0
    # The training run above publishes a version, so the lone predictor may still be loading it
    # (and serving meanwhile).
    assert status["pool"]["predictors"][0]["state"] in ("idle", "busy", "reloading")
