"""``genxr sim``: render an episode to look at, write data sets, list behaviours.

torch and the simulator are imported inside the commands so ``genxr --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import fail, print_message

sim_app = typer.Typer(help="Ground-truth world simulator and scripted users.", no_args_is_help=True)

Threads = Annotated[int, typer.Option(
    min=0, help="torch CPU threads (0: torch's default); one is fastest on a shared machine, see docs/simulator.md")]


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Runs the block with ``threads`` torch CPU threads (0: unchanged), restoring the count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@sim_app.command()
def behaviours() -> None:
    """List the scripted behaviours (combine them with '+', e.g. press_button+wave)."""
    from genxr.components.sim.behaviours import BEHAVIOURS

    for name, function in BEHAVIOURS.items():
        typer.echo(f"{name:20s} {(function.__doc__ or '').splitlines()[0]}")


@sim_app.command()
def render(
    out: Annotated[Path, typer.Option(help="file.png (contact sheet), file.gif or file.mp4 (every frame)")],
    seed: Annotated[int, typer.Option(min=0, help="episode seed: room, user and noise")] = 0,
    behaviour: Annotated[str, typer.Option(help="behaviour script, e.g. grasp_carry_drop or press_button+wave")] = (
        "press_button+grasp_carry_drop"),
    frames: Annotated[int, typer.Option(min=0, help="frames to simulate (0: the whole script)")] = 0,
    resolution: Annotated[int, typer.Option(min=8, max=1024, help="square image side, pixels")] = 128,
    fov: Annotated[float, typer.Option(help="vertical field of view, degrees")] = 80.0,
    columns: Annotated[int, typer.Option(min=1, help="frames on the contact sheet")] = 8,
    fps: Annotated[float, typer.Option(min=1.0, help="playback rate of gif/mp4")] = 30.0,
    threads: Threads = 1,
) -> None:
    """Simulate one episode at 90 Hz and write it as a contact sheet or a video with its labels."""
    from genxr.components.sim.behaviours import UnknownBehaviourError
    from genxr.components.sim.episode import record_episode
    from genxr.components.sim.preview import save_preview
    from genxr.components.sim.renderer import Renderer, RendererConfig
    from genxr.components.sim.user import ScriptedUser
    from genxr.platform.clock import ManualClock

    try:
        with _torch_threads(threads):
            user = ScriptedUser(behaviour, seed=seed, clock=ManualClock(0))
            renderer = Renderer(RendererConfig(width=resolution, height=resolution, vertical_fov_deg=fov))
            record = record_episode(user, renderer, frames or None)
        path = save_preview(record, out, fps=fps, columns=columns, scale=max(1, 256 // resolution))
    except (UnknownBehaviourError, ValueError, OSError) as err:
        fail(f"{err}")
    print_message(f"wrote {len(record['rgb'])} frames of {behaviour!r} (seed {seed}) to {path}")


@sim_app.command()
def dataset(
    out: Annotated[Path, typer.Option(help="data set directory (created; resumed if half-written)")],
    episodes: Annotated[int, typer.Option(min=1, help="episodes (one shard each)")] = 8,
    frames: Annotated[int, typer.Option(min=1, help="frames per episode (90 Hz)")] = 180,
    resolution: Annotated[int, typer.Option(min=8, max=1024, help="square image side, pixels")] = 64,
    split: Annotated[str, typer.Option(help="train or heldout (disjoint seeds and behaviour mixtures)")] = "train",
    seed: Annotated[int, typer.Option(min=0, help="base seed of the episode seeds")] = 0,
    threads: Threads = 1,
) -> None:
    """Write a data set: safetensors shards (poses, flags, object state, RGB, depth, masks) + manifest.json."""
    from genxr.components.sim.dataset import DatasetConfig, DatasetError, write_dataset

    try:
        config = DatasetConfig(episodes=episodes, frames=frames, resolution=resolution, split=split, seed=seed)
        with _torch_threads(threads):
            manifest = write_dataset(out, config)
    except DatasetError as err:
        fail(f"{err}")
    print_message(f"{len(manifest['episodes'])} episodes x {frames} frames ({split}) in {out}/")
