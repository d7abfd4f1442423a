"""``genxr bench fold``: fold and prune of a tiny CIFAR ResNet18 timed in one run, with the required keys."""

from __future__ import annotations

from genxr.evaluation.benchmarks.fold import run


def test_bench_fold_reports_the_required_keys():
    result = run(width=4, repeats=1, batch=2, latency_runs=2)
    for key in ("fold_s", "prune_s", "fold_over_prune_time", "param_reduction", "latency_speedup"):
        assert key in result
    assert 0.5 < result["param_reduction"] < 0.9
    assert result["fold_s"] > 0 and result["prune_s"] > 0
