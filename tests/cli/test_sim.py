"""genxr sim render / dataset / behaviours through the command line."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.sim.behaviours import BEHAVIOURS
from tests.helpers.cli import said

runner = CliRunner()


def test_render_writes_a_contact_sheet_png(tmp_path):
    out = tmp_path / "sheet.png"
    result = runner.invoke(app, ["sim", "render", "--seed", "3", "--behaviour", "wave", "--frames", "40",
                                 "--resolution", "32", "--columns", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    image = np.asarray(Image.open(out))
    assert image.shape == (2 * 32 * 8, 4 * 32 * 8, 3)  # RGB row over label row, scaled to 256 px
    assert image.std() > 10


def test_render_writes_gif_and_mp4(tmp_path):
    for suffix in ("gif", "mp4"):
        out = tmp_path / f"episode.{suffix}"
        result = runner.invoke(app, ["sim", "render", "--frames", "6", "--resolution", "16", "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert out.stat().st_size > 500


def test_render_rejects_unknown_behaviour_and_suffix(tmp_path):
    result = runner.invoke(app, ["sim", "render", "--behaviour", "dance", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "known behaviours: idle, look_around" in said(result.stderr)
    result = runner.invoke(app, ["sim", "render", "--frames", "2", "--resolution", "16", "--out", str(tmp_path / "x.jpg")])
    assert result.exit_code == 2 and "use one of .png, .gif, .mp4" in said(result.stderr)


def test_dataset_command_writes_a_manifest_and_refuses_unwritable_output(tmp_path):
    out = tmp_path / "data"
    result = runner.invoke(app, ["sim", "dataset", "--episodes", "1", "--frames", "3", "--resolution", "16",
                                 "--split", "heldout", "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["split"] == "heldout" and manifest["episodes"][0]["seed"] % 2 == 1
    (tmp_path / "file").write_text("")
    result = runner.invoke(app, ["sim", "dataset", "--episodes", "1", "--frames", "3", "--out", str(tmp_path / "file")])
    assert result.exit_code == 2 and "is not writable" in said(result.stderr)


def test_behaviours_lists_every_behaviour():
    result = runner.invoke(app, ["sim", "behaviours"])
    assert result.exit_code == 0, result.output
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(BEHAVIOURS), "one line each, by name"
