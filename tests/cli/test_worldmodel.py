from typer.testing import CliRunner

from genxr.cli.app import app
from tests.helpers.cli import said


def test_unknown_preset_and_bad_checkpoint_exit_with_a_message(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["train", "worldmodel-teacher", "--preset", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown preset 'huge'; choose one of tiny, cpu, gpu" in said(result.stderr)
    (tmp_path / "codec").mkdir()
    result = runner.invoke(app, ["eval", "worldmodel", "--checkpoints", str(tmp_path), "--data", str(tmp_path / "none"),
                                 "--out", str(tmp_path / "eval")])
    assert result.exit_code == 2 and f"{tmp_path / 'codec'}: config.json is missing" in said(result.stderr)


def test_commands_are_registered():
    runner = CliRunner()
    for group, name in (("train", "worldmodel-codec"), ("train", "worldmodel-teacher"), ("train", "worldmodel-student"),
                        ("train", "worldmodel-pixel"), ("eval", "worldmodel"), ("bench", "worldmodel")):
        result = runner.invoke(app, [group, name, "--help"])
        assert result.exit_code == 0, (group, name, result.output)


def test_train_worldmodel_pixel_runs_the_tiny_preset_and_refuses_unknown_ones(tmp_path):
    import json

    runner = CliRunner()
    result = runner.invoke(app, ["train", "worldmodel-pixel", "--preset", "huge", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "unknown preset 'huge'; choose one of tiny, cpu, gpu" in said(result.stderr)
    result = runner.invoke(app, ["train", "worldmodel-pixel", "--preset", "tiny", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "pixel" / "config.json").read_text())
    assert config["kind"] == "PixelWorldModel" and config["summary"]["steps"] == 4
    result = runner.invoke(app, ["eval", "worldmodel", "--pixel-steps", "0", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 2 and "--pixel-steps 0 must be at least 1" in said(result.stderr)
