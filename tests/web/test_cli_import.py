"""`pain import` on generated datasets, with good and bad input."""

import json
import logging
import shutil

import pytest
import structlog

from web.cli import main
from workers.catalogue import Catalogue


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIN_STORAGE_DATA_DIR", str(tmp_path / "data"))
    root = logging.getLogger()
    handlers = list(root.handlers)
    yield tmp_path / "data"
    # main() points structlog and the root logger at this test's captured stderr. That stream is
    # closed after the test, so later tests in the process would fail to write their logs.
    structlog.reset_defaults()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)


def test_import_adds_paintings_and_index(small_dataset, data_env, capsys):
    assert main(["import", str(small_dataset), "--museum", "museum-1"]) == 0

    catalogue = Catalogue(data_env)
    assert sorted(catalogue.get(pid).title for pid in catalogue.ids()) == ["Title 0", "Title 1", "Title 2", "Title 3"]
    assert catalogue.museums() == {"museum-1": 4}
    target = json.loads((data_env / "models" / "target").read_text())["version"]
    assert (data_env / "models" / target / "engine.pkl").is_file()
    versions = catalogue.database.list_versions()
    assert [(v["version"], v["source"], v["paintings"]) for v in versions] == [(target, "import", 4)]
    assert len(list((data_env / "images").iterdir())) == 4
    assert "imported 4 paintings" in capsys.readouterr().out


@pytest.mark.parametrize("museum", ["", "../x", "a b", "m" * 65])
def test_import_rejects_invalid_museum_id(small_dataset, data_env, capsys, museum):
    assert main(["import", str(small_dataset), "--museum", museum]) == 2
    assert "invalid museum id" in capsys.readouterr().err
    assert not data_env.exists()


def test_import_names_corrupt_image_and_adds_nothing(small_dataset, tmp_path, data_env, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(small_dataset, broken)
    (broken / "paintings" / "002.png").write_bytes(b"not a png")

    assert main(["import", str(broken), "--museum", "museum-1"]) == 2
    error = capsys.readouterr().err
    assert "paintings/002.png" in error
    assert "line 4" in error
    assert len(Catalogue(data_env)) == 0
    assert not (data_env / "images").exists()


def test_import_missing_directory(tmp_path, data_env, capsys):
    assert main(["import", str(tmp_path / "nowhere"), "--museum", "m"]) == 2
    assert "dataset directory not found" in capsys.readouterr().err


def test_failed_import_leaves_engine_at_target(small_dataset, tmp_path):
    from model.intake import ImageError
    from pain_actors.config import Config
    from pain_actors.engine_host import EngineHost

    broken = tmp_path / "broken"
    shutil.copytree(small_dataset, broken)
    (broken / "paintings" / "003.png").write_bytes(b"not a png")
    host = EngineHost(tmp_path / "data", Config().engine)
    assert host.import_dataset(str(small_dataset), "museum-1") == 4
    first = host.store.target()

    # Three paintings of the broken set were described and indexed in memory before the bad one.
    with pytest.raises(ImageError, match="paintings/003.png"):
        host.import_dataset(str(broken), "museum-1")
    assert len(host.service.recognizer) == 4
    assert host.store.target() == first

    assert host.import_dataset(str(small_dataset), "museum-2") == 4
    assert len(host.service.recognizer) == 8
    assert len(host.catalogue) == 8
