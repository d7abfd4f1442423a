"""``genxr demo``: the main job on the embedded default.

The demo is the end-to-end session of the XR runtime (:mod:`genxr.xr_runtime.session`):
the simulated user's tracking at 90 Hz -> bus -> world service -> timewarp compositor ->
sinks, with a trace of every hop, written to a session folder. Parts of the design that
do not exist yet are named, with the issue that builds them, and nothing stands in for
them: until a world-model checkpoint ships, the world service is the simulator's
ground-truth renderer and the session says so.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import genxr
from genxr.platform.config import GenXRConfig


@dataclass(frozen=True)
class Part:
    name: str
    module: str
    issue: int
    artifact: str | None = None
    """A file, relative to the genxr package, the part also needs (a shipped checkpoint)."""

    @property
    def present(self) -> bool:
        try:
            found = importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False
        return found and (self.artifact is None or (Path(genxr.__file__).parent / self.artifact).is_file())


SESSION_PARTS = (
    Part("platform spine (messages, bus, clock, tracing, config)", "genxr.platform.bus", 2),
    Part("simulated user and ground-truth world simulator", "genxr.components.sim.user", 3),
    Part("XR runtime (sources, frame loop, compositor, sinks)", "genxr.xr_runtime.session", 8),
    Part("world model (causal streaming student) with a shipped checkpoint", "genxr.components.worldmodel.service", 5,
         "components/worldmodel/checkpoints/student/config.json"),
    Part("avatar (streaming conversational motion) with a shipped checkpoint", "genxr.xr_runtime.avatar_service", 6,
         "components/avatar/checkpoints/cpu/config.json"),
    Part("Ray Serve deployments", "genxr.deploy.serve", 7),
)


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
    """Runs the session described by ``config``; returns the exit code (130 after Ctrl-C)."""
    from genxr.xr_runtime.openxr_source import OpenXRUnavailableError
    from genxr.xr_runtime.recording import RecordingError
    from genxr.xr_runtime.session import SessionError, run_session

    table = Table(title="genxr demo: parts of the end-to-end session")
    table.add_column("part")
    table.add_column("status")
    table.add_column("issue", justify="right")
    for part in SESSION_PARTS:
        table.add_row(part.name, "[green]present[/]" if part.present else "[yellow]missing[/]", f"#{part.issue}")
    console.print(table)
    missing = [part for part in SESSION_PARTS if not part.present]
    if missing:
        console.print("Missing, and not simulated in their place: "
                      + "; ".join(f"{p.name} (issue #{p.issue})" for p in missing) + ".")
    folder = out or config.output_dir / "demo"
    duration = config.session.duration_s if seconds is None else seconds
    frames_expected = int(duration * config.session.display_rate_hz)
    with Progress(TextColumn("session"), BarColumn(), TextColumn("frame {task.completed:.0f}"),
                  TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("frames", total=frames_expected)
        try:
            result = run_session(config, folder, seconds=duration,
                                 on_progress=lambda frame_id: progress.update(task, completed=frame_id + 1))
        except (SessionError, OpenXRUnavailableError, RecordingError) as err:
            console.print(f"[red]{err}[/]")
            return 2
    console.print(f"world service: [bold]{result.world_model}[/]"
                  + (" (the simulator's renderer driven by the tracked hands, not a learned model)"
                     if result.world_model.startswith("ground_truth") else ""))
    console.print(f"avatar: {result.avatar}")
    console.print(summary_table(result.metrics))
    console.print(f"session folder: {result.folder}/ (recording/, trace.json for ui.perfetto.dev, metrics.json, "
                  "session.mp4)")
    if result.interrupted:
        console.print("[yellow]interrupted: every file was closed and is complete[/]")
        return 130
    return 0
