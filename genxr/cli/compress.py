"""``genxr fold``, ``genxr prune`` and ``genxr compress ...`` (typer; torch imported inside commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from genxr.cli.output import fail, print_message

compress_app = typer.Typer(help="Model compression: folding and pruning sweeps.", no_args_is_help=True)

Ratio = Annotated[float, typer.Option(help="fraction of channels removed in every group, in [0, 1)")]
Out = Annotated[Path, typer.Option(help="directory for the compressed checkpoint")]


def _compress(checkpoint: Path, out: Path, method: str, **options) -> None:
    from genxr.compression import CompressionError, TraceError, fold, prune
    from genxr.compression.research.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from genxr.compression.research.models import example_inputs

    try:
        model, config = load_checkpoint(checkpoint)
        x = example_inputs(model)
        if method == "fold":
            compressed, report = fold(model, x, **options)
        else:
            compressed, report = prune(model, x, **options)
    except (CheckpointError, CompressionError, TraceError, ValueError) as err:
        fail(f"{err}")
    metadata = dict(config["metadata"], compression=report.to_dict(), source=str(checkpoint))
    save_checkpoint(compressed, out, metadata=metadata)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    print_message(f"{report.method} ratio {report.ratio}: {len(report.groups)} groups, parameters "
                  f"{report.params_before:,} -> {report.params_after:,} (-{report.param_reduction:.1%}), "
                  f"MACs -{report.mac_reduction:.1%}; wrote {out}/")


def fold_command(
    checkpoint: Annotated[Path, typer.Argument(help="genxr checkpoint directory (config.json + model.safetensors)")],
    ratio: Ratio = 0.5,
    out: Out = Path("folded"),
    repair: Annotated[str, typer.Option(help="none | auto | fold-ar | expected-activation")] = "auto",
    attention: Annotated[bool, typer.Option(help="also fold attention by whole heads")] = True,
    seed: Annotated[int, typer.Option(help="k-means seed")] = 0,
) -> None:
    """Fold a checkpoint (calibration-free: cluster channels, merge, remove) into a new checkpoint."""
    _compress(checkpoint, out, "fold", ratio=ratio, repair=repair, attention=attention, seed=seed)


def prune_command(
    checkpoint: Annotated[Path, typer.Argument(help="genxr checkpoint directory (config.json + model.safetensors)")],
    ratio: Ratio = 0.5,
    out: Out = Path("pruned"),
    criterion: Annotated[str, typer.Option(help="l1 | l2 | random")] = "l2",
    attention: Annotated[bool, typer.Option(help="also prune attention by whole heads")] = True,
    seed: Annotated[int, typer.Option(help="seed of the random criterion")] = 0,
) -> None:
    """Prune a checkpoint by magnitude (Torch-Pruning's importance) on the same groups as fold."""
    _compress(checkpoint, out, "prune", ratio=ratio, criterion=criterion, attention=attention, seed=seed)


@compress_app.command("sweep")
def sweep_command(
    out: Annotated[Path, typer.Option(help="work directory: checkpoints and results.json (resumable)")] = Path("runs/compress_sweep"),
    grid: Annotated[str, typer.Option(help="default (~30 min on 2 cores) | large")] = "default",
    ratios: Annotated[str, typer.Option(help="comma-separated ratios")] = "0.1,0.3,0.5,0.7,0.9",
    architectures: Annotated[str, typer.Option(help="comma-separated subset of resnet18,preact_resnet18,vit,llama")] = "",
    report_dir: Annotated[Path | None, typer.Option(help="where <stem>.json/.md/.png go (default: --out)")] = None,
    stem: Annotated[str, typer.Option(help="file name stem of the report files")] = "results",
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    report_only: Annotated[bool, typer.Option(help="only rewrite the report from --out/results.json")] = False,
) -> None:
    """Train a grid of checkpoints, compress each with fold / L1 / L2 (with and without repair), report."""
    from genxr.compression.research.sweep import run_sweep
    from genxr.compression.research.report import markdown

    if report_only:
        from genxr.compression.research.report import write_report

        results = json.loads((out / "results.json").read_text())["results"]
        typer.echo(markdown(write_report(results, report_dir or out, stem)))
        return
    try:
        ratio_values = tuple(float(r) for r in ratios.split(","))
        summary = run_sweep(out, grid, ratio_values, report_dir, tuple(architectures.split(",")) if architectures else None,
                            progress, stem)
    except ValueError as err:
        fail(f"{err}")
    typer.echo(markdown(summary))
