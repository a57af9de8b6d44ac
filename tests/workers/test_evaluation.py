"""`pain eval` end to end on a small generated dataset in the documented layout."""

import json
import tempfile

import pytest

from sample_data import write_small_dataset
from web.cli import main
from workers.recognition import trained_models


def test_eval_json_report(small_dataset, tmp_path, capsys):
    report_path = tmp_path / "report.json"
    queries_path = tmp_path / "queries.jsonl"

    assert main(["eval", str(small_dataset), "--json", str(report_path), "--queries", str(queries_path)]) == 0

    report = json.loads(report_path.read_text())
    assert set(report) == {"paintings", "queries", "by_kind", "no_match", "latency_ms", "index_seconds"}
    assert report["paintings"] == 4
    assert report["queries"] == 5
    assert report["by_kind"]["photo"] == {"n": 4, "top1": 1.0, "top5": 1.0}
    assert report["no_match"] == {"n": 1, "rejected": 1.0}
    assert set(report["latency_ms"]) == {"p50", "p95"}
    assert "photo" in capsys.readouterr().out

    # One line per query, in the dataset's order, each scored like the report.
    outcomes = [json.loads(line) for line in queries_path.read_text().splitlines()]
    assert len(outcomes) == 5
    assert [o["kind"] for o in outcomes].count("no match") == 1
    for outcome in outcomes:
        assert outcome["correct"] is True
        assert len(outcome["scores"]) == len(outcome["answer"])
        if outcome["expected"]:
            assert outcome["answer"][0] in outcome["expected"]
            assert 0.5 <= outcome["scores"][0] <= 1.0
        else:
            assert outcome["answer"] == []
            assert outcome["scores"] == []


def test_eval_rejects_broken_dataset(tmp_path, capsys):
    write_small_dataset(tmp_path / "set")
    with (tmp_path / "set" / "queries.csv").open("a") as handle:
        handle.write("missing.jpg,000.png,photo\n")

    assert main(["eval", str(tmp_path / "set")]) == 2
    assert "queries/missing.jpg not found" in capsys.readouterr().err


def test_eval_index_cache_reuse(tmp_path):
    dataset = tmp_path / "set"
    write_small_dataset(dataset)
    cache = tmp_path / "cache"
    reports = []

    def run() -> dict:
        report_path = tmp_path / f"report-{len(reports)}.json"
        assert main(["eval", str(dataset), "--distractors", "2", "--index-cache", str(cache), "--json", str(report_path)]) == 0
        reports.append(json.loads(report_path.read_text()))
        return reports[-1]

    first = run()
    entries = sorted(path.name for path in cache.iterdir())
    assert len(entries) == 1

    # Same images and settings: the saved index gives the same report, and no new entry appears.
    second = run()
    assert sorted(path.name for path in cache.iterdir()) == entries
    assert second["by_kind"] == first["by_kind"]
    assert second["no_match"] == first["no_match"]
    assert second["index_seconds"] == first["index_seconds"]

    # A changed painting image is indexed afresh under a new key.
    painting = sorted((dataset / "paintings").iterdir())[0]
    painting.write_bytes(painting.read_bytes() + b"\0")
    run()
    assert len(list(cache.iterdir())) == 2


SHORT_TRAINING = {
    "PAIN_TRAINING_EPOCHS": "1",
    "PAIN_TRAINING_CONTRASTIVE_EPOCHS": "1",
    "PAIN_TRAINING_HEAD_EPOCHS": "2",
    "PAIN_TRAINING_HEAD_PHOTOS": "2",
    "PAIN_TRAINING_BATCH_SIZE": "2",
}


def test_eval_train_reports_each_embedding_first_stage_recall(small_dataset, tmp_path, capsys, monkeypatch):
    for name, value in SHORT_TRAINING.items():
        monkeypatch.setenv(name, value)
    # The training's temporary files go here, so the test can see that they are removed.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    report_path = tmp_path / "report.json"
    saved = tmp_path / "trained.pt"

    assert main(["eval", str(small_dataset), "--train", "--json", str(report_path), "--save-model", str(saved)]) == 0

    # torch keeps its own compile cache there too; only the evaluation's files must be gone.
    assert list(scratch.glob("pain-eval-*")) == []
    autoencoder, head = trained_models(saved)
    assert autoencoder is not None and head is not None

    report = json.loads(report_path.read_text())
    recall = report["first_stage_recall_at_10"]
    assert set(recall) == {"backbone", "autoencoder", "museum embedding"}
    # 4 paintings, so each photo's painting is always among the 10 nearest.
    assert all(by_kind == {"photo": 1.0} for by_kind in recall.values())
    assert report["by_kind"]["photo"]["top1"] == 1.0
    assert "museum embedding first stage recall@10: photo 1.000" in capsys.readouterr().out


def test_eval_save_model_is_checked_before_training(small_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as without_train:
        main(["eval", str(small_dataset), "--save-model", str(tmp_path / "trained.pt")])
    assert without_train.value.code == 2
    assert "--save-model needs --train" in capsys.readouterr().err

    with pytest.raises(SystemExit) as missing_directory:
        main(["eval", str(small_dataset), "--train", "--save-model", str(tmp_path / "absent" / "trained.pt")])
    assert missing_directory.value.code == 2
    assert "no such directory" in capsys.readouterr().err

    with pytest.raises(SystemExit) as directory:
        main(["eval", str(small_dataset), "--train", "--save-model", str(tmp_path)])
    assert directory.value.code == 2
    assert "is a directory; give a file name" in capsys.readouterr().err


def test_eval_foreign_model_file(small_dataset, capsys, monkeypatch):
    monkeypatch.setenv("PAIN_ENGINE_AUTOENCODER_CHECKPOINT", str(small_dataset / "paintings.csv"))

    assert main(["eval", str(small_dataset)]) == 2

    error = capsys.readouterr().err
    assert "paintings.csv is not a trained-model file" in error
    assert "pain eval --train --save-model" in error


def test_eval_progress_without_terminal(small_dataset, capsys):
    assert main(["eval", str(small_dataset)]) == 0

    err = capsys.readouterr().err
    assert "\r" not in err
    assert "index 4/4\n" in err
    assert "query 5/5\n" in err
