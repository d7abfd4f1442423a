"""``genxr bench compress`` compares the unfolded, folded and pruned student in one run: its JSON has
the latency ratios, parameter counts and held-out quality, consistent with each other."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
from tests.helpers.cli import said


@pytest.fixture(scope="module")
def tiny_run():
    """Two timed chunk steps per variant and one held-out rollout of one chunk: the whole pipeline, small."""
    result = CliRunner().invoke(app, ["bench", "compress", "--ratio", "0.5", "--chunks", "2", "--rollout-frames", "2",
                                      "--episodes", "1", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_has_every_variant_and_the_summary_keys(tiny_run):
    assert set(tiny_run["variants"]) == {"unfolded", "folded", "pruned"}
    for method in ("folded", "pruned"):
        for key in ("param_reduction", "ort_speedup_vs_unfolded", "torch_speedup_vs_unfolded", "psnr_drop_db", "ssim_drop"):
            assert math.isfinite(tiny_run[f"{method}_{key}"]), f"{method}_{key}"
    assert tiny_run["ratio"] == 0.5 and tiny_run["chunks_timed"] == 2 and tiny_run["threads"] == 1
    assert tiny_run["references"]["codec_psnr"] > 0


def test_numbers_are_consistent_across_variants(tiny_run):
    base, folded, pruned = (tiny_run["variants"][n] for n in ("unfolded", "folded", "pruned"))
    assert base["ort_speedup_vs_unfolded"] == 1.0 and base["psnr_drop_db"] == 0.0
    assert folded["params"] < base["params"] and folded["macs"] < base["macs"]
    assert folded["params"] == pruned["params"], "fold and prune remove the same channels count per group"
    assert base["params"] == sum(p.numel() for p in load_model(CHECKPOINT_ROOT / "student")[0].parameters()), \
        "the unfolded variant is the shipped student"
    assert folded["groups"]["blocks.0.ff.net.0.proj"] == [512, 256]
    for variant in (base, folded, pruned):
        assert variant["parity_max_abs_error"] <= 1e-4
        assert 0 < variant["ssim"] <= 1 and variant["psnr"] > 5
        for engine in ("ort", "torch"):
            low, high = variant[f"{engine}_ms_p25_p75"]
            assert 0 < low <= variant[f"{engine}_ms_per_chunk_step"] <= high


@pytest.mark.parametrize(("flag", "value"), [("--ratio", "1.5"), ("--ratio", "0"), ("--chunks", "0"), ("--ratio", "0.9")])
def test_bad_input_is_refused_naming_the_option(flag, value):
    args = ["bench", "compress", "--chunks", "1", "--rollout-frames", "2", "--episodes", "1", flag, value, "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert f"{flag} {float(value) if flag == '--ratio' else value}" in said(result.stderr)
    assert result.stdout == "", "no JSON result for refused input"
