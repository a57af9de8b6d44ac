"""The `pain` command line."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import structlog

from pain_actors.config import Config, ConfigError, load_config
from pain_actors.logging_setup import configure_logging

log = structlog.get_logger(__name__)

DEFAULT_CONFIG = Path("config.toml")
MUSEUM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pain", description="PAIN: recognise museum paintings in visitors' photos.")
    parser.add_argument(
        "--config",
        help="path of the TOML configuration, given before the command"
        " (default: ./config.toml if present, else built-in defaults)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--port", type=_port, help="TCP port from 1 to 65535 (overrides server.port)")

    evaluate = commands.add_parser("eval", help="measure recognition on a dataset directory")
    evaluate.add_argument("dataset", help="dataset directory (layout in docs/datasets.md)")
    evaluate.add_argument("--json", dest="json_path", help="also write the report as JSON to this file")
    evaluate.add_argument(
        "--queries",
        dest="queries_path",
        help="also write each query's result (expected, answers, scores, correct, time) to this file, one JSON object a line",
    )
    evaluate.add_argument(
        "--distractors", type=int, default=0, help="generated distractor paintings added to the collection (default 0)"
    )
    evaluate.add_argument(
        "--index-cache",
        dest="index_cache",
        help="keep the indexed collection in this directory and reuse it on later runs with the same images,"
        " distractors and indexing settings (for trying search settings on large collections)",
    )
    evaluate.add_argument(
        "--train",
        action="store_true",
        help="first train the autoencoder and the museum embedding on the dataset's paintings with the [training]"
        " settings, then evaluate",
    )
    evaluate.add_argument(
        "--save-model",
        dest="save_model",
        metavar="FILE",
        help="with --train, keep the trained-model file here (for bench/trained_gain.py --checkpoint);"
        " otherwise it is deleted when the evaluation ends",
    )

    importer = commands.add_parser("import", help="add a dataset's paintings to a museum in the data directory")
    importer.add_argument("dataset", help="dataset directory (paintings.csv and paintings/)")
    importer.add_argument("--museum", required=True, help="museum id the paintings belong to")

    worker = commands.add_parser("worker", help="host predictors of a main service in this machine's actor system")
    worker.add_argument("--leader", help="host:port of the main service's actor system (overrides actors.leader)")

    commands.add_parser("status", help="show predictors, model versions, training and the actor tree")
    reload = commands.add_parser("reload", help="move predictors one at a time to a model version")
    reload.add_argument("--version", help="version such as v0003 (default: the newest published one)")
    train = commands.add_parser("train", help="start a training run on the running service")
    train_mode = train.add_mutually_exclusive_group()
    train_mode.add_argument("--resume", metavar="RUN_ID", help="continue this run from its last checkpoint")
    train_mode.add_argument(
        "--cancel", action="store_true", help="stop the running run after its current batch; it publishes nothing"
    )
    kill = commands.add_parser("kill", help="fault injection: kill an actor of the running service")
    kill.add_argument("actor", help="pain (the root), predictors, coordinator, trainer or predictor-N")
    kill.add_argument("--mode", choices=("sigkill", "raise"), default="sigkill", help="default: sigkill")
    _add_bench_parser(commands)
    return parser


def _add_bench_parser(commands) -> None:
    bench = commands.add_parser(
        "bench",
        help="run a benchmark script of the repository's bench/ folder; without NAME, list them",
        description="Run bench/NAME.py with ARGS and print its JSON result. `pain bench NAME --help` lists its options.",
    )
    bench.add_argument("name", nargs="?", help="benchmark: the name of a script in bench/ without .py")
    bench.add_argument("arguments", nargs=argparse.REMAINDER, metavar="ARGS", help="options of that benchmark")


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        config = _load(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"pain: invalid configuration: {exc}\n")
        return 2
    configure_logging(config.logging.format, config.logging.level)

    if args.command == "serve":
        return _serve(config, args.port)
    if args.command == "eval":
        if args.save_model:
            _check_save_model(parser, Path(args.save_model), args.train)
        return _eval(
            config,
            args.dataset,
            args.json_path,
            args.distractors,
            args.train,
            args.queries_path,
            args.index_cache,
            args.save_model,
        )
    if args.command == "import":
        return _import(config, args.dataset, args.museum)
    if args.command == "worker":
        return _worker(config, args.leader)
    if args.command == "status":
        return _admin(config, "GET", "/api/status", None)
    if args.command == "reload":
        return _admin(config, "POST", "/api/reload", {"version": args.version} if args.version else {})
    if args.command == "train" and args.cancel:
        return _admin(config, "POST", "/api/train/cancel", {})
    if args.command == "train":
        return _admin(config, "POST", "/api/train", {"resume": args.resume} if args.resume else {})
    if args.command == "kill":
        return _admin(config, "POST", "/api/admin/kill", {"actor": args.actor, "mode": args.mode})
    if args.command == "bench":
        return _bench(args.name, args.arguments)
    return 2


def _admin(config: Config, method: str, path: str, body: dict | None) -> int:
    """Call an admin endpoint of the running service with the configured token; print its JSON."""
    import urllib.error
    import urllib.request

    if not config.server.admin_token:
        sys.stderr.write("pain: no admin token; set PAIN_SERVER_ADMIN_TOKEN to the service's server.admin_token\n")
        return 2
    url = f"http://{config.server.host}:{config.server.port}{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {config.server.admin_token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            sys.stdout.write(json.dumps(json.loads(response.read()), indent=2) + "\n")
            return 0
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        sys.stderr.write(f"pain: {method} {path} failed with {exc.code}: {message}\n")
    except urllib.error.URLError as exc:
        sys.stderr.write(f"pain: no service at {url}: {exc.reason}; start it with `pain serve`\n")
    return 1


def _port(text: str) -> int:
    """Parse a --port value; argparse reports an ArgumentTypeError as a usage error naming the option."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 65535, got {text!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, got {port}")
    return port


def _load(path: str | None) -> Config:
    if path:
        return load_config(path)
    return load_config(DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)


def _worker(config: Config, leader: str | None) -> int:
    """Run a predictor host until SIGTERM or Ctrl-C, then leave the convention."""
    import dataclasses
    import signal
    import threading

    from pain_actors.system import WorkerSystem

    if leader:
        config = dataclasses.replace(config, actors=dataclasses.replace(config.actors, leader=leader))
    try:
        system = WorkerSystem(config)
    except ConfigError as exc:
        sys.stderr.write(f"pain worker: {exc}\n")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    system.start()
    try:
        stop.wait()
    finally:
        system.stop()
    return 0


def _serve(config: Config, port: int | None) -> int:
    from aiohttp import web

    from web.app import create_app
    from workers.database import DatabaseError

    port = port or config.server.port
    log.info("server_starting", host=config.server.host, port=port)
    if not config.server.admin_token:
        log.warning(
            "admin_token_missing",
            detail="admin endpoints (/api/train, /api/reload, /api/status, /metrics) return 403; set PAIN_SERVER_ADMIN_TOKEN to enable them",
        )
    try:
        # access_log=None: the app logs each request itself, as structured lines.
        web.run_app(create_app(config), host=config.server.host, port=port, print=None, access_log=None)
    except (ConfigError, DatabaseError) as exc:
        log.error("server_start_failed", error=str(exc))
        sys.stderr.write(f"pain serve: {exc}\n")
        return 2
    except OSError as exc:
        log.error("server_start_failed", host=config.server.host, port=port, error=str(exc))
        sys.stderr.write(
            f"pain serve: cannot listen on {config.server.host}:{port}: {exc}; "
            "choose another server.port or server.host\n"
        )
        return 2
    log.info("server_stopped")
    return 0


def _eval(
    config: Config,
    dataset: str,
    json_path: str | None,
    distractors: int,
    train: bool = False,
    queries_path: str | None = None,
    index_cache: str | None = None,
    save_model: str | None = None,
) -> int:
    import tempfile
    from dataclasses import replace

    from model.dataset import DatasetError
    from workers.evaluation import evaluate, first_stage_recall, format_table, train_on_dataset
    from workers.recognition import TrainedModelError

    settings = config.engine
    # The trained model files of --train (about 50 MB) live only as long as the evaluation.
    with tempfile.TemporaryDirectory(prefix="pain-eval-") as work:
        try:
            if train:
                checkpoint = train_on_dataset(dataset, config.training, settings, Path(work))
                settings = replace(settings, autoencoder_checkpoint=str(checkpoint))
                if save_model:
                    _save_model(checkpoint, save_model)
            report, outcomes = evaluate(
                dataset,
                settings,
                distractors=distractors,
                progress=_progress,
                index_cache=Path(index_cache) if index_cache else None,
            )
        except DatasetError as exc:
            sys.stderr.write(f"pain eval: invalid dataset: {exc}\n")
            return 2
        except TrainedModelError as exc:
            sys.stderr.write(f"pain eval: {exc}\n")
            return 2
        sys.stdout.write(format_table(report) + "\n")
        if settings.autoencoder_checkpoint:
            report["first_stage_recall_at_10"] = first_stage_recall(dataset, settings)
            for name, recall in report["first_stage_recall_at_10"].items():
                line = ", ".join(f"{kind} {value:.3f}" for kind, value in recall.items())
                sys.stdout.write(f"{name} first stage recall@10: {line}\n")
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if queries_path:
        lines = [json.dumps(outcome.as_dict()) + "\n" for outcome in outcomes]
        Path(queries_path).write_text("".join(lines), encoding="utf-8")
    return 0


def _check_save_model(parser: argparse.ArgumentParser, target: Path, train: bool) -> None:
    # Checked before training, which takes minutes, rather than when the file is written.
    if not train:
        parser.error("--save-model needs --train")
    if target.is_dir():
        parser.error(f"--save-model: {target} is a directory; give a file name such as {target / 'trained.pt'}")
    if not target.resolve().parent.is_dir():
        parser.error(f"--save-model: no such directory: {target.parent}; create it first")


def _save_model(checkpoint: Path, destination: str) -> None:
    import shutil

    try:
        shutil.copyfile(checkpoint, destination)
    except OSError as exc:
        # The evaluation goes on: its figures are worth having even without the file.
        log.error("eval_model_not_saved", path=destination, error=str(exc))
        sys.stderr.write(f"pain eval: writing --save-model {destination} failed: {exc.strerror}. The evaluation goes on.\n")
        return
    log.info("eval_model_saved", path=destination)


def _import(config: Config, dataset: str, museum: str) -> int:
    from model.dataset import DatasetError
    from model.intake import ImageError
    from pain_actors.engine_host import EngineHost

    if not MUSEUM_ID.match(museum):
        sys.stderr.write(f"pain import: invalid museum id {museum!r}; use 1 to 64 letters, digits, '-' or '_'\n")
        return 2
    if not Path(dataset).is_dir():
        sys.stderr.write(f"pain import: dataset directory not found: {dataset}\n")
        return 2
    host = EngineHost(config.data_dir, config.engine, config.storage.database_url)
    try:
        added = host.import_dataset(dataset, museum, progress=lambda done, total: _progress("import", done, total))
    except (DatasetError, ImageError) as exc:
        sys.stderr.write(f"\npain import: {exc}\n")
        return 2
    sys.stdout.write(f"imported {added} paintings into museum {museum!r} under {config.data_dir}\n")
    return 0


def _bench(name: str | None, arguments: list[str]) -> int:
    """Run bench/NAME.py's `main` on ARGS and print its result as JSON, or list the benchmarks.

    bench/ is not part of the installed package: it is found next to this package's folder, which
    holds only when `pain` runs from a source checkout (e.g. installed with `pip install -e .`).
    """
    import ast
    import importlib.util

    folder = Path(__file__).resolve().parents[1] / "bench"
    if not (folder / "_system.py").is_file():
        sys.stderr.write(
            f"pain bench: benchmark scripts not found in {folder}; they ship with the source repository, "
            "not with the installed package: run `pain bench` from a checkout installed with `pip install -e .`\n"
        )
        return 2
    # Files starting with "_" are helpers shared by the benchmarks.
    scripts = {path.stem: path for path in sorted(folder.glob("*.py")) if not path.name.startswith("_")}
    if name is None:
        for stem, path in scripts.items():
            summary = (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").split("\n", 1)[0]
            sys.stdout.write(f"{stem:<18} {summary}\n")
        return 0
    if name not in scripts:
        sys.stderr.write(f"pain bench: unknown benchmark {name!r}; choose one of: {', '.join(scripts)}\n")
        return 2

    spec = importlib.util.spec_from_file_location(f"bench_{name}", scripts[name])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    parser = module.get_args_parser()
    parser.prog = f"pain bench {name}"
    options = parser.parse_args(arguments)
    text = json.dumps(module.main(options), indent=2)
    sys.stdout.write(text + "\n")
    if getattr(options, "json_path", None):
        Path(options.json_path).write_text(text + "\n", encoding="utf-8")
    return 0


def _progress(stage: str, done: int, total: int) -> None:
    """Draw a one-line progress bar on a terminal; elsewhere write one line when a stage ends.

    Redrawing with carriage returns would put the next JSON log line on the bar's line.
    """
    if not sys.stderr.isatty():
        if done == total:
            sys.stderr.write(f"{stage} {done}/{total}\n")
        return
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r{stage:<12} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


if __name__ == "__main__":
    sys.exit(main())
