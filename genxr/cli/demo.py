"""``genxr demo``: the main job on the embedded default.

The demo is the end-to-end session of the XR runtime (:mod:`genxr.xr_runtime.session`):
the simulated user's tracking at 90 Hz -> bus -> world model and avatar -> timewarp
compositor -> sinks, with a trace of every hop, written to a session folder, and a latency
summary printed at the end.

The default folder (``<output_dir>/demo``) is reused run after run: a previous session in it
is moved aside to ``demo.1``, ``demo.2``, ... first. A folder named with ``--out`` must be new
or empty. Ctrl-C exits 130 and SIGTERM 143, both with every file complete; a session that
cannot start, or whose files cannot be written (a full disk), exits 2 saying why.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from genxr.cli.output import USAGE_ERROR, console, fail, print_error, print_message
from genxr.platform.config import GenXRConfig

EXIT_INTERRUPTED = {"Ctrl-C": 130, "SIGTERM": 143}
"""Exit status of a session ended by Ctrl-C or SIGTERM (128 + the signal's number)."""


def _fmt(value: float | None, unit: str = "ms") -> str:
    return "-" if value is None else f"{value:.1f} {unit}"


def summary_table(metrics: dict) -> Table:
    table = Table(title="session summary")
    table.add_column("measure")
    table.add_column("p50", justify="right")
    table.add_column("p99", justify="right")
    table.add_row("frame time", _fmt(metrics["frame_time_ms_p50"]), _fmt(metrics["frame_time_ms_p99"]))
    table.add_row("compositor", _fmt(metrics["compositor_ms_p50"]), _fmt(metrics["compositor_ms_p99"]))
    table.add_row("rotational motion-to-photon", _fmt(metrics["rotational_m2p_ms_p50"]),
                  _fmt(metrics["rotational_m2p_ms_p99"]))
    table.add_row("content latency", _fmt(metrics["content_latency_ms_p50"]), _fmt(metrics["content_latency_ms_p99"]))
    table.add_row("frames / deadline misses", str(metrics["frames"]), f"{metrics['deadline_miss_rate']:.1%}")
    table.add_row("world updates", _fmt(metrics["world_model_hz"], "Hz"), "")
    table.add_row("avatar updates", _fmt(metrics["avatar_hz"], "Hz"), "")
    if "video_frames" in metrics:
        dropped = metrics["video_dropped_frames"]
        table.add_row("recorded to session.mp4", f"{metrics['video_frames']} frames",
                      f"[yellow]{dropped} dropped[/]" if dropped else "none dropped")
    return table


def run_demo(config: GenXRConfig, console: Console, out: Path | None = None, seconds: float | None = None) -> int:
    """Runs the session described by ``config``; returns the exit code (0; 130 after Ctrl-C, 143
    after SIGTERM; 2 when it cannot start or its files cannot be written). Without ``out`` the
    session goes to ``<output_dir>/demo``, a previous one there moved aside first."""
    from genxr.xr_runtime.openxr.source import OpenXRUnavailableError
    from genxr.xr_runtime.recording.format import RecordingError
    from genxr.xr_runtime.session import SessionError, SessionTerminated, check_duration, move_aside, run_session

    folder = out or config.output_dir / "demo"
    try:
        duration = check_duration(config.session.duration_s if seconds is None else seconds,
                                  "session.duration_s" if seconds is None else "--seconds")
        if out is None and (previous := move_aside(folder)) is not None:
            print_message(f"the previous demo session is now in {previous}/")
    except SessionError as err:
        print_error(f"{err}")
        return USAGE_ERROR
    frames_expected = int(duration * config.session.display_rate_hz)
    with Progress(TextColumn("session"), BarColumn(), TextColumn("frame {task.completed:.0f}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("frames", total=frames_expected)
        try:
            result = run_session(config, folder, seconds=duration,
                                 on_progress=lambda frame_id: progress.update(task, completed=frame_id + 1))
        except (SessionError, OpenXRUnavailableError, RecordingError) as err:
            print_error(f"{err}")
            return USAGE_ERROR
        except KeyboardInterrupt as err:  # before the frame loop ran: nothing to summarise
            signal = "SIGTERM" if isinstance(err, SessionTerminated) else "Ctrl-C"
            print_error(f"interrupted ({signal}) while the session was starting; {folder}/ holds what was opened")
            return EXIT_INTERRUPTED[signal]
    print_message(f"world service: {result.world_model}"
                  + (" (the simulator's renderer driven by the tracked hands, not a learned model)"
                     if result.world_model.startswith("ground_truth") else ""))
    print_message(f"avatar: {result.avatar}")
    console.print(summary_table(result.metrics))
    print_message(f"session folder: {result.folder}/ (recording/, trace.json for ui.perfetto.dev, metrics.json, "
                  "session.mp4)")
    if result.source_lost is not None:
        print_error(f"{result.source_lost}; the session stopped and every file was closed and is complete")
        return 2
    if result.interrupted:
        print_message(f"interrupted ({result.interrupted_by}): every file was closed and is complete", style="yellow")
        return EXIT_INTERRUPTED.get(result.interrupted_by, 130)
    return 0


def _finite_seconds(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number of seconds, got {value!r}")
    return value


def demo(
    source: Annotated[str | None, typer.Option(help="tracking source: sim, openxr or replay")] = None,
    replay: Annotated[Path | None, typer.Option(help="recording folder to replay (with --source replay)")] = None,
    backend: Annotated[str | None, typer.Option(help="bus backend: inproc or ray")] = None,
    world: Annotated[str | None, typer.Option(help="world service: auto, student or ground_truth")] = None,
    seconds: Annotated[float | None, typer.Option(min=0.1, callback=_finite_seconds,
                                                  help="session length (default: the preset's)")] = None,
    out: Annotated[Path | None, typer.Option(help="session folder, new or empty (default: <output_dir>/demo, "
                                                  "a previous session there moved aside to demo.1, ...)")] = None,
    preset: Annotated[str, typer.Option(help="configuration preset")] = "default",
    config: Annotated[Path | None, typer.Option(help="YAML file layered over the preset")] = None,
    hud: Annotated[bool, typer.Option("--hud", help="draw the latency HUD into every display frame")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="show the display frames in a window (needs a display)")] = False,
) -> None:
    """Run the end-to-end session on the embedded default: simulated user, in-process services."""
    from genxr.cli.demo import run_demo
    from genxr.platform.config import ConfigError, load_config

    session: dict = {}
    if source is not None:
        session["source"] = source
    if replay is not None:
        session["replay_path"] = replay
    if world is not None:
        session["world"] = world
    display = {key: True for key, on in (("hud", hud), ("preview", preview)) if on}
    try:
        cfg = load_config(preset, config, **({"session": session} if session else {}),
                          **({"bus": {"backend": backend}} if backend else {}), **({"display": display} if display else {}))
    except ConfigError as err:
        fail(f"{err}")
    raise typer.Exit(run_demo(cfg, console, out=out, seconds=seconds))
