"""The HTTP API against a real aiohttp server on 127.0.0.1 and a real data directory."""

import io
import json

import cv2
import numpy as np
import pytest
from aiohttp import ClientSession, FormData
from PIL import Image

from live_server import LiveServer
from model.synthetic import photograph, render_painting
from pain_actors.config import Config
from pain_actors.engine_host import EngineHost

TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def data_dir(small_dataset, tmp_path_factory):
    """A data directory with the small dataset imported as museum 'estensi-test'."""
    directory = tmp_path_factory.mktemp("data")
    EngineHost(directory, Config().engine).import_dataset(str(small_dataset), "estensi-test")
    return directory


@pytest.fixture(scope="module")
def server(data_dir):
    with LiveServer(data_dir, token=TOKEN, predictors=1) as live:
        yield live


@pytest.fixture
async def client(server):
    async with ClientSession(base_url=server.url) as session:
        yield session


def jpeg(rgb) -> bytes:
    ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1])
    assert ok
    return encoded.tobytes()


def photo_of(seed: int) -> bytes:
    return jpeg(photograph(render_painting(seed), seed=seed + 50))


async def test_predict_multipart_payload(client):
    form = FormData()
    form.add_field("payload", photo_of(2), filename="photo.jpg", content_type="image/jpeg")
    response = await client.post("/api/predict", data=form)
    assert response.status == 200
    results = await response.json()
    assert results[0]["name"] == "Title 2"
    assert results[0]["museum"] == "estensi-test"
    assert set(results[0]) >= {"id", "name", "artist", "year", "medium", "description", "image_path", "image_url", "score"}

    image = await client.get(f"/user_content/{results[0]['image_path']}")
    assert image.status == 200
    assert "immutable" in image.headers["Cache-Control"]


async def test_predict_raw_body_with_museum_and_limit(client):
    response = await client.post("/api/predict?museum=estensi-test&limit=1", data=photo_of(1))
    assert response.status == 200
    results = await response.json()
    assert len(results) == 1
    assert results[0]["name"] == "Title 1"


async def test_predict_unknown_painting_returns_empty_list(client):
    response = await client.post("/api/predict", data=photo_of(77))
    assert response.status == 200
    assert await response.json() == []


async def test_predict_unknown_museum_is_404(client):
    response = await client.post("/api/predict?museum=elsewhere", data=photo_of(1))
    assert response.status == 404
    assert "museum" in (await response.json())["error"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (b"", 400, "payload"),
        (b"definitely not an image", 422, "not an image"),
    ],
)
async def test_predict_bad_bodies(client, body, status, fragment):
    response = await client.post("/api/predict", data=body, headers={"Content-Type": "image/jpeg"})
    assert response.status == status
    assert fragment in (await response.json())["error"]


async def test_predict_wrong_content_type(client):
    response = await client.post("/api/predict", data=b"museum=1", headers={"Content-Type": "text/plain"})
    assert response.status == 415
    assert "multipart/form-data" in (await response.json())["error"]


async def test_predict_truncated_jpeg(client):
    data = photo_of(3)
    response = await client.post("/api/predict", data=data[: len(data) // 3])
    assert response.status == 422
    assert "truncated" in (await response.json())["error"]


async def test_predict_upload_over_limit(client):
    response = await client.post("/api/predict", data=b"\xff" * 2_500_000)
    assert response.status == 413
    assert "server.max_upload_bytes" in (await response.json())["error"]


async def test_predict_decompression_bomb(client):
    buffer = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(buffer, format="PNG")
    response = await client.post("/api/predict", data=buffer.getvalue())
    assert response.status == 413
    assert "limit" in (await response.json())["error"]


async def test_predict_multipart_without_payload(client):
    form = FormData(default_to_multipart=True)
    form.add_field("museum", "estensi-test")
    response = await client.post("/api/predict", data=form)
    assert response.status == 400
    assert "payload" in (await response.json())["error"]


async def test_predict_empty_multipart_file(client):
    form = FormData()
    form.add_field("payload", b"", filename="photo.jpg", content_type="image/jpeg")
    response = await client.post("/api/predict", data=form)
    assert response.status == 400
    assert "empty" in (await response.json())["error"]


@pytest.mark.parametrize("limit", ["zero", "0", "500"])
async def test_predict_invalid_limit(client, limit):
    response = await client.post(f"/api/predict?limit={limit}", data=photo_of(1))
    assert response.status == 400
    assert "limit" in (await response.json())["error"]


async def test_paintings_and_museums(client):
    museums = await (await client.get("/api/museums")).json()
    assert museums == [{"id": "estensi-test", "name": "estensi-test", "paintings": 4}]

    listed = await (await client.get("/api/list-museum/estensi-test")).json()
    assert sorted(p["name"] for p in listed) == ["Title 0", "Title 1", "Title 2", "Title 3"]

    painting = await (await client.get(f"/api/paintings/{listed[0]['id']}")).json()
    assert painting == listed[0]


@pytest.mark.parametrize(
    "path",
    ["/api/paintings/nope", "/api/list-museum/nope", "/user_content/..%2Fcatalogue.json", "/user_content/x.png", "/nowhere"],
)
async def test_unknown_ids_and_traversal_give_404(client, path):
    response = await client.get(path)
    assert response.status == 404
    assert "error" in await response.json()


async def test_healthz(client):
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok" and body["ready"] is True
    assert body["paintings"] == 4


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/api/status"), ("POST", "/api/reload"), ("POST", "/api/train"), ("POST", "/api/admin/kill")],
)
async def test_admin_endpoints_need_the_token(client, method, path):
    missing = await client.request(method, path)
    assert missing.status == 401
    assert "Authorization" in (await missing.json())["error"]

    wrong = await client.request(method, path, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status == 401
    assert "wrong" in (await wrong.json())["error"]

    bare = await client.request(method, path, headers={"Authorization": TOKEN})
    assert bare.status == 401
    assert "not a bearer token" in (await bare.json())["error"]


async def test_wrong_method_names_the_right_one(client):
    response = await client.get("/api/predict")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"] == "method GET is not allowed for /api/predict; use POST"


async def test_unknown_painting_says_where_ids_are(client):
    response = await client.get("/api/paintings/nope")
    assert response.status == 404
    assert (await response.json())["error"] == "painting 'nope' not found; GET /api/list-museum/{museum} lists the ids"


async def test_status_shows_predictors_versions_and_tree(client):
    response = await client.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    body = await response.json()
    [predictor] = body["pool"]["predictors"]
    assert predictor["version"] == body["pool"]["target_version"] == "v0001"
    assert body["training"] == {"state": "idle"}
    assert [child["name"] for child in body["tree"]["children"]] == ["predictors", "trainer", "coordinator"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"mode": "sigkill"}, 400, "actor"),
        ({"actor": "predictor-1", "mode": "gently"}, 400, "mode"),
        ({"actor": "nobody"}, 404, "nobody"),
        ({"actor": "predictors", "mode": "raise"}, 400, "sigkill"),
        ({"actor": "predictor-1", "signal": 9}, 400, "signal: unknown field"),
    ],
)
async def test_kill_rejects_bad_requests(client, body, status, fragment):
    response = await client.post("/api/admin/kill", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == status
    assert fragment in (await response.json())["error"]


async def test_reload_to_unknown_version_is_404(client):
    response = await client.post("/api/reload", json={"version": "v9999"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 404
    assert "v9999" in (await response.json())["error"]


async def test_reload_rejects_unknown_field(client):
    response = await client.post("/api/reload", json={"foo": 1}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 400
    assert (await response.json())["error"] == 'foo: unknown field; this endpoint takes only "version"'


async def test_admin_endpoints_disabled_without_a_configured_token(data_dir):
    with LiveServer(data_dir, token="", predictors=1) as live:
        async with ClientSession(base_url=live.url) as session:
            response = await session.post("/api/train", headers={"Authorization": "Bearer anything"})
            assert response.status == 403
            assert "server.admin_token" in (await response.json())["error"]


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def photo_rgb(seed: int) -> np.ndarray:
    return photograph(render_painting(seed), seed=seed + 50)


def cmyk_jpeg(seed: int) -> bytes:
    return encoded(Image.fromarray(photo_rgb(seed)).convert("CMYK"), "JPEG", quality=90)


def grey_16_bit_png(seed: int) -> bytes:
    grey = cv2.cvtColor(photo_rgb(seed), cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257
    return encoded(Image.fromarray(grey), "PNG")


def palette_png(seed: int) -> bytes:
    return encoded(Image.fromarray(photo_rgb(seed)).convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG")


def alpha_png(seed: int) -> bytes:
    rgba = Image.fromarray(photo_rgb(seed)).convert("RGBA")
    alpha = np.full(rgba.size[::-1], 255, np.uint8)
    alpha[:40, :] = 0  # a transparent strip, as cut-out photos have
    rgba.putalpha(Image.fromarray(alpha))
    return encoded(rgba, "PNG")


def exif_rotated_jpeg(seed: int) -> bytes:
    """A phone photo stored sideways with EXIF orientation 6 (display rotated 90 degrees clockwise)."""
    sideways = Image.fromarray(np.ascontiguousarray(np.rot90(photo_rgb(seed))))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(sideways, "JPEG", quality=90, exif=exif.tobytes())


def animated_gif(seed: int) -> bytes:
    first = Image.fromarray(photo_rgb(seed))
    noise = Image.fromarray(np.random.default_rng(seed).integers(0, 255, (768, 1024, 3), dtype=np.uint8))
    return encoded(first, "GIF", save_all=True, append_images=[noise], duration=200, loop=0)


@pytest.mark.parametrize(
    "make, content_type",
    [
        (cmyk_jpeg, "image/jpeg"),
        (palette_png, "image/png"),
        (alpha_png, "image/png"),
        (exif_rotated_jpeg, "image/jpeg"),
        (animated_gif, "image/gif"),
    ],
)
async def test_predict_unusual_image_formats_match(client, make, content_type):
    response = await client.post("/api/predict", data=make(1), headers={"Content-Type": content_type})
    assert response.status == 200
    results = await response.json()
    assert results, f"{make.__name__}: no match"
    assert results[0]["name"] == "Title 1"


async def test_predict_16_bit_greyscale_is_accepted(client):
    # Greyscale loses the colour the CNN votes use, so a match is not guaranteed; a wrong one is not allowed.
    response = await client.post("/api/predict", data=grey_16_bit_png(2), headers={"Content-Type": "image/png"})
    assert response.status == 200
    assert all(result["name"] == "Title 2" for result in await response.json())


async def test_predict_malformed_multipart_is_400(client):
    body = b"--xyz\r\nContent-Disposition: form-data; name=payload\r\n\r\nunterminated"
    response = await client.post(
        "/api/predict", data=body, headers={"Content-Type": "multipart/form-data; boundary=xyz"}
    )
    assert response.status == 400
    assert "payload" in (await response.json())["error"]


async def test_predict_multipart_with_non_image_file_is_422(client):
    form = FormData()
    form.add_field("payload", b"%PDF-1.4 not an image", filename="photo.pdf", content_type="application/pdf")
    response = await client.post("/api/predict", data=form)
    assert response.status == 422
    assert "payload" in (await response.json())["error"]


async def test_user_content_sends_the_stored_bytes(client, data_dir):
    painting = (await (await client.get("/api/list-museum/estensi-test")).json())[0]
    response = await client.get(f"/user_content/{painting['image_path']}")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert await response.read() == (data_dir / "images" / painting["image_path"]).read_bytes()


async def test_openapi_and_admin_metrics_are_served(client):
    document = await (await client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert (await client.get("/metrics")).status == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status == 401
    metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert metrics.status == 200
    assert "pain_predictor_pool_size 1.0" in await metrics.text()


def listening_sockets_of(data_dir) -> list[tuple[str, int, int]]:
    """(address, port, pid) of every TCP socket that a process of the service at data_dir listens on.

    The service's processes are recognised by the PAIN_STORAGE_DATA_DIR they inherited.
    """
    import os
    from pathlib import Path

    listening = {}  # socket inode -> (address, port)
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].rsplit(":", 1)
                listening[f"socket:[{fields[9]}]"] = (address, int(port, 16))

    marker = f"PAIN_STORAGE_DATA_DIR={data_dir}".encode()
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if marker not in (process / "environ").read_bytes().split(b"\0"):
                continue
            for fd in (process / "fd").iterdir():
                target = os.readlink(fd)
                if target in listening:
                    found.append((*listening[target], int(process.name)))
        except OSError:
            continue
    return found


async def test_no_socket_listens_on_all_interfaces(server, data_dir):
    sockets = listening_sockets_of(data_dir)
    # The HTTP port and at least the actor system's admin port.
    assert {port for _, port, _ in sockets} >= {server.port, server.admin_port}
    # /proc/net/tcp writes 127.0.0.1 as 0100007F and 0.0.0.0 as 00000000.
    assert {address for address, _, _ in sockets} == {"0100007F"}, sockets


async def test_bad_input_crashed_no_worker(client):
    """Runs last in this module: every bad input above left every actor running."""
    status = await (await client.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})).json()
    stack = [status["tree"]]
    while stack:
        node = stack.pop()
        assert node["restart_count"] == 0, node
        stack.extend(node.get("children", []))
    assert status["root_restarts"] == 0

    response = await client.post("/api/predict", data=photo_of(0))
    assert response.status == 200
    assert (await response.json())[0]["name"] == "Title 0"


async def test_request_id_on_response_and_log_lines(client, server):
    response = await client.post("/api/predict", data=b"this is not an image", headers={"Content-Type": "image/jpeg"})
    assert response.status == 422
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 16

    # The front end's request line and the predictor's rejection both carry it.
    lines = [line for line in server.log_path.read_text().splitlines() if request_id in line]
    events = {line.split('"event": "')[1].split('"')[0] for line in lines if '"event": "' in line}
    assert {"request", "photo_rejected"} <= events

    other = await client.get("/healthz")
    assert other.headers["X-Request-ID"] != request_id


async def test_server_log_is_json_lines(client, server):
    response = await client.get("/healthz")
    assert response.status == 200

    # Thespian's and aiohttp's records too, not only the service's own structlog lines.
    lines = server.log_path.read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert all("event" in record and "level" in record for record in records)
    assert any(record.get("logger") == "root" and "Actor System" in record["event"] for record in records)
