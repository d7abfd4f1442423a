"""``genxr demo``: the main job on the embedded default.

The finished demo is the end-to-end session of the XR runtime: the simulated user's
tracking at 90 Hz -> bus -> world model and avatar services -> timewarp compositor ->
sinks, with a trace of every hop. Until every part of it exists, the demo says plainly
which parts are missing (and which issue builds them) and runs the parts that exist.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from genxr.platform.config import GenXRConfig


@dataclass(frozen=True)
class Part:
    name: str
    module: str
    issue: int

    @property
    def present(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False


SESSION_PARTS = (
    Part("platform spine (messages, bus, clock, tracing, config)", "genxr.platform.bus", 2),
    Part("simulated user and ground-truth world simulator", "genxr.components.sim", 3),
    Part("world model (causal streaming student)", "genxr.components.worldmodel", 5),
    Part("avatar (streaming conversational motion)", "genxr.components.avatar", 6),
    Part("XR runtime end-to-end session (frame loop, compositor, sinks)", "genxr.xr_runtime.session", 8),
)


def run_demo(config: GenXRConfig, console: Console) -> int:
    """Runs what exists of the session described by ``config``; returns the exit code."""
    table = Table(title="genxr demo: parts of the end-to-end session")
    table.add_column("part")
    table.add_column("status")
    table.add_column("issue", justify="right")
    for part in SESSION_PARTS:
        table.add_row(part.name, "[green]present[/]" if part.present else "[yellow]missing[/]", f"#{part.issue}")
    console.print(table)
    missing = [part for part in SESSION_PARTS if not part.present]
    if missing:
        console.print(
            "[bold]The end-to-end session cannot run yet[/]: it needs "
            + ", ".join(f"{p.name} (issue #{p.issue})" for p in missing)
            + ". Nothing is simulated in their place."
        )
    return 0
