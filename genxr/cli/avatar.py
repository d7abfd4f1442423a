"""``genxr avatar dataset``, ``genxr train avatar`` and ``genxr eval avatar``.

torch and the simulator are imported inside the commands so that ``genxr --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import JsonFlag, fail, print_json

avatar_app = typer.Typer(help="Conversational avatar: data set generation.", no_args_is_help=True)


@avatar_app.command("dataset")
def dataset(
    out: Annotated[Path, typer.Option(help="directory for the shards and manifest.json")],
    conversations: Annotated[int, typer.Option(min=1, help="number of conversations")] = 64,
    seconds: Annotated[float, typer.Option(min=1.0, help="length of each conversation in seconds")] = 60.0,
    seed: Annotated[int, typer.Option(help="data set seed (same seed, same bytes)")] = 0,
    shard_size: Annotated[int, typer.Option(min=1, help="conversations per safetensors shard")] = 16,
) -> None:
    """Simulate dyadic conversations (audio of both speakers, user trajectory, agent motion)."""
    from tqdm import tqdm

    from genxr.components.sim.conversation.dataset import write_dataset

    with tqdm(total=conversations, unit="conv", desc="simulating") as bar:
        manifest = write_dataset(out, conversations, seconds, seed, shard_size,
                                 progress=lambda done: bar.update(done - bar.n))
    typer.echo(f"wrote {manifest['conversations']} conversations in {len(manifest['shards'])} shards to {out}/", err=True)


@avatar_app.command("dial-sweep")
def dial_sweep(
    settings: Annotated[str, typer.Option(help="dial settings SCALE:TARGET, comma-separated (TARGET 'mean': the training mean)")] = "1:mean,1:0.97,1:0.975,0.5:1,1:1",
    preset: Annotated[str, typer.Option(help="shipped checkpoint")] = "cpu",
    conversations: Annotated[int, typer.Option(min=1, help="validation conversations")] = 6,
    seconds: Annotated[float, typer.Option(min=2.0, help="length of each")] = 30.0,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 1,
) -> None:
    """Eye-contact dial settings scored on validation conversations (not the held-out ones): JSON."""
    import torch

    from genxr.components.avatar.checkpoint import shipped_checkpoint
    from genxr.components.avatar.dial import dial_sweep as sweep
    from genxr.components.avatar.dial import parse_settings

    try:
        parsed = parse_settings(settings)
    except ValueError as err:
        fail(str(err))
    torch.set_num_threads(threads)
    print_json(sweep(shipped_checkpoint(preset), parsed, conversations, seconds), True)


def train(
    preset: Annotated[str, typer.Option(help="tiny (seconds, smoke test), cpu (~21 min on 2 cores) or gpu")] = "cpu",
    out: Annotated[Path | None, typer.Option(help="checkpoint directory (default: the shipped one for the preset)")] = None,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 2,
) -> None:
    """Train the avatar (motion VAE, latent generator, spatial ablation, non-causal baseline)."""
    import time

    import torch

    from genxr.components.avatar.checkpoint import save_checkpoint, shipped_checkpoint
    from genxr.components.avatar.train import TRAINING_PRESETS, train_avatar

    if preset not in TRAINING_PRESETS:
        fail(f"unknown preset {preset!r}; choose one of {sorted(TRAINING_PRESETS)}")
    torch.set_num_threads(threads)
    started = time.perf_counter()
    models, summary = train_avatar(TRAINING_PRESETS[preset], progress=lambda text: typer.echo(text, err=True))
    summary["train_seconds"] = round(time.perf_counter() - started, 1)
    directory = save_checkpoint(out or shipped_checkpoint(preset), models, summary)
    typer.echo(f"saved {directory}/ in {summary['train_seconds']} s; final losses {summary['final_loss']}", err=True)


def evaluate(
    preset: Annotated[str, typer.Option(help="shipped checkpoint to evaluate")] = "cpu",
    checkpoint: Annotated[Path | None, typer.Option(help="checkpoint directory (overrides --preset)")] = None,
    conversations: Annotated[int, typer.Option(min=1, help="held-out conversations")] = 8,
    seconds: Annotated[float, typer.Option(min=2.0, help="length of each held-out conversation")] = 30.0,
    plots: Annotated[Path | None, typer.Option(help="directory for the dial plot, facing plot and clip")] = None,
    scales: Annotated[str, typer.Option(help="ascending guidance scales of the eye-contact dial, comma-separated")] = "0,0.125,0.25,0.375,0.5",
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads")] = 1,
    smooth_seams: Annotated[bool, typer.Option(help="filter the decoder's chunk seams (--no-smooth-seams: raw decoder output)")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Metrics of the avatar streamed over held-out simulated conversations."""
    from genxr.components.avatar.checkpoint import CheckpointError, shipped_checkpoint
    from genxr.components.avatar.evaluate import EvalConfig, evaluate_with_threads

    try:
        result = evaluate_with_threads(checkpoint or shipped_checkpoint(preset),
                                       EvalConfig(conversations=conversations, seconds=seconds,
                                                  guidance_scales=tuple(float(w) for w in scales.split(",")),
                                                  smooth_seams=smooth_seams),
                                       plots, threads)
    except CheckpointError as err:
        fail(str(err), 1)
    print_json(result, as_json)
