"""``genxr fold``, ``genxr prune`` and ``genxr compress ...`` (typer; torch imported inside commands)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import fail, print_message

compress_app = typer.Typer(help="Model compression: folding and pruning sweeps.", no_args_is_help=True)

Ratio = Annotated[float, typer.Option(help="fraction of channels removed in every group, in [0, 1)")]
Out = Annotated[Path, typer.Option(help="directory for the compressed checkpoint / model folder")]


BIG_MODEL_PARAMS = 10_000_000
"""From this many parameters fold/prune show a progress bar over groups (stderr)."""


def _compress(checkpoint: Path, out: Path, method: str, **options) -> None:
    """A genxr zoo checkpoint or a Hugging Face model folder (or genxr's folded-HF format) -> ``out``."""
    from genxr.compression import hf

    try:
        kind = hf.folder_kind(checkpoint) if checkpoint.is_dir() else None
    except hf.HFFormatError as err:
        fail(f"{err}")
    if kind in ("transformers", hf.FORMAT):
        _compress_hf(checkpoint, out, method, **options)
    else:
        _compress_zoo(checkpoint, out, method, **options)


def _run(method: str, model, x, **options):
    from genxr.compression import fold, prune

    options["progress"] = sum(p.numel() for p in model.parameters()) >= BIG_MODEL_PARAMS
    return fold(model, x, **options) if method == "fold" else prune(model, x, **options)


def _compress_zoo(checkpoint: Path, out: Path, method: str, **options) -> None:
    from genxr.compression import CompressionError, TraceError
    from genxr.compression.research.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from genxr.compression.research.models import example_inputs

    try:
        model, config = load_checkpoint(checkpoint)
        x = example_inputs(model)
        compressed, report = _run(method, model, x, **options)
    except CheckpointError as err:
        fail(f"{err}; nor a Hugging Face model folder (config.json with model_type, and model.safetensors or "
             "pytorch_model.bin)" if "is not a genxr checkpoint" in str(err) else f"{err}")
    except (CompressionError, TraceError, ValueError) as err:
        fail(f"{err}")
    metadata = dict(config["metadata"], compression=report.to_dict(), source=str(checkpoint))
    save_checkpoint(compressed, out, metadata=metadata)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    _print_report(report, out, "genxr checkpoint (genxr.compression.research.checkpoint.load_checkpoint)")


def _compress_hf(folder: Path, out: Path, method: str, **options) -> None:
    import torch
    from transformers.utils import logging

    from genxr.compression import CompressionError, TraceError, hf

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    declared = (hf.read_config(folder) or {})
    declared = declared.get("dtype") or declared.get("torch_dtype") or (declared.get("config") or {}).get("dtype")
    try:
        model = hf.load_pretrained(folder, dtype=torch.float32)
        x = hf.example_inputs(model)
        compressed, report = _run(method, model, x, **options)
    except (hf.HFFormatError, CompressionError, TraceError, ValueError) as err:
        fail(f"{err}")
    if declared in ("float16", "bfloat16"):
        compressed = compressed.to(getattr(torch, declared))
    metadata = {"compression": report.to_dict(), "source": str(folder)}
    saved = hf.save_pretrained(compressed, out, metadata=metadata)
    hf.copy_assets(folder, out)
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    if saved["format"] == "transformers":
        how = f"Hugging Face format ({type(compressed).__name__}.from_pretrained loads it; config rewritten: {report.config_updates})"
    else:
        how = f"genxr format (genxr.compression.hf.load_pretrained loads it) because {saved['note']}"
    _print_report(report, out, how)


def _print_report(report, out: Path, how: str) -> None:
    """The report on stdout, one plain line each (any terminal width): per group channels/heads before ->
    after, reconstruction error and repair; skipped groups and why; parameters and MACs before and
    after. Where and in which format the result went: on stderr."""
    lines = [f"{report.method} ratio {report.ratio}"]
    lines += [f"  {g.kind:<8} {g.name}: {g.before} -> {g.after}, error {g.error:.4f}" + (f", {g.repair}" if g.repair else "")
              for g in report.groups]
    lines += [f"  skipped  {name}: {reason}" for name, reason in report.skipped.items()]
    lines.append(f"{len(report.groups)} groups compressed, {len(report.skipped)} skipped; parameters "
                 f"{report.params_before:,} -> {report.params_after:,} (-{report.param_reduction:.1%}), MACs "
                 f"{report.macs_before:,} -> {report.macs_after:,} (-{report.mac_reduction:.1%})")
    typer.echo("\n".join(lines))
    print_message(f"wrote {out}/ ({how}) and {out}/report.json")


def fold_command(
    checkpoint: Annotated[Path, typer.Argument(help="genxr checkpoint or Hugging Face model folder "
                                                   "(config.json + model.safetensors / pytorch_model.bin)")],
    ratio: Ratio = 0.5,
    out: Out = Path("folded"),
    repair: Annotated[str, typer.Option(help="none | auto | fold-ar | expected-activation")] = "auto",
    attention: Annotated[bool, typer.Option(help="also fold attention by whole heads")] = True,
    seed: Annotated[int, typer.Option(help="k-means seed")] = 0,
) -> None:
    """Fold a checkpoint or Hugging Face model (calibration-free: cluster channels and heads, merge, remove)."""
    _compress(checkpoint, out, "fold", ratio=ratio, repair=repair, attention=attention, seed=seed)


def prune_command(
    checkpoint: Annotated[Path, typer.Argument(help="genxr checkpoint or Hugging Face model folder "
                                                   "(config.json + model.safetensors / pytorch_model.bin)")],
    ratio: Ratio = 0.5,
    out: Out = Path("pruned"),
    criterion: Annotated[str, typer.Option(help="l1 | l2 | random")] = "l2",
    attention: Annotated[bool, typer.Option(help="also prune attention by whole heads")] = True,
    seed: Annotated[int, typer.Option(help="seed of the random criterion")] = 0,
) -> None:
    """Prune a checkpoint or Hugging Face model by magnitude (Torch-Pruning's importance) on the same groups as fold."""
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
    from genxr.compression.research.report import markdown
    from genxr.compression.research.sweep import run_sweep

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
