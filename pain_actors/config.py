"""Configuration: built-in defaults, then config.toml, then PAIN_<SECTION>_<KEY> environment variables."""

from __future__ import annotations

import difflib
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from model.settings import EngineSettings

ENV_PREFIX = "PAIN_"


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key and the fix."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_upload_bytes: int = 20_000_000
    default_limit: int = 5
    admin_token: str = ""  # empty: the admin endpoints return 403
    session_secret: str = ""  # Fernet key for dashboard session cookies; empty: a random key per start
    secure_cookies: bool = False  # mark session cookies Secure (HTTPS only)
    session_max_age: int = 604800  # seconds a dashboard login lasts
    login_attempts: int = 5  # failed dashboard logins per address or museum within login_window; 0: no limit
    login_window: float = 300.0  # seconds over which failed logins are counted


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = "data"
    database_url: str = ""  # empty: SQLite file pain.sqlite3 in data_dir; or postgresql://user:password@host/db


@dataclass(frozen=True)
class LoggingSettings:
    format: str = "auto"
    level: str = "info"


@dataclass(frozen=True)
class ActorSettings:
    predictors: int = 2
    admin_port: int = 1900
    host: str = "127.0.0.1"
    leader: str = ""
    queue_limit: int = 64
    request_timeout: float = 30.0
    predict_attempts: int = 3
    client_threads: int = 16
    pool_max_restarts: int = 3
    pool_max_seconds: float = 10.0
    root_max_restarts: int = 3
    root_max_seconds: float = 30.0
    predictor_start_timeout: float = 120.0


@dataclass(frozen=True)
class TrainingSettings:
    threads: int = 1
    epochs: int = 60
    patience: int = 30
    contrastive_epochs: int = 40
    batch_size: int = 16
    lr: float = 0.01
    weight_decay: float = 0.0001
    contrastive_lr: float = 0.001
    validation_share: float = 0.15
    head_epochs: int = 200
    head_photos: int = 8


@dataclass(frozen=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    actors: ActorSettings = field(default_factory=ActorSettings)
    training: TrainingSettings = field(default_factory=TrainingSettings)

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir)


SECTIONS = {
    "server": ServerSettings,
    "storage": StorageSettings,
    "logging": LoggingSettings,
    "engine": EngineSettings,
    "actors": ActorSettings,
    "training": TrainingSettings,
}
CHOICES = {
    ("logging", "format"): ("auto", "console", "json"),
    ("logging", "level"): ("debug", "info", "warning", "error"),
    ("engine", "runtime"): ("onnxruntime", "torch"),
}
# Inclusive ranges for numbers that have limits beyond "not negative".
RANGES = {
    ("server", "port"): (1, 65535),
    ("server", "default_limit"): (1, 50),
    ("server", "max_upload_bytes"): (1, None),
    ("server", "session_max_age"): (60, None),
    ("server", "login_window"): (1.0, None),
    ("engine", "max_side"): (64, None),
    ("engine", "dense_ratio"): (0.0, 1.0),
    ("engine", "min_confidence"): (0.0, 1.0),
    ("engine", "early_exit_confidence"): (0.0, 1.0),
    ("engine", "first_pass_cell_step"): (1, 8),
    ("engine", "first_pass_ef_search"): (1, None),
    ("actors", "predictors"): (1, 64),
    ("actors", "admin_port"): (1, 65535),
    ("actors", "queue_limit"): (1, None),
    ("actors", "request_timeout"): (1.0, None),
    ("actors", "predict_attempts"): (1, 10),
    ("actors", "client_threads"): (1, 256),
    ("actors", "pool_max_seconds"): (0.1, None),
    ("actors", "root_max_seconds"): (0.1, None),
    ("actors", "predictor_start_timeout"): (5.0, None),
    ("training", "threads"): (1, None),
    ("training", "batch_size"): (2, None),
    ("training", "patience"): (1, None),
    ("training", "lr"): (1e-6, 1.0),
    ("training", "contrastive_lr"): (1e-6, 1.0),
    ("training", "validation_share"): (0.01, 0.5),
    ("training", "head_epochs"): (0, None),
    ("training", "head_photos"): (2, 64),
}
TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Load the configuration; a missing file at the default path means built-in defaults.

    Raises ConfigError for an unreadable file, an unknown key, or a value of the wrong type.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, dict] = {name: {} for name in SECTIONS}
    # Where each set value came from, so an error names the place to fix it.
    sources: dict[tuple[str, str], str] = {}

    if path is not None:
        file_path = Path(path)
        if not file_path.is_file():
            raise ConfigError(f"config file not found: {file_path}")
        try:
            loaded = tomllib.loads(file_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file_path} is not valid TOML: {exc}") from None
        for section, table in loaded.items():
            if section not in SECTIONS:
                raise ConfigError(f"unknown config section [{section}] in {file_path}: use one of {', '.join(SECTIONS)}")
            values[section].update(table)
            sources.update({(section, key): str(file_path) for key in table})

    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("_")
        if section in SECTIONS and key:
            values[section][key] = _parse_env(name, raw, SECTIONS[section], key)
            sources[(section, key)] = f"environment variable {name}"
            continue
        # Other PAIN_ variables (such as PAIN_NODE, set for actor processes) are not settings. One
        # whose section is a near miss of a real one is a typo that would otherwise be ignored.
        near = difflib.get_close_matches(section, SECTIONS, n=1, cutoff=0.75)
        if near and key:
            raise ConfigError(
                f"environment variable {name} names no config section {section!r}:"
                f" did you mean {ENV_PREFIX}{near[0].upper()}_{key.upper()}?"
            )

    built = {section: _build(section, SECTIONS[section], table, sources) for section, table in values.items()}
    return Config(**built)


def _build(section: str, cls: type, table: dict, sources: dict[tuple[str, str], str] | None = None):
    known = {f.name for f in fields(cls)}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown config key {section}.{key}: valid keys are {', '.join(sorted(known))}")
    for key, value in table.items():
        source = (sources or {}).get((section, key))
        name, where = f"{section}.{key}", f" (set by {source})" if source else ""
        expected = type(getattr(cls(), key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            table[key] = value = float(value)
        if not isinstance(value, expected) or (isinstance(value, bool) and expected is not bool):
            raise ConfigError(f"{name} must be {TYPE_NAMES[expected]}, got {value!r}{where}")
        choices = CHOICES.get((section, key))
        if choices and value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}{where}")
        if expected in (int, float) and value < 0:
            raise ConfigError(f"{name} must not be negative, got {value!r}{where}")
        low, high = RANGES.get((section, key), (None, None))
        if (low is not None and value < low) or (high is not None and value > high):
            allowed = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ConfigError(f"{name} must be {allowed}, got {value!r}{where}")
    return cls(**table)


def _parse_env(name: str, raw: str, cls: type, key: str):
    defaults = cls()
    if not hasattr(defaults, key):
        known = sorted(f.name for f in fields(cls))
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
        section = name[len(ENV_PREFIX) :].split("_", 1)[0]
        hint = f"did you mean {ENV_PREFIX}{section}_{near[0].upper()}?" if near else f"valid keys are {', '.join(known)}"
        raise ConfigError(f"environment variable {name} sets no known key: {hint}")
    expected = type(getattr(defaults, key))
    try:
        if expected is bool:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        return expected(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be {TYPE_NAMES[expected]}, got {raw!r}") from None
