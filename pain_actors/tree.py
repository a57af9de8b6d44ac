"""The supervision tree of a PAIN service, built from the configuration.

    pain (root supervisor, one_for_one)          kept alive by the server process (RootWatcher)
    ├── predictors (supervisor, one_for_one)     restart intensity [actors] pool_max_*
    │   ├── predictor-1 (worker, permanent)      its own engine and model version; runs on a
    │   │                                        `pain worker` machine while one is connected
    │   ├── ...
    │   └── predictor-N
    ├── trainer (worker, permanent)              training runs on a background thread
    └── coordinator (worker, permanent)          pool checkout/retry, hot reloads

Children start in this order and stop in reverse: predictors load their model before the
coordinator starts routing, and the coordinator stops routing before predictors stop. The root is
one_for_one because its children share no state in memory: the model store on disk is what they
agree on, so any one of them can restart alone.
"""

from __future__ import annotations

import os
from dataclasses import replace

from pain_actors.config import Config
from supervisors import ChildSpec, Restart, Strategy, SupervisorFlags, supervisor_child_spec

ROOT_NAME = "pain"
POOL_NAME = "predictors"
COORDINATOR = "coordinator"
TRAINER = "trainer"


# Actor systems that `pain worker` starts advertise this capability, valued with their node name.
# While one is in the convention, predictors start there instead of beside the server.
PREDICTOR_HOST = "PAIN Predictor Host"

PREDICTOR_PRELOAD = ("model.backbone", "model.recognizer", "model.autoencoder", "workers.recognition")


def predictor_id(number: int) -> str:
    return f"predictor-{number}"


def build_tree(config: Config) -> tuple[SupervisorFlags, list[ChildSpec]]:
    """Return the root supervisor's flags and child specs."""
    actors = config.actors
    shared = {
        "data_dir": str(config.data_dir.resolve()),
        "database_url": config.storage.database_url,
        "logging": config.logging,
    }

    predictor_engine = config.engine
    if predictor_engine.threads == 0:
        # Share this machine's cores among the predictors: more threads than cores in all only
        # makes every request slower.
        # NOTE: predictors on a `pain worker` machine get the share computed for this one.
        threads = max(1, (os.cpu_count() or 1) // actors.predictors)
        predictor_engine = replace(predictor_engine, threads=threads)
    predictors = [
        ChildSpec(
            id=predictor_id(number),
            actor_class="pain_actors.predictor.Predictor",
            start_args={**shared, "engine": predictor_engine},
            restart=Restart.PERMANENT,
            start_timeout=actors.predictor_start_timeout,
            shutdown_timeout=10.0,
            # Importing these takes about a second; done once in the pool supervisor, it is not
            # repeated by every predictor restart. Importing starts no torch threads.
            preload=PREDICTOR_PRELOAD,
            placement=PREDICTOR_HOST,
        )
        for number in range(1, actors.predictors + 1)
    ]
    pool_flags = SupervisorFlags(Strategy.ONE_FOR_ONE, actors.pool_max_restarts, actors.pool_max_seconds)
    pool = supervisor_child_spec(
        POOL_NAME,
        pool_flags,
        predictors,
        start_timeout=actors.predictor_start_timeout * actors.predictors + 10.0,
        shutdown_timeout=10.0 * actors.predictors + 5.0,
    )
    trainer = ChildSpec(
        id=TRAINER,
        actor_class="pain_actors.trainer.Trainer",
        start_args={**shared, "engine": config.engine, "training": config.training},
        start_timeout=30.0,
    )
    coordinator = ChildSpec(
        id=COORDINATOR,
        actor_class="pain_actors.coordinator.Coordinator",
        start_args={**shared, "actors": actors},
        start_timeout=30.0,
    )
    root_flags = SupervisorFlags(Strategy.ONE_FOR_ONE, actors.root_max_restarts, actors.root_max_seconds)
    return root_flags, [pool, trainer, coordinator]
