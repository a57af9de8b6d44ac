"""The OpenAPI document against the app's routes, a schema-driven run against a live server, and /metrics.

The schema-driven run uses schemathesis to generate requests for every documented operation
from the document itself: random bodies, paths and query values. It sends them to a real server
with the actor tree and fails on any 5xx, or on any response that the document does not
describe. MAX_EXAMPLES per operation keeps `make test` short; set PAIN_SCHEMA_EXAMPLES higher for
a longer search.
"""

import os

import pytest
import schemathesis
from schemathesis import GenerationMode
from aiohttp import ClientSession
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.checks import not_a_server_error, positive_data_acceptance

from live_server import LiveServer, wait_until
from pain_actors.config import Config
from pain_actors.engine_host import EngineHost
from web.app import create_app
from web.openapi import DOCUMENT

TOKEN = "openapi-admin-token"
MAX_EXAMPLES = int(os.environ.get("PAIN_SCHEMA_EXAMPLES", "25"))
HTML_PATHS = ("/dashboard", "/static", "/")


@pytest.fixture(scope="module")
def data_dir(small_dataset, tmp_path_factory):
    directory = tmp_path_factory.mktemp("openapi-data")
    EngineHost(directory, Config().engine).import_dataset(str(small_dataset), "estensi-test")
    return directory


@pytest.fixture(scope="module")
def server(data_dir):
    with LiveServer(data_dir, token=TOKEN, predictors=1) as live:
        yield live


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/api/openapi.json")


def documented_routes() -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, operations in DOCUMENT["paths"].items() for method in operations}


def test_every_json_route_is_documented():
    app = create_app(Config())
    served = {
        (route.resource.canonical, route.method)
        for route in app.router.routes()
        if route.method != "HEAD" and not route.resource.canonical.startswith(HTML_PATHS[:2])
        and route.resource.canonical != "/"
    }
    assert served == documented_routes()


def test_document_is_served_and_valid(api_schema):
    operations = {(op.ok().path, op.ok().method.upper()) for op in api_schema.get_all_operations()}
    # schemathesis leaves out the operation that serves the document it was loaded from.
    assert operations == documented_routes() - {("/api/openapi.json", "GET")}


# NOTE: schemathesis.pytest.from_fixture fails under pytest 9 (it reads the removed
# Node._nodeid), so each operation's strategy is driven through Hypothesis directly.
OPERATIONS = sorted(documented_routes() - {("/api/openapi.json", "GET")})
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# Invalid data can only be generated where the document constrains something: a body, a number
# range. A path parameter that accepts any string has no invalid value.
CASES = [(path, method, GenerationMode.POSITIVE) for path, method in OPERATIONS] + [
    (path, "POST", GenerationMode.NEGATIVE) for path in ("/api/predict", "/api/reload", "/api/admin/kill")
]


@pytest.mark.parametrize("path, method, mode", CASES, ids=[f"{m} {p} {g.value}" for p, m, g in CASES])
def test_generated_requests_get_no_server_error(api_schema, server, path, method, mode):
    # No admin token is sent, so the admin operations respond with 401 and nothing is killed or trained.
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @FUZZ_SETTINGS
    def send(case):
        response = case.call(base_url=server.url, timeout=60)
        assert response.status_code < 500, f"{case.as_curl_command()}: {response.status_code} {response.text[:300]}"
        case.validate_response(response, checks=[not_a_server_error])
        if response.headers.get("Content-Type", "").startswith("application/json") and response.status_code >= 400:
            assert "error" in response.json()

    send()


@pytest.mark.parametrize("path, method", OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_responses_match_the_document(api_schema, server, path, method):
    """Valid requests get the statuses, content types, headers and bodies the document declares."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(FUZZ_SETTINGS, max_examples=max(5, MAX_EXAMPLES // 5))
    def send(case):
        # positive_data_acceptance is left out because the document cannot describe which random
        # bytes form an image, so a schema-valid photo may rightly get 422.
        case.call_and_validate(base_url=server.url, timeout=60, excluded_checks=[positive_data_acceptance])

    send()


# --- metrics -----------------------------------------------------------------------------


def scrape(server) -> dict[tuple[str, tuple], float]:
    """Every sample of GET /metrics as {(name, sorted labels): value}."""
    import urllib.request

    request = urllib.request.Request(server.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


async def test_metrics_count_requests_by_route_and_status(server):
    async with ClientSession(base_url=server.url) as session:
        for _ in range(3):
            assert (await session.get("/api/paintings/no-such-id")).status == 404
        assert (await session.get("/api/museums")).status == 200
        assert (await session.get("/no/such/path/1")).status == 404
        assert (await session.get("/no/such/path/2")).status == 404

    samples = scrape(server)
    missing = (("method", "GET"), ("route", "/api/paintings/{id}"), ("status", "404"))
    assert samples[("pain_http_requests_total", missing)] >= 3
    assert samples[("pain_http_request_duration_seconds_count", missing)] >= 3
    assert samples[("pain_http_requests_total", (("method", "GET"), ("route", "/api/museums"), ("status", "200")))] >= 1
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert samples[("pain_http_requests_total", unmatched)] >= 2
    assert not any("/no/such/path" in str(labels) for _, labels in samples)


def test_metrics_report_pool_versions_and_training(server):
    samples = scrape(server)
    assert samples[("pain_predictor_pool_size", ())] == 1
    assert samples[("pain_predictors", (("state", "idle"),))] == 1
    assert samples[("pain_model_target_version", ())] == 1  # v0001 from the import
    assert samples[("pain_model_version", (("predictor", "predictor-1"),))] == 1
    assert samples[("pain_training_state", (("state", "idle"),))] == 1
    assert samples[("pain_training_progress", ())] == 0
    assert samples[("pain_actors_up", ())] == 1
    assert samples[("pain_root_restarts", ())] == 0
    for actor in ("pain", "predictors", "predictor-1", "trainer", "coordinator"):
        assert samples[("pain_actor_restarts", (("actor", actor),))] == 0


def test_metrics_count_a_predictor_restart(server):
    """Runs last in this module, because it kills a predictor."""
    code, body = server.call("POST", "/api/admin/kill", {"actor": "predictor-1", "mode": "sigkill"})
    assert code == 202, body
    wait_until(lambda: scrape(server).get(("pain_actor_restarts", (("actor", "predictor-1"),))) == 1, 60)
    wait_until(lambda: scrape(server).get(("pain_predictors", (("state", "idle"),))) == 1, 120)
    samples = scrape(server)
    assert samples[("pain_actor_restarts", (("actor", "predictors"),))] == 0
    assert samples[("pain_root_restarts", ())] == 0


def test_training_series_carry_their_stage():
    from prometheus_client.exposition import generate_latest

    from web.metrics import Metrics

    metrics = Metrics()
    epochs = [
        {"stage": "reconstruction", "epoch": 58, "train_loss": 0.62, "val_loss": 0.67},
        {"stage": "reconstruction", "epoch": 59, "train_loss": 0.61, "val_loss": 0.66},
        {"stage": "head", "epoch": 3, "train_loss": 2.5, "val_loss": float("nan")},
    ]
    metrics.update_from_status({"training": {"state": "running", "progress": 0.5, "epochs": epochs}})
    samples = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

    assert samples[("pain_training_epoch", (("stage", "head"),))] == 3
    assert samples[("pain_training_loss", (("split", "train"), ("stage", "head")))] == 2.5
    # A loss that is not a number is left out.
    assert ("pain_training_loss", (("split", "val"), ("stage", "head"))) not in samples
    # The finished stage keeps its last epoch's values.
    assert samples[("pain_training_epoch", (("stage", "reconstruction"),))] == 59
    assert samples[("pain_training_loss", (("split", "val"), ("stage", "reconstruction")))] == 0.66

    # The next run starts with no epoch, and every stage's series goes with the old run.
    metrics.update_from_status({"training": {"state": "running", "progress": 0.0, "epochs": []}})
    families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
    assert not [s for f in families if f.name in ("pain_training_epoch", "pain_training_loss") for s in f.samples]
