"""`pain import` on generated datasets, with good and bad input."""

import json
import shutil

import pytest

from web.cli import main


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIN_STORAGE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_import_adds_paintings_and_index(small_dataset, data_env, capsys):
    assert main(["import", str(small_dataset), "--museum", "museum-1"]) == 0

    catalogue = json.loads((data_env / "catalogue.json").read_text())
    assert sorted(row["title"] for row in catalogue) == ["Title 0", "Title 1", "Title 2", "Title 3"]
    assert {row["museum"] for row in catalogue} == {"museum-1"}
    target = json.loads((data_env / "models" / "target").read_text())["version"]
    assert (data_env / "models" / target / "engine.pkl").is_file()
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
    assert not (data_env / "catalogue.json").exists()
    assert not (data_env / "images").exists()


def test_import_missing_directory(tmp_path, data_env, capsys):
    assert main(["import", str(tmp_path / "nowhere"), "--museum", "m"]) == 2
    assert "dataset directory not found" in capsys.readouterr().err
