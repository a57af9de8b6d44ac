"""`pain eval` end to end on a small generated dataset in the documented layout."""

import json

from sample_data import write_small_dataset
from web.cli import main


def test_eval_json_report(small_dataset, tmp_path, capsys):
    report_path = tmp_path / "report.json"

    assert main(["eval", str(small_dataset), "--json", str(report_path)]) == 0

    report = json.loads(report_path.read_text())
    assert set(report) == {"paintings", "queries", "by_kind", "no_match", "latency_ms", "index_seconds"}
    assert report["paintings"] == 4
    assert report["queries"] == 5
    assert report["by_kind"]["photo"] == {"n": 4, "top1": 1.0, "top5": 1.0}
    assert report["no_match"] == {"n": 1, "rejected": 1.0}
    assert set(report["latency_ms"]) == {"p50", "p95"}
    assert "photo" in capsys.readouterr().out


def test_eval_rejects_broken_dataset(tmp_path, capsys):
    write_small_dataset(tmp_path / "set")
    with (tmp_path / "set" / "queries.csv").open("a") as handle:
        handle.write("missing.jpg,000.png,photo\n")

    assert main(["eval", str(tmp_path / "set")]) == 2
    assert "queries/missing.jpg not found" in capsys.readouterr().err
