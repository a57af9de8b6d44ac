"""Each benchmark in bench/ runs through `pain bench` at its smallest sizes and reports sane JSON.

Nothing here is timed: the checks are the result's shape, counts and ranges, so that the scripts
keep working as the service changes.
"""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
import structlog
import torch

from web import cli

REPO_ROOT = Path(__file__).resolve().parents[2]

PAINTINGS = 3  # the smallest collection whose chance level the engine estimates (see model/recognizer.py)


@pytest.fixture(autouse=True)
def restore_process_settings():
    """Restore the thread counts and logging that the benchmarks, which run in this process, change."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    logging_config = structlog.get_config()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
    structlog.configure(**logging_config)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One collection cache for the module, so the generated paintings are imported only once."""
    return tmp_path_factory.mktemp("bench-cache")


def run_bench(tmp_path, name: str, *arguments: str) -> dict:
    output = tmp_path / f"{name}.json"
    assert cli.main(["bench", name, *arguments, "--json", str(output)]) == 0
    return json.loads(output.read_text())


def test_bench_lists_scripts(capsys):
    assert cli.main(["bench"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [
        "fault_injection",
        "hot_reload",
        "index",
        "predict_scale",
        "predict_stages",
        "shortlist_recall",
        "trained_gain",
        "training",
    ]


def test_bench_unknown_name(capsys):
    assert cli.main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_bench_without_repository(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "__file__", str(tmp_path / "site-packages" / "web" / "cli.py"))
    assert cli.main(["bench", "index"]) == 2
    assert "benchmark scripts not found" in capsys.readouterr().err


def test_index_bench(tmp_path):
    result = run_bench(tmp_path, "index", "--sizes", "300", "--queries", "50", "--runs", "2", "--add-path-max", "300")
    assert result["settings"]["dim"] == 112
    assert result["settings"]["trees"] == 20
    (size,) = result["sizes"]
    assert size["vectors"] == 300
    assert len(size["per_run"]) == 2
    assert 0.0 <= size["recall_at_k"] <= 1.0
    assert size["build_seconds"] > 0
    assert 0 < size["query_ms_p50"] <= size["query_ms_p95"]
    assert size["engine_add_path_seconds"] > 0
    assert 0.0 <= size["others_cpu_share"] <= 1.0


def test_index_bench_cone(tmp_path):
    result = run_bench(tmp_path, "index", "--sizes", "300", "--queries", "20", "--runs", "1", "--cone-cosine", "0.99")
    (size,) = result["sizes"]
    # Neighbours in a cone of pairwise cosine 0.99 are at least that similar.
    assert size["mean_cosine_to_kth_neighbour"] > 0.98
    assert 0.0 <= size["recall_at_k"] <= 1.0


def test_training_bench(tmp_path):
    result = run_bench(tmp_path, "training", "--paintings", "4", "--threads", "1", "--epochs", "1", "--head-sample", "2")
    (measured,) = result["results"]
    assert measured["paintings"] == 4
    assert measured["threads"] == 1
    assert measured["train_images"] + measured["validation_images"] == 4
    assert measured["reconstruction"]["images_per_second"] > 0
    assert measured["contrastive"]["images_per_second"] > 0
    assert len(measured["contrastive"]["per_epoch"]) == 1
    assert measured["estimated_training_seconds"] >= 0
    head = measured["museum_embedding"]
    assert head["sample"] == 2
    assert head["describe_seconds_per_painting"] > 0
    assert len(head["per_epoch"]) == 1
    # 4 paintings: the description alone takes 4 times the sample's seconds per painting.
    assert head["estimated_seconds"] >= round(4 * head["describe_seconds_per_painting"]) - 1
    assert measured["estimated_run_seconds"] == measured["estimated_training_seconds"] + head["estimated_seconds"]


def test_predict_scale_bench(tmp_path, cache_dir):
    result = run_bench(
        tmp_path,
        "predict_scale",
        *("--paintings", str(PAINTINGS), "--predictors", "1", "--runs", "1", "--seconds", "2"),
        *("--concurrency", "1", "2", "--cache-dir", str(cache_dir)),
    )
    (collection,) = result["collections"]
    assert collection["build"]["paintings"] == PAINTINGS
    assert collection["build"]["import_peak_rss_bytes"] > 0
    assert "import_describe_seconds" in collection["build"]
    (configuration,) = collection["configurations"]
    assert configuration["ready_seconds"] > 0
    assert configuration["all_predictors_serving_seconds"] >= configuration["ready_seconds"]
    assert [load["concurrency"] for load in configuration["loads"]] == [1, 2]
    for load in configuration["loads"]:
        assert load["requests"] > 0
        assert load["failed"] == 0
        assert load["wrong"] == 0
        assert load["throughput_rps"] > 0
        assert load["latency_ms"]["p50"] <= load["latency_ms"]["p95"] <= load["latency_ms"]["p99"]
    memory = configuration["memory_mib"]
    assert memory["predictor_rss"] > 0
    assert memory["service_rss"] > memory["predictor_rss"]
    assert 0 < memory["service_pss"] <= memory["service_rss"]
    assert configuration["per_run"][0]["leftover_processes_killed"] == 0


def test_predict_scale_reuses_cache(tmp_path, cache_dir):
    result = run_bench(
        tmp_path,
        "predict_scale",
        *("--paintings", str(PAINTINGS), "--predictors", "1", "--runs", "1", "--seconds", "1"),
        *("--concurrency", "1", "--cache-dir", str(cache_dir)),
    )
    assert result["collections"][0]["build"]["cached"] is True


def test_predict_stages_bench(tmp_path, cache_dir):
    result = run_bench(
        tmp_path,
        "predict_stages",
        *("--paintings", str(PAINTINGS), "--threads", "1", "--repeats", "1", "--cache-dir", str(cache_dir)),
    )
    assert result["photos"] == PAINTINGS
    (measured,) = result["results"]
    assert measured["predictions"] == PAINTINGS
    steps = measured["step_ms_mean"]
    assert steps["cnn_whole_photo"] > 0
    assert steps["shortlist"] > 0
    assert sum(steps.values()) >= measured["total_ms_mean"] * 0.99


def test_shortlist_recall_bench(tmp_path, small_dataset):
    result = run_bench(
        tmp_path,
        "shortlist_recall",
        str(small_dataset),
        *("--variant", "base:", "--variant", "narrow:dense_shortlist=1,hnsw_ef_search=8"),
    )
    assert result["paintings"] == 4
    assert result["queries"] == 4
    assert set(result["variants"]) == {"base", "narrow"}
    assert result["variants"]["narrow"]["settings"] == {"dense_shortlist": 1, "hnsw_ef_search": 8}
    # The small dataset's photos show their paintings plainly, so every list ranks them first.
    recall = result["variants"]["base"]["recall"]["photo"]
    assert recall["n"] == 4
    assert recall["dense"]["@1"] == 1.0
    assert recall["any"] == 1.0


def test_shortlist_recall_rejects_unknown_setting(tmp_path, small_dataset):
    with pytest.raises(SystemExit, match="unknown engine setting 'nope'"):
        run_bench(tmp_path, "shortlist_recall", str(small_dataset), "--variant", "bad:nope=1")


def test_shortlist_recall_rejects_indexing_setting(tmp_path, small_dataset):
    with pytest.raises(SystemExit, match="changes the stored index"):
        run_bench(tmp_path, "shortlist_recall", str(small_dataset), "--variant", "bad:dense_side=256")


def test_trained_gain_bench(tmp_path, small_dataset, monkeypatch):
    for name, value in {"EPOCHS": "1", "CONTRASTIVE_EPOCHS": "1", "HEAD_EPOCHS": "2", "HEAD_PHOTOS": "2", "BATCH_SIZE": "2"}.items():
        monkeypatch.setenv(f"PAIN_TRAINING_{name}", value)

    saved = tmp_path / "trained.pt"
    result = run_bench(tmp_path, "trained_gain", str(small_dataset), "--train", "--save-model", str(saved))

    assert result["paintings"] == 4
    assert result["training_seconds"] > 0
    for name in ("untrained", "trained"):
        assert result[name]["queries"] == 5
        assert result[name]["by_kind"]["photo"]["top1"] == 1.0
    assert result["changed"] == []

    # The same trained-model file again, given by path.
    assert result["checkpoint"] == str(saved)
    again = run_bench(tmp_path, "trained_gain", str(small_dataset), "--checkpoint", str(saved))
    assert again["trained"]["by_kind"] == result["trained"]["by_kind"]

    # Run as a script, its stdout is the JSON result alone: log lines go to stderr.
    script = [sys.executable, str(REPO_ROOT / "bench" / "trained_gain.py"), str(small_dataset), "--checkpoint"]
    direct = subprocess.run([*script, str(saved)], capture_output=True, text=True, timeout=300)
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["trained"]["by_kind"] == result["trained"]["by_kind"]

    foreign = subprocess.run([*script, str(small_dataset / "paintings.csv")], capture_output=True, text=True, timeout=300)
    assert foreign.returncode == 1
    assert "paintings.csv is not a trained-model file" in foreign.stderr
    assert "Traceback" not in foreign.stderr

    # The first stage before and after training, from the same file.
    recall = run_bench(tmp_path, "shortlist_recall", str(small_dataset), "--checkpoint", result["checkpoint"])
    photo = recall["variants"]["default"]["recall"]["photo"]
    assert photo["museum embedding"]["@100"] == 1.0  # 4 paintings: every one is within 100
    assert photo["any trained"] >= photo["any"] == 1.0


def test_trained_gain_rejects_missing_checkpoint(tmp_path, small_dataset):
    with pytest.raises(SystemExit, match="no such file"):
        run_bench(tmp_path, "trained_gain", str(small_dataset), "--checkpoint", str(tmp_path / "none.pt"))


def test_hot_reload_bench(tmp_path, cache_dir):
    result = run_bench(
        tmp_path,
        "hot_reload",
        *("--paintings", str(PAINTINGS), "--predictors", "1", "--reloads", "1", "--concurrency", "1"),
        *("--cache-dir", str(cache_dir)),
    )
    assert result["reloads"] == 1
    assert result["requests_sent"] > 0
    assert result["failed"] == 0
    assert result["seconds_until_predictor_serves_new_version"]["max"] > 0
    assert 0 < result["seconds_per_predictor_reload"]["max"] <= result["seconds_until_predictor_serves_new_version"]["max"]


def test_fault_injection_bench(tmp_path, cache_dir):
    result = run_bench(
        tmp_path,
        "fault_injection",
        *("--paintings", str(PAINTINGS), "--seconds", "4", "--kill-every", "2", "--concurrency", "2"),
        *("--cache-dir", str(cache_dir)),
    )
    assert result["kills"] == 1
    assert result["requests_sent"] > 0
    assert result["failed"] == 0
    assert result["restart_seconds"]["max"] is not None
