"""End to end in headless Chromium: a museum registers and uploads paintings, a visitor finds one.

Uses Debian's Chromium through Playwright (no browser download). Without a Chromium binary
the tests skip with a message on how to install one. Set PAIN_SCREENSHOT_DIR to keep the screenshots
(docs/screenshots/ holds the ones the docs show).
"""

import json
import os
import shutil
import urllib.request
from pathlib import Path

import cv2
import pytest

from live_server import LiveServer, wait_until
from model.synthetic import photograph, render_painting
from workers.database import open_database

CHROMIUM = os.environ.get("PAIN_CHROMIUM", "/usr/bin/chromium")
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1100, "height": 820}}
PASSWORD = "browser test password"
PAINTINGS = [
    (41, "Portrait of a Lady", "Giulia Rossi", "1514", "oil on poplar", "A woman in a green dress stands by a window."),
    (42, "Harbour at Dusk", "Marco Bianchi", "1632", "oil on canvas", "Ships return to a harbour under an orange sky."),
    (43, "Still Life with Lemons", "Anna Verdi", "1701", "tempera on panel", "Lemons and a silver jug on a table."),
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
expect = sync_api.expect


@pytest.fixture(scope="module")
def chromium_path():
    path = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).is_file() else None)
    if path is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` or set PAIN_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Painting files to upload, and visitor photos: of painting 42, and of a painting not in the collection."""
    directory = tmp_path_factory.mktemp("browser-images")
    for seed, *_ in PAINTINGS:
        cv2.imwrite(str(directory / f"painting-{seed}.png"), render_painting(seed)[..., ::-1])
    cv2.imwrite(str(directory / "photo-42.jpg"), photograph(render_painting(42), seed=4)[..., ::-1])
    cv2.imwrite(str(directory / "photo-stranger.jpg"), photograph(render_painting(97), seed=4)[..., ::-1])
    # A camera that films painting 42: Chromium plays an MJPEG file as its fake camera.
    ok, frame = cv2.imencode(".jpg", photograph(render_painting(42), seed=6, output_size=(1280, 960))[..., ::-1])
    assert ok
    (directory / "camera.mjpeg").write_bytes(frame.tobytes() * 30)
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("browser-data"), predictors=1) as live:
        yield live


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    directory = Path(os.environ.get("PAIN_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def browser(chromium_path, images):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            args=[
                "--use-fake-ui-for-media-stream",  # grant the camera without a prompt
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-video-capture={images / 'camera.mjpeg'}",
            ],
        )
        yield browser
        browser.close()


def watch_errors(page) -> list[str]:
    """Collect uncaught script errors and console errors of a page."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    page.on("console", lambda message: errors.append(f"console: {message.text}") if message.type == "error" else None)
    return errors


def predicted_names(server, photo: Path) -> list[str]:
    request = urllib.request.Request(
        server.url + "/api/predict", data=photo.read_bytes(), headers={"Content-Type": "image/jpeg"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return [match["name"] for match in json.loads(response.read())]


def test_museum_uploads_paintings_in_the_dashboard(browser, server, images, screenshots):
    context = browser.new_context(base_url=server.url, **DESKTOP)
    page = context.new_page()
    errors = watch_errors(page)

    page.goto("/dashboard/register")
    page.fill("input[name=museum_id]", "galleria-e2e")
    page.fill("input[name=name]", "Galleria E2E")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/paintings")
    assert "Galleria E2E" in page.inner_text("h1")

    for seed, title, artist, year, medium, description in PAINTINGS:
        page.goto("/dashboard/paintings/new")
        page.set_input_files("input[name=image]", str(images / f"painting-{seed}.png"))
        page.fill("input[name=title]", title)
        page.fill("input[name=artist]", artist)
        page.fill("input[name=year]", year)
        page.fill("input[name=medium]", medium)
        page.fill("textarea[name=description]", description)
        page.click("form.card button[type=submit]")
        page.wait_for_url("**/dashboard/paintings")
        assert title in page.inner_text(".flash")

    titles = page.locator(".painting h2").all_inner_texts()
    assert sorted(titles) == sorted(p[1] for p in PAINTINGS)
    page.screenshot(path=str(screenshots / "dashboard-paintings.png"), full_page=True)

    # The loss curve, drawn from a run recorded the way the trainer will record its epochs.
    # NOTE: these loss values are sample numbers written by this test, not a real training run.
    database = open_database(server.data_dir)
    database.record_run("example-run", total=3)
    epochs = [{"epoch": n, "train_loss": round(0.9 * 0.72**n, 4), "val_loss": round(1.0 * 0.78**n + 0.05, 4)} for n in range(1, 9)]
    database.update_run("example-run", state="succeeded", done=3, epochs=epochs, version="v0001")
    database.close()
    page.goto("/dashboard/training")
    assert page.locator("svg.chart polyline").count() == 2
    page.screenshot(path=str(screenshots / "dashboard-training.png"), full_page=True)

    assert errors == []
    context.close()
    wait_until(lambda: predicted_names(server, images / "photo-42.jpg")[:1] == ["Harbour at Dusk"], 60, 1.0)


def test_visitor_finds_the_painting_from_a_chosen_photo(browser, server, images, screenshots):
    context = browser.new_context(base_url=server.url, **PHONE)
    page = context.new_page()
    errors = watch_errors(page)

    page.goto("/")
    assert page.is_visible("#capture-view")
    page.wait_for_selector("#capture:enabled")  # the fake camera started
    page.screenshot(path=str(screenshots / "visitor-camera.png"))

    page.set_input_files("#file", str(images / "photo-42.jpg"))
    page.wait_for_selector("#results-view:not([hidden])", timeout=60_000)
    first = page.locator("#results li").first
    assert "Harbour at Dusk" in first.inner_text()
    page.screenshot(path=str(screenshots / "visitor-results.png"))

    first.locator("a").click()
    page.wait_for_selector("#painting-view:not([hidden])")
    expect(page.locator("#painting-title")).to_have_text("Harbour at Dusk")
    assert page.inner_text("#painting-artist") == "Marco Bianchi"
    assert page.inner_text("#painting-year") == "1632"
    assert page.inner_text("#painting-medium") == "oil on canvas"
    assert page.inner_text("#painting-museum") == "Galleria E2E"
    assert page.inner_text("#painting-description") == PAINTINGS[1][5]
    assert page.is_visible("#speak")
    page.wait_for_selector("#more:not([hidden])")
    more = page.locator("#more-list li").all_inner_texts()
    assert len(more) == 2
    assert not any("Harbour at Dusk" in item for item in more)
    page.screenshot(path=str(screenshots / "visitor-painting.png"), full_page=True)

    # A painting opened from "more from this museum" does not list the museum again.
    page.locator("#more-list a").first.click()
    page.wait_for_url("**/from-museum")
    expect(page.locator("#painting-title")).not_to_have_text("Harbour at Dusk")
    expect(page.locator("#painting-title")).not_to_be_empty()
    assert page.locator("#more").is_hidden()

    page.click("#speak")  # speechSynthesis exists in Chromium; speaking must not raise
    page.go_back()
    expect(page.locator("#painting-title")).to_have_text("Harbour at Dusk")
    assert errors == []
    context.close()


def test_visitor_photographs_the_painting_with_the_camera(browser, server, images):
    context = browser.new_context(base_url=server.url, **PHONE)
    page = context.new_page()
    errors = watch_errors(page)
    page.goto("/")
    page.wait_for_selector("#capture:enabled")
    page.click("#capture")
    page.wait_for_selector("#results-view:not([hidden])", timeout=60_000)
    assert "Harbour at Dusk" in page.locator("#results li").first.inner_text()
    assert errors == []
    context.close()


def test_visitor_sees_a_message_when_nothing_matches(browser, server, images):
    context = browser.new_context(base_url=server.url, **PHONE)
    page = context.new_page()
    page.goto("/")
    page.set_input_files("#file", str(images / "photo-stranger.jpg"))
    expect(page.locator("#message")).to_contain_text("No painting of the collection matches", timeout=60_000)
    assert page.is_visible("#capture-view")
    context.close()


def test_visitor_sees_busy_and_error_messages(browser, server, images):
    # A real 503 needs a full predictor queue, so here the browser gets one from a routed response.
    # The API's own 503 is covered by the actor tests.
    context = browser.new_context(base_url=server.url, **PHONE)
    page = context.new_page()
    page.goto("/")
    page.route(
        "**/api/predict",
        lambda route: route.fulfill(status=503, content_type="application/json", body='{"error": "queue full"}'),
    )
    page.set_input_files("#file", str(images / "photo-42.jpg"))
    expect(page.locator("#message")).to_contain_text("busy")
    assert page.is_hidden("#progress")
    page.unroute("**/api/predict")

    # A real 422 from the server: the file is not an image.
    not_an_image = images / "notes.jpg"
    not_an_image.write_bytes(b"these are not image bytes")
    page.set_input_files("#file", str(not_an_image))
    expect(page.locator("#message")).to_contain_text("could not be used", timeout=60_000)
    assert "not an image" in page.inner_text("#message")
    context.close()


def test_unknown_painting_link_says_so(browser, server):
    context = browser.new_context(base_url=server.url, **PHONE)
    page = context.new_page()
    page.goto("/#/painting/no-such-painting")
    expect(page.locator("#painting-message")).to_contain_text("no longer in the collection")
    context.close()
