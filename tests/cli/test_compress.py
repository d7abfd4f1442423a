"""``genxr fold`` / ``genxr prune`` on checkpoints, and the fold benchmark's keys."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.compression.research.checkpoint import load_checkpoint, save_checkpoint
from genxr.evaluation.benchmarks.fold import run

runner = CliRunner()


def test_fold_and_prune_commands_write_reloadable_checkpoints(tiny, tmp_path):
    model, _ = tiny("vit")
    save_checkpoint(model, tmp_path / "base")
    for command, extra in (("fold", ["--repair", "auto"]), ("prune", ["--criterion", "l1"])):
        result = runner.invoke(app, [command, str(tmp_path / "base"), "--ratio", "0.5", "--out", str(tmp_path / command), *extra])
        assert result.exit_code == 0, result.output
        loaded, config = load_checkpoint(tmp_path / command)
        report = json.loads((tmp_path / command / "report.json").read_text())
        assert report["param_reduction"] > 0.2
        assert config["metadata"]["compression"]["method"].startswith(command)
        assert loaded(torch.zeros(1, 3, 16, 16)).shape == (1, 10)


def test_bad_ratio_and_missing_checkpoint_exit_with_a_message(tiny, tmp_path):
    model, _ = tiny("resnet18")
    save_checkpoint(model, tmp_path / "base")
    result = runner.invoke(app, ["fold", str(tmp_path / "base"), "--ratio", "1.2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "ratio must be in [0, 1)" in " ".join(result.output.split())
    result = runner.invoke(app, ["prune", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "is not a genxr checkpoint" in " ".join(result.output.split())


def test_bench_fold_reports_the_required_keys():
    result = run(width=4, repeats=1, batch=2, latency_runs=2)
    for key in ("fold_s", "prune_s", "fold_over_prune_time", "param_reduction", "latency_speedup"):
        assert key in result
    assert 0.5 < result["param_reduction"] < 0.9
    assert result["fold_s"] > 0 and result["prune_s"] > 0
