"""``genxr fold`` / ``genxr prune`` on checkpoints."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.compression.research.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.cli import said
from tests.helpers.compression import tiny_model

runner = CliRunner()


def test_fold_and_prune_commands_write_reloadable_checkpoints(tmp_path):
    model, _ = tiny_model("vit")
    save_checkpoint(model, tmp_path / "base")
    for command, extra in (("fold", ["--repair", "auto"]), ("prune", ["--criterion", "l1"])):
        result = runner.invoke(app, [command, str(tmp_path / "base"), "--ratio", "0.5", "--out", str(tmp_path / command), *extra])
        assert result.exit_code == 0, result.output
        loaded, config = load_checkpoint(tmp_path / command)
        report = json.loads((tmp_path / command / "report.json").read_text())
        assert report["param_reduction"] > 0.2
        assert config["metadata"]["compression"]["method"].startswith(command)
        assert loaded(torch.zeros(1, 3, 16, 16)).shape == (1, 10)


def test_bad_ratio_and_missing_checkpoint_exit_with_a_message(tmp_path):
    model, _ = tiny_model("resnet18")
    save_checkpoint(model, tmp_path / "base")
    result = runner.invoke(app, ["fold", str(tmp_path / "base"), "--ratio", "1.2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "ratio must be in [0, 1)" in said(result.stderr)
    assert not (tmp_path / "o").exists()
    result = runner.invoke(app, ["prune", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and f"{tmp_path / 'nothing'} is not a genxr checkpoint" in said(result.stderr)
