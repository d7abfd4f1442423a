"""``genxr compress sweep``: train a grid of checkpoints, compress each, tabulate and plot.

For every checkpoint (architecture x training recipe) and every ratio, four data-free
variants are measured - ``fold`` (plain k-means folding), ``fold+repair`` (Fold-AR on
BatchNorm groups, expected-activation correction on transformer MLPs), ``l1`` and ``l2``
(Torch-Pruning's group magnitude importance) - and, for BatchNorm networks, the same four
after re-estimating BatchNorm statistics on 8 training batches (``+bn``: the paper's data
"REPAIR"). Transformers are compressed in their MLP hidden units (attention left whole), as
in the paper's ViT runs; the zoo's 2 kv heads cannot lose 90% of their heads anyway.

Resumable: checkpoints live in ``out/checkpoints/<name>`` and results in
``out/results.json`` (rewritten after every measurement); a rerun skips what exists.
Writes ``results.json``, ``results.md`` and ``results.png`` into ``report_dir``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from genxr.compression.research.train import Recipe

METHODS = ("fold", "fold+repair", "l1", "l2")
DEFAULT_RATIOS = (0.1, 0.3, 0.5, 0.7, 0.9)


@dataclass(frozen=True)
class Spec:
    """One checkpoint to train: architecture, constructor kwargs, recipe, seed."""

    architecture: str
    kwargs: dict = field(hash=False)
    recipe: Recipe
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.architecture}-{self.recipe.name}-s{self.seed}"

    @property
    def is_lm(self) -> bool:
        return self.architecture == "llama"


IMAGE = 16
ARCH_KWARGS = {
    "resnet18": dict(width=16),
    "preact_resnet18": dict(width=16),
    "vit": dict(image_size=IMAGE, patch=4, dim=64, depth=4, num_heads=4, mlp_dim=128),
    "llama": dict(vocab_size=128, dim=64, depth=2, num_heads=4, num_kv_heads=2, mlp_dim=176),
}
CNN_RECIPES = [
    Recipe("sgd", 0.05, 5e-4, True, 0.0, epochs=6),
    Recipe("sgd", 0.1, 5e-4, False, 0.1, epochs=6),
    Recipe("adamw", 2e-3, 0.05, True, 0.1, epochs=6),
    Recipe("adam", 1e-3, 0.0, False, 0.0, epochs=6),
    Recipe("sgd", 0.02, 1e-4, True, 0.0, epochs=6),
    Recipe("adamw", 5e-3, 0.01, False, 0.0, epochs=6),
    Recipe("sgd", 0.1, 1e-3, True, 0.1, epochs=6),
    Recipe("adam", 3e-3, 1e-4, True, 0.05, epochs=6),
]
VIT_RECIPES = [Recipe("adamw", 1e-3, 0.05, True, 0.1, epochs=10), Recipe("adamw", 3e-3, 0.01, False, 0.0, epochs=10),
               Recipe("adam", 5e-4, 0.0, True, 0.0, epochs=10), Recipe("sgd", 0.05, 5e-4, True, 0.1, epochs=10)]
LM_RECIPES = [Recipe("adamw", 3e-3, 0.01, False, 0.0, steps=300, batch_size=32),
              Recipe("adamw", 1e-3, 0.1, False, 0.1, steps=300, batch_size=32),
              Recipe("adam", 3e-3, 0.0, False, 0.0, steps=300, batch_size=32),
              Recipe("adamw", 6e-3, 0.01, False, 0.0, steps=300, batch_size=32)]


def grid(size: str = "default") -> list[Spec]:
    """"default": 4 ResNet18 + 2 PreActResNet18 + 2 ViT + 2 LLaMA checkpoints (~30 min, 2 cores);
    "large": every recipe for every architecture, 2 seeds, twice the training."""
    if size == "default":
        picks = {"resnet18": CNN_RECIPES[:4], "preact_resnet18": CNN_RECIPES[:2], "vit": VIT_RECIPES[:2], "llama": LM_RECIPES[:2]}
        return [Spec(a, ARCH_KWARGS[a], r) for a, rs in picks.items() for r in rs]
    if size == "large":
        picks = {"resnet18": CNN_RECIPES, "preact_resnet18": CNN_RECIPES, "vit": VIT_RECIPES, "llama": LM_RECIPES}
        longer = lambda r: Recipe(**{**asdict(r), "epochs": r.epochs * 2, "steps": r.steps * 2})  # noqa: E731
        return [Spec(a, ARCH_KWARGS[a], longer(r), seed) for a, rs in picks.items() for r in rs for seed in (0, 1)]
    raise ValueError(f"unknown grid {size!r}; choose default or large")


class Sweep:
    """State of one sweep directory: data, checkpoints, results."""

    def __init__(self, out: Path) -> None:
        from genxr.compression.research.data import digits, stdlib_text

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.path = self.out / "results.json"
        self.results: list[dict] = json.loads(self.path.read_text())["results"] if self.path.exists() else []
        self.done = {(r["checkpoint"], r["ratio"], r["method"], r["data"]) for r in self.results}
        self.images = digits(IMAGE)
        self.text_train, self.text_val = stdlib_text()

    def checkpoint(self, spec: Spec) -> torch.nn.Module:
        """Loads the trained checkpoint, training and saving it first if absent."""
        from genxr.compression.research.checkpoint import load_checkpoint, save_checkpoint
        from genxr.compression.research.models import build
        from genxr.compression.research.train import train_classifier, train_lm

        directory = self.out / "checkpoints" / spec.name
        if (directory / "config.json").exists():
            return load_checkpoint(directory)[0]
        torch.manual_seed(spec.seed)
        model = build(spec.architecture, **spec.kwargs)
        if spec.is_lm:
            train_lm(model, self.text_train, spec.recipe, seed=spec.seed)
        else:
            train_classifier(model, self.images, spec.recipe, seed=spec.seed)
        save_checkpoint(model, directory, metadata={"recipe": asdict(spec.recipe), "seed": spec.seed})
        return model

    def metric(self, spec: Spec, model: torch.nn.Module) -> float:
        from genxr.compression.research.train import accuracy, perplexity

        if spec.is_lm:
            return perplexity(model, self.text_val)
        return accuracy(model, self.images.x_test, self.images.y_test)

    def example(self, spec: Spec) -> torch.Tensor:
        return self.text_train[:16][None] if spec.is_lm else self.images.x_train[:2]

    def record(self, spec: Spec, ratio: float, method: str, data: bool, value: float, base: float, reduction: float) -> None:
        self.results.append({"checkpoint": spec.name, "architecture": spec.architecture, "recipe": asdict(spec.recipe),
                             "ratio": ratio, "method": method, "data": data, "metric": value, "base_metric": base,
                             "metric_name": "perplexity" if spec.is_lm else "accuracy", "param_reduction": reduction})
        self.done.add((spec.name, ratio, method, data))
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"results": self.results}, indent=1) + "\n")
        tmp.replace(self.path)

    def measure(self, spec: Spec, model: torch.nn.Module, ratio: float, base: float) -> None:
        """All methods at one ratio (with and without BatchNorm re-estimation)."""
        from genxr.compression import fold, prune
        from genxr.compression.repair import reestimate_batchnorm

        has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        for method in METHODS:
            variants = [False, True] if has_bn else [False]
            if all((spec.name, ratio, method, d) in self.done for d in variants):
                continue
            x = self.example(spec)
            if method.startswith("fold"):
                compressed, report = fold(model, x, ratio, repair="auto" if method == "fold+repair" else "none",
                                          attention=False, seed=spec.seed)
            else:
                compressed, report = prune(model, x, ratio, method, attention=False, seed=spec.seed)
            self.record(spec, ratio, method, False, self.metric(spec, compressed), base, report.param_reduction)
            if has_bn:
                batches = [self.images.x_train[i:i + 64] for i in range(0, 512, 64)]
                reestimate_batchnorm(compressed, batches)
                self.record(spec, ratio, method, True, self.metric(spec, compressed), base, report.param_reduction)


def run_sweep(out: Path, size: str = "default", ratios=DEFAULT_RATIOS, report_dir: Path | None = None,
              architectures: tuple[str, ...] | None = None, progress: bool = True, stem: str = "results",
              specs: list[Spec] | None = None) -> dict:
    """Runs (or resumes) the sweep over ``grid(size)`` or explicit ``specs``; writes the report
    files; returns the summary table as a dict."""
    from genxr.compression.research.report import write_report

    specs = [s for s in (specs or grid(size)) if architectures is None or s.architecture in architectures]
    sweep = Sweep(out)
    bar = tqdm(total=len(specs) * (1 + len(ratios)), desc="sweep", disable=not progress, unit="step")
    for spec in specs:
        bar.set_postfix_str(f"train {spec.name}")
        model = sweep.checkpoint(spec)
        base = sweep.metric(spec, model)
        bar.update(1)
        for ratio in ratios:
            bar.set_postfix_str(f"{spec.name} r={ratio}")
            sweep.measure(spec, model, ratio, base)
            bar.update(1)
    bar.close()
    names = {s.name for s in specs}
    results = [r for r in sweep.results if r["checkpoint"] in names and r["ratio"] in ratios]
    return write_report(results, Path(report_dir or out), stem)
