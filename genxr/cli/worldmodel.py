"""``genxr train worldmodel-*``, ``genxr eval worldmodel`` (registered in genxr/cli/app.py).

Heavy imports happen inside the commands so that ``genxr --help`` stays fast. Training
runs use one torch thread by default: on the shared 2-core machine two threads made a
training step ~20x slower (threads waiting on each other's time slices), as the
simulator found for rendering.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import JsonFlag, fail, print_json, print_message

Preset = Annotated[str, typer.Option(help="tiny (CI, seconds) | cpu (shipped) | gpu (documented scale-up)")]
Out = Annotated[Path, typer.Option(help="run directory (one sub-directory per stage; resumed when it exists)")]
Data = Annotated[Path | None, typer.Option(help="data set root with train/ and heldout/ (default: written under --out)")]
Threads = Annotated[int, typer.Option(min=1, help="torch CPU threads")]
Ship = Annotated[bool, typer.Option("--ship", help="also write the result (float16) into the package's checkpoints/")]


@contextmanager
def _threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _preset(name: str, presets: dict | None = None):
    from genxr.components.worldmodel.train import PRESETS

    presets = PRESETS if presets is None else presets
    if name not in presets:
        fail(f"unknown preset {name!r}; choose one of {', '.join(presets)}")
    return presets[name]


def _ship(run_dir: Path, name: str) -> None:
    import torch

    from genxr.components.worldmodel.checkpoint import load_model, save_model, shipped

    model, config = load_model(run_dir)
    save_model(shipped(name), model, config["summary"], dtype=torch.float16)
    print_message(f"shipped {run_dir} -> {shipped(name)}")


def _run_stage(run, preset: str, out: Path, data: Path | None, threads: int, presets: dict | None = None,
               **options) -> Path:
    """Makes sure the data set exists, runs one training stage and returns its run directory;
    checkpoint and data-set errors end the command with their message."""
    from genxr.components.sim.dataset import DatasetError
    from genxr.components.worldmodel.checkpoint import CheckpointError
    from genxr.components.worldmodel.train import ensure_data

    chosen = _preset(preset, presets)
    try:
        with _threads(threads):
            train_dir, _ = ensure_data(chosen, data, out)
            return run(chosen, train_dir, out, **options)
    except (CheckpointError, DatasetError) as err:
        fail(str(err))


def train_codec(preset: Preset = "cpu", out: Out = Path("runs/worldmodel"), data: Data = None,
                threads: Threads = 1, ship: Ship = False) -> None:
    """Fit the frame codec (PCA patch autoencoder) on simulator frames."""
    from genxr.components.worldmodel.train import train_codec as run

    directory = _run_stage(run, preset, out, data, threads)
    if ship:
        _ship(directory, "codec")
    print_message(f"codec checkpoint: {directory}")


def train_teacher(preset: Preset = "cpu", out: Out = Path("runs/worldmodel"), data: Data = None,
                  head_only: Annotated[bool, typer.Option("--head-only", help="camera conditioning only (ablation)")] = False,
                  threads: Threads = 1, ship: Ship = False) -> None:
    """Train the bidirectional flow-matching teacher (needs the codec of the same --out)."""
    from genxr.components.worldmodel.train import train_teacher as run

    directory = _run_stage(run, preset, out, data, threads, head_only=head_only)
    if ship:
        _ship(directory, directory.name)
    print_message(f"teacher checkpoint: {directory}")


def train_student(preset: Preset = "cpu", out: Out = Path("runs/worldmodel"), data: Data = None,
                  head_only: Annotated[bool, typer.Option(
                      "--head-only", help="distil the head-only teacher into the head-only student (ablation)")] = False,
                  threads: Threads = 1, ship: Ship = False) -> None:
    """Distil the teacher into the causal student: ODE-pair init, then Self-Forcing with DMD."""
    from genxr.components.worldmodel.distill import train_student as run

    directory = _run_stage(run, preset, out, data, threads, head_only=head_only)
    if ship:
        if not head_only:
            _ship(out / "student_ode", "student_ode")
        _ship(directory, directory.name)
    print_message(f"student checkpoint: {directory}")


def train_pixel(preset: Preset = "cpu", out: Out = Path("runs/worldmodel-v2"), data: Data = None,
                head_only: Annotated[bool, typer.Option("--head-only", help="head pose only, no hands (ablation)")] = False,
                threads: Threads = 1, ship: Ship = False) -> None:
    """Train world model v2: a pixel-space U-Net denoiser conditioned on the hand skeleton (EDM)."""
    from genxr.components.worldmodel.pixel_train import PIXEL_PRESETS
    from genxr.components.worldmodel.pixel_train import train_pixel as run

    directory = _run_stage(run, preset, out, data, threads, PIXEL_PRESETS, head_only=head_only)
    if ship:
        _ship(directory, directory.name)
    print_message(f"world model v2 checkpoint: {directory}")


def evaluate(checkpoints: Annotated[Path | None, typer.Option(help="directory with codec/, student/, student_ode/, "
                                                                   "teacher/, teacher_head_only/ (default: shipped)")] = None,
             data: Annotated[Path | None, typer.Option(help="held-out data set (default: written under --out)")] = None,
             out: Annotated[Path, typer.Option(help="where the JSON, plot, contact sheet and video go")] = Path(
                 "runs/worldmodel-eval"),
             rollout_frames: Annotated[int, typer.Option(min=8, help="generated frames per rollout (30 Hz)")] = 64,
             episodes: Annotated[int | None, typer.Option(min=1, help="held-out episodes used (default: all 6)")] = None,
             threads: Threads = 1,
             pixel_steps: Annotated[int, typer.Option(help="Euler steps per frame of world model v2")] = 1,
             as_json: JsonFlag = False,
             ) -> None:
    """Held-out rollouts from tracking alone: PSNR/SSIM drift, hand and button fidelity, head-only ablation."""
    if pixel_steps < 1:
        fail(f"--pixel-steps {pixel_steps} must be at least 1")

    from genxr.components.sim.dataset import DatasetConfig, DatasetError, write_dataset
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, CheckpointError
    from genxr.components.worldmodel.evaluate import MODELS, EvalConfig
    from genxr.components.worldmodel.evaluate import evaluate as run

    root = checkpoints or CHECKPOINT_ROOT
    heldout = data or out / "data" / "heldout"
    try:
        with _threads(threads):
            if not (heldout / "manifest.json").is_file():
                write_dataset(heldout, DatasetConfig(episodes=6, frames=360, split="heldout"))
            models = {name: root / name for name in MODELS if (root / name / "config.json").is_file()}
            result = run(models, root / "codec", heldout, EvalConfig(rollout_frames=rollout_frames, episodes=episodes,
                                                                             pixel_steps=pixel_steps), out)
    except (CheckpointError, DatasetError, ValueError) as err:
        fail(str(err))
    summary = {k: v for k, v in result.items() if k not in ("per_model", "checkpoints")}
    print_json(summary, as_json)
