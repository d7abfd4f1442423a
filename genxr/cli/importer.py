"""``genxr import FORMAT SOURCE --out DIR``: recorded human motion into a recording ``--source replay`` plays."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import JsonFlag, console, fail, print_json, print_message

PROGRESS_FROM_FRAMES = 5000
"""Imports of at least this many frames show a progress bar on stderr."""
HOT3D_OPTIONS = {"rate_hz": ("--rate-hz", 90.0), "origin": ("--origin", "first-head"),
                 "head_height_m": ("--head-height", None), "world_up": ("--world-up", None)}
"""The hot3d-only options: (flag, default)."""


def import_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="study-csv (genxr study export's tracking.csv) or hot3d "
                                                              "(a HOT3D sequence folder)")],
    source: Annotated[Path, typer.Argument(help="tracking.csv (or its folder) for study-csv; the sequence folder "
                                                "for hot3d")],
    out: Annotated[Path, typer.Option(help="recording folder to create (new or empty)")],
    rate_hz: Annotated[float, typer.Option(help="hot3d: frames per second of the recording")] = 90.0,
    origin: Annotated[str, typer.Option(help="hot3d: first-head (the first head pose at x=z=0 facing -Z) or "
                                             "source (the source world's origin)")] = "first-head",
    head_height: Annotated[float | None, typer.Option(help="hot3d, origin first-head: height of the first head "
                                                           "pose, m (default: the source's, or 1.6 m for Aria)")]
    = None,
    world_up: Annotated[str | None, typer.Option(help="hot3d: z or y, the source world's up axis (default: z for "
                                                      "Aria, y for Quest3)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Import recorded tracking (head, hands) as a genxr recording; prints a JSON report."""
    from rich.progress import Progress

    from genxr.xr_runtime.recording.importers import FORMATS, TrackingImportError

    if fmt not in FORMATS:
        fail(f"FORMAT must be one of {', '.join(FORMATS)}, got {fmt!r}")
    options = {"rate_hz": rate_hz, "origin": origin, "head_height_m": head_height, "world_up": world_up}
    if fmt != "hot3d":
        given = [HOT3D_OPTIONS[name][0] for name, value in options.items() if value != HOT3D_OPTIONS[name][1]]
        if given:
            fail(f"{', '.join(given)} apply to hot3d only, not {fmt}")
        options = {}
    with Progress(console=console, transient=True) as progress:
        task = None

        def on_progress(done: int, total: int | None) -> None:
            nonlocal task
            if total is None or total < PROGRESS_FROM_FRAMES:
                return
            if task is None:
                task = progress.add_task(f"importing {source.name}", total=total)
            progress.update(task, completed=done)

        try:
            report = FORMATS[fmt](source, out, on_progress=on_progress, **options)
        except TrackingImportError as err:
            fail(str(err))
        except OSError as err:
            fail(f"cannot import {source} into {out}: {err}", 1)
    print_json(report.as_dict(), as_json)
    print_message(f"imported {report.frames} frames into {out}; play them with: genxr demo --source replay "
                  f"--replay {out}")
