import os

import pytest

from pain_actors.config import ConfigError, load_config
from pain_actors.tree import build_tree


def test_defaults_without_file():
    config = load_config(None, environ={})
    assert config.server.host == "127.0.0.1"
    assert config.engine.backbone == "efficientnet_lite0"


def test_shipped_config_matches_defaults():
    assert load_config("config.toml", environ={}) == load_config(None, environ={})


def test_environment_overrides_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[server]\nport = 9000\n[engine]\nthreads = 1\n")
    config = load_config(path, environ={"PAIN_SERVER_PORT": "9100", "PAIN_ENGINE_DENSE_RATIO": "0.9"})
    assert config.server.port == 9100
    assert config.engine.threads == 1
    assert config.engine.dense_ratio == 0.9


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[server]\nport = 'eighty'\n", "server.port must be an integer"),
        ("[server]\nport = 70000\n", "server.port must be from 1 to 65535"),
        ("[engine]\nmax_side = 10\n", "engine.max_side must be at least 64"),
        ("[server]\nprot = 80\n", "unknown config key server.prot"),
        ("[serverr]\nport = 80\n", "unknown config section [serverr]"),
        ("[logging]\nformat = 'xml'\n", "logging.format must be one of"),
        ("[engine]\nthreads = -1\n", "engine.threads must not be negative"),
        ("[engine]\nruntime = 'cuda'\n", "engine.runtime must be one of onnxruntime, torch, got 'cuda'"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_invalid_file_names_the_key(tmp_path, text, fragment):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert fragment in str(caught.value)


def test_invalid_environment_value_names_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"PAIN_ENGINE_THREADS": "two"})
    assert "PAIN_ENGINE_THREADS" in str(caught.value)


@pytest.mark.parametrize("name", ["PAIN_TRAINNG_EPOCHS", "PAIN_ENGNE_THREADS", "PAIN_SERVERS_PORT"])
def test_misspelt_environment_section_is_an_error(name):
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={name: "3"})
    assert name in str(caught.value)
    assert "did you mean PAIN_" in str(caught.value)


def test_misspelt_environment_key_gets_a_suggestion():
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"PAIN_ENGINE_THREDS": "2"})
    assert "did you mean PAIN_ENGINE_THREADS?" in str(caught.value)

    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"PAIN_LOGGING_COLOUR": "yes"})
    assert "valid keys are format, level" in str(caught.value)


def test_other_pain_variables_are_not_settings():
    config = load_config(None, environ={"PAIN_NODE": "worker-1", "PAIN_CHROMIUM": "/usr/bin/chromium"})
    assert config == load_config(None, environ={})


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize("predictors", [1, 2, 4])
def test_predictors_share_the_cores_by_default(predictors):
    config = load_config(environ={"PAIN_ACTORS_PREDICTORS": str(predictors)})
    _, specs = build_tree(config)
    pool = next(spec for spec in specs if spec.id == "predictors")
    engines = [child.start_args["engine"] for child in pool.start_args["child_specs"]]
    assert [engine.threads for engine in engines] == [max(1, (os.cpu_count() or 1) // predictors)] * predictors


def test_explicit_engine_threads_are_kept():
    config = load_config(environ={"PAIN_ENGINE_THREADS": "3"})
    _, specs = build_tree(config)
    pool = next(spec for spec in specs if spec.id == "predictors")
    assert {child.start_args["engine"].threads for child in pool.start_args["child_specs"]} == {3}


def test_range_error_names_its_source(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"PAIN_TRAINING_HEAD_PHOTOS": "1"})
    assert str(caught.value) == "training.head_photos must be from 2 to 64, got 1 (set by environment variable PAIN_TRAINING_HEAD_PHOTOS)"

    path = tmp_path / "config.toml"
    path.write_text("[server]\nport = 70000\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value).endswith(f"(set by {path})")
