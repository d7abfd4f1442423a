"""The sweep: offline data, resumable runs, report files; the report's arithmetic."""

from __future__ import annotations

import json

import pytest

from genxr.compression.research.data import digits, stdlib_text
from genxr.compression.research.report import advantage, markdown, summarise
from genxr.compression.research.sweep import Spec, grid, run_sweep
from genxr.compression.research.train import Recipe


def test_offline_data_shapes():
    data = digits(16)
    assert data.x_train.shape[1:] == (3, 16, 16) and len(data.x_train) + len(data.x_test) == 1797
    assert set(data.y_test.tolist()) == set(range(10))
    train, val = stdlib_text(20_000, 5_000)
    assert len(train) == 20_000 and len(val) == 5_000 and int(train.max()) < 128


def test_default_grid_is_small_and_large_grid_is_larger():
    default, large = grid("default"), grid("large")
    assert len(default) == 10 and len(large) > 3 * len(default)
    assert {s.architecture for s in default} == {"resnet18", "preact_resnet18", "vit", "llama"}
    with pytest.raises(ValueError, match="unknown grid"):
        grid("huge")


@pytest.mark.slow
def test_sweep_writes_reports_and_resumes(tmp_path):
    specs = [Spec("resnet18", dict(width=4, blocks=(1, 1)), Recipe(epochs=1, batch_size=256)),
             Spec("llama", dict(dim=16, depth=1, num_heads=2, num_kv_heads=1, mlp_dim=24),
                  Recipe("adamw", 3e-3, steps=2, batch_size=4))]
    summary = run_sweep(tmp_path, ratios=(0.5,), specs=specs, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 4 * 2 + 4
    assert {"resnet18", "llama"} == set(summary)
    assert (tmp_path / "results.md").read_text().startswith("### llama")
    assert (tmp_path / "results.png").stat().st_size > 10_000
    trained = (tmp_path / "checkpoints" / specs[0].name / "model.safetensors").stat().st_mtime_ns
    run_sweep(tmp_path, ratios=(0.5,), specs=specs, progress=False)
    assert (tmp_path / "checkpoints" / specs[0].name / "model.safetensors").stat().st_mtime_ns == trained
    assert len(json.loads((tmp_path / "results.json").read_text())["results"]) == len(results)


def row(checkpoint, method, ratio, metric, name="accuracy"):
    return {"checkpoint": checkpoint, "architecture": "a", "ratio": ratio, "method": method, "data": False,
            "metric": metric, "base_metric": 90.0, "metric_name": name, "param_reduction": 0.5}


def test_summary_counts_wins_and_ties():
    results = [row("c1", "fold", 0.5, 50), row("c1", "fold+repair", 0.5, 60), row("c1", "l1", 0.5, 40), row("c1", "l2", 0.5, 55),
               row("c2", "fold", 0.5, 10), row("c2", "fold+repair", 0.5, 10), row("c2", "l1", 0.5, 10), row("c2", "l2", 0.5, 10)]
    s = summarise(results)["a"]
    assert s["rows"]["fold"] == [30.0]
    assert s["wins"][0.5] == (0, 1, 2)
    assert s["wins_repair"][0.5] == (1, 1, 2)
    assert "| fold+repair >= L1 and L2, no data (wins/ties/n) | 1/1/2 |" in markdown(summarise(results))
    assert advantage(20.0, 30.0, "perplexity") == 10.0
