"""``genxr bench fold``: seconds to fold and to prune CIFAR ResNet18 at ratio 0.5 on CPU.

``fold_s`` is ``genxr.compression.fold`` (trace, cluster, merge, remove; Fold-AR on);
``prune_s`` is Torch-Pruning's own ``BasePruner`` with L2 group-magnitude importance (the
baseline the target "fold within 5x of pruning" refers to); ``genxr_prune_s`` is
``genxr.compression.prune`` on the same groups as fold. Each time is the best of ``repeats``
interleaved runs on a fresh copy of the same randomly initialised model (timing does not depend on the
weights being trained). ``latency_speedup`` is the median batch latency of the original
over the folded model (batch ``batch`` of 32x32 images, ``latency_runs`` runs).
"""

from __future__ import annotations

import copy
import time

import torch

from genxr.platform.stats import median
from genxr.platform.units import MS_PER_S


def _best_interleaved(repeats: int, *operations) -> list[float]:
    """Best time of each operation, run in turn ``repeats`` times so load spikes hit all alike."""
    best = [float("inf")] * len(operations)
    for _ in range(repeats):
        for i, operation in enumerate(operations):
            start = time.perf_counter()
            operation()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _latency_s(model: torch.nn.Module, x: torch.Tensor, runs: int) -> float:
    with torch.no_grad():
        for _ in range(3):
            model(x)
        samples = []
        for _ in range(runs):
            start = time.perf_counter()
            model(x)
            samples.append(time.perf_counter() - start)
    return median(samples)


def run(ratio: float = 0.5, repeats: int = 2, batch: int = 16, latency_runs: int = 20, seed: int = 0,
        width: int = 64) -> dict:
    """Runs the benchmark (``width`` 64 is ResNet18; smaller widths are for tests); returns the result."""
    import torch_pruning as tp

    from genxr.compression import fold, prune
    from genxr.compression.research.models import build

    torch.manual_seed(seed)
    model = build("resnet18", width=width).eval()
    x = torch.randn(1, 3, 32, 32)
    folded = {}

    def do_fold():
        folded["model"], folded["report"] = fold(model, x, ratio, seed=seed)

    def do_tp_prune():
        copy_ = copy.deepcopy(model)
        pruner = tp.pruner.BasePruner(copy_, x, importance=tp.importance.GroupMagnitudeImportance(p=2),
                                      pruning_ratio=ratio, ignored_layers=[copy_.fc])
        pruner.step()

    fold_s, prune_s, genxr_prune_s = _best_interleaved(repeats, do_fold, do_tp_prune, lambda: prune(model, x, ratio, "l2"))
    report = folded["report"]
    images = torch.randn(batch, 3, 32, 32)
    base_latency = _latency_s(model, images, latency_runs)
    folded_latency = _latency_s(folded["model"], images, latency_runs)
    return {
        "model": "resnet18-cifar" if width == 64 else f"resnet18-cifar-width{width}", "ratio": ratio, "threads": torch.get_num_threads(),
        "fold_s": round(fold_s, 3),
        "prune_s": round(prune_s, 3),
        "genxr_prune_s": round(genxr_prune_s, 3),
        "fold_over_prune_time": round(fold_s / prune_s, 2),
        "params_before": report.params_before,
        "params_after": report.params_after,
        "param_reduction": round(report.param_reduction, 4),
        "mac_reduction": round(report.mac_reduction, 4),
        "latency_ms_before": round(base_latency * MS_PER_S, 2),
        "latency_ms_after": round(folded_latency * MS_PER_S, 2),
        "latency_speedup": round(base_latency / folded_latency, 2),
        "targets": {"fold_s_below": 10.0, "fold_over_prune_time_below": 5.0},
        "meets_targets": fold_s < 10.0 and fold_s / prune_s < 5.0,
    }
