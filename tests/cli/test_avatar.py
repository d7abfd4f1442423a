"""The avatar commands through typer's runner: data set, tiny training, evaluation and benchmark."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.avatar.checkpoint import load_checkpoint
from tests.helpers.cli import said

runner = CliRunner()


def test_dataset_command_writes_shards_and_manifest(tmp_path):
    done = runner.invoke(app, ["avatar", "dataset", "--conversations", "2", "--seconds", "2", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["conversations"] == 2 and (tmp_path / manifest["shards"][0]["file"]).is_file()


def test_train_tiny_writes_a_loadable_checkpoint(tmp_path):
    done = runner.invoke(app, ["train", "avatar", "--preset", "tiny", "--out", str(tmp_path / "ck"), "--threads", "1"])
    assert done.exit_code == 0, done.output
    models, config = load_checkpoint(tmp_path / "ck")
    assert set(models) == {"vae", "generator", "generator_no_user", "baseline"}
    assert config["summary"]["training"]["preset"] == "tiny"


def test_unknown_preset_and_corrupt_checkpoint_exit_with_a_message(tmp_path):
    done = runner.invoke(app, ["train", "avatar", "--preset", "huge"])
    assert done.exit_code == 2 and "unknown preset 'huge'; choose one of ['cpu', 'gpu', 'tiny']" in said(done.stderr)
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    done = runner.invoke(app, ["eval", "avatar", "--checkpoint", str(tmp_path), "--json"])
    assert done.exit_code == 1
    assert f"avatar checkpoint {tmp_path / 'config.json'}: not a valid config" in said(done.stderr)
    assert done.stdout == "", "no JSON result for a checkpoint that does not load"
