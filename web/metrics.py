"""GET /metrics in the Prometheus text format.

Request counts and latencies are recorded by a middleware, labelled by route template (such as
/api/paintings/{id}), method and status; paths that match no route share the label "unmatched",
so clients cannot grow the label set. Pool, restart, model and training figures are read from
the actors at each scrape, the same way GET /api/status reads them.
"""

from __future__ import annotations

import math
import re
import time

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from web.api import collect_status, require_admin
from workers.training import STEPS

log = structlog.get_logger(__name__)

UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
TRAINING_STATES = ("idle", "running", "succeeded", "failed", "cancelled", "unknown")
TRAINING_STAGES = tuple(STEPS)  # the `stage` values of epoch records
VERSION_NUMBER = re.compile(r"^v(\d+)$")


class Metrics:
    """The app's metric families, in a registry of its own so two apps in one process never mix."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "method", "status")
        self.requests = Counter(
            "pain_http_requests", "HTTP requests handled", labels, registry=self.registry
        )
        self.latency = Histogram(
            "pain_http_request_duration_seconds",
            "Time from receiving a request to its response, in seconds",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.pool_size = Gauge("pain_predictor_pool_size", "Predictors in the pool", registry=self.registry)
        self.predictors = Gauge(
            "pain_predictors", "Predictors by state (idle, busy, draining, reloading...)", ("state",),
            registry=self.registry,
        )
        self.queued = Gauge("pain_predict_queue_length", "Predict requests waiting for a predictor", registry=self.registry)

        self.restarts = Gauge(
            "pain_actor_restarts",
            "Restarts of each actor by its supervisor, from the status tree; a restarted root starts again at 0",
            ("actor",),
            registry=self.registry,
        )
        self.root_restarts = Gauge(
            "pain_root_restarts", "Times the server started a fresh actor tree", registry=self.registry
        )
        self.actors_up = Gauge(
            "pain_actors_up", "1 when the actor tree answered this scrape, else 0", registry=self.registry
        )

        self.model_version = Gauge(
            "pain_model_version", "Number of the model version each predictor serves (v0003 is 3)", ("predictor",),
            registry=self.registry,
        )
        self.target_version = Gauge(
            "pain_model_target_version", "Number of the model version predictors should serve", registry=self.registry
        )

        self.training_state = Gauge(
            "pain_training_state", "1 for the trainer's current state, 0 for the others", ("state",),
            registry=self.registry,
        )
        self.training_progress = Gauge(
            "pain_training_progress", "Progress of the latest training run, from 0 to 1", registry=self.registry
        )
        # Losses of the stages of a run (reconstruction, contrastive, head) have different scales,
        # so each series carries its stage and a graph does not join one stage's curve to the next.
        # Each stage keeps its last values until the next run starts, so its series does not stop
        # when the run moves on to the next stage.
        self.training_epoch = Gauge(
            "pain_training_epoch", "Last finished epoch of each stage of the latest training run", ("stage",),
            registry=self.registry,
        )
        self.training_loss = Gauge(
            "pain_training_loss", "Loss of each stage's last finished epoch", ("stage", "split"), registry=self.registry
        )

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        labels = (route, method, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def update_from_status(self, status: dict) -> None:
        """Set the actor gauges from a GET /api/status body (see web.api.collect_status)."""
        pool = status.get("pool", {})
        predictors = pool.get("predictors", [])
        self.pool_size.set(len(predictors))
        self.queued.set(pool.get("queued", 0))
        self.predictors.clear()
        for predictor in predictors:
            self.predictors.labels(predictor["state"]).inc()
        self.model_version.clear()
        for predictor in predictors:
            number = _version_number(predictor.get("version"))
            if number is not None:
                self.model_version.labels(predictor["id"]).set(number)
        target = _version_number(pool.get("target_version"))
        self.target_version.set(target if target is not None else 0)

        self.restarts.clear()
        tree = status.get("tree", {})
        self.actors_up.set(0 if "error" in tree else 1)
        stack = [tree] if "name" in tree else []
        while stack:
            node = stack.pop()
            self.restarts.labels(node["name"]).set(node.get("restart_count", 0))
            stack.extend(node.get("children", []))
        self.root_restarts.set(status.get("root_restarts", 0))

        training = status.get("training", {})
        state = training.get("state", "unknown")
        for name in TRAINING_STATES:
            self.training_state.labels(name).set(1 if name == state else 0)
        self.training_progress.set(training.get("progress") or 0.0)
        epochs = training.get("epochs") or []
        self.training_epoch.clear()
        self.training_loss.clear()
        last_of_stage = {}
        for number, record in enumerate(epochs, start=1):
            stage = record.get("stage") if record.get("stage") in TRAINING_STAGES else "unknown"
            last_of_stage[stage] = (number, record)
        for stage, (number, record) in last_of_stage.items():
            self.training_epoch.labels(stage).set(record.get("epoch", number))
            for split in ("train", "val"):
                value = record.get(f"{split}_loss")
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.training_loss.labels(stage, split).set(value)


METRICS = web.AppKey("metrics", Metrics)


def setup_metrics(app: web.Application) -> None:
    # The *_created series (creation timestamps) only double the output; this is process-wide.
    disable_created_metrics()
    app[METRICS] = Metrics()


@web.middleware
async def metrics_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Count and time every request, and log one structured line for it."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:  # redirects raised by handlers
        status = exc.status
        raise
    finally:
        seconds = time.perf_counter() - started
        request.app[METRICS].observe_request(_route_label(request), request.method, status, seconds)
        log.info("request", method=request.method, path=request.path, status=status, ms=round(seconds * 1000.0, 1))


async def metrics_handler(request: web.Request) -> web.Response:
    # The figures name actors, versions and restarts, which only operators should see. Prometheus
    # sends the admin token with `authorization: {credentials: ...}` in its scrape config.
    require_admin(request)
    metrics = request.app[METRICS]
    metrics.update_from_status(await collect_status(request.app))
    body = generate_latest(metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _route_label(request: web.Request) -> str:
    route = request.match_info.route
    resource = route.resource if route is not None else None
    if resource is None or request.match_info.http_exception is not None:
        return UNMATCHED
    return resource.canonical


def _version_number(version: str | None) -> int | None:
    match = VERSION_NUMBER.match(version or "")
    return int(match.group(1)) if match else None
