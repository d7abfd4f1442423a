"""``genxr dashboard`` (the latency dashboard) and ``genxr lsl`` (Lab Streaming Layer outlets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import console, fail, print_message


def dashboard_command(
    sessions: Annotated[list[Path] | None, typer.Argument(help="session folders (trace.json + metrics.json)")] = None,
    live: Annotated[bool, typer.Option(help="follow sessions still running (their spans.jsonl)")] = False,
    host: Annotated[str, typer.Option(help="address to bind; loopback only unless --allow-remote")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8050,
    allow_remote: Annotated[bool, typer.Option(help="allow a non-loopback --host (exposes session data)")] = False,
) -> None:
    """Latency dashboard: per-stage timelines and percentiles, frame times, motion-to-photon, comparison."""
    from genxr.evaluation.dashboard.server import DashboardError, check_bind, serve

    try:
        check_bind(host, allow_remote)
        serve(list(sessions or []), host=host, port=port, live=live, allow_remote=allow_remote, console=console)
    except DashboardError as err:
        fail(str(err))


def lsl_command(
    session: Annotated[Path, typer.Argument(help="session folder, running or finished")],
    wait_s: Annotated[float, typer.Option(min=0, help="seconds to wait for a consumer (LabRecorder) first")] = 30.0,
    rate_hz: Annotated[float, typer.Option(min=1, max=1000, help="nominal rate of the tracking stream")] = 90.0,
) -> None:
    """Publish a session's tracking, latency spans and events over Lab Streaming Layer (for LabRecorder)."""
    from genxr.evaluation.dashboard.data import is_session_folder
    from genxr.evaluation.lsl import LslPublisher, follow_session

    if not is_session_folder(session):
        fail(f"{session} is not a genxr session folder")
    publisher = LslPublisher(session.name, rate_hz)
    print_message(f"LSL streams 'genxr tracking', 'genxr latency', 'genxr events' of {session.name} are up; "
                  f"waiting up to {wait_s:g} s for a consumer")
    if not publisher.wait_for_consumers(wait_s):
        print_message("no consumer yet; publishing anyway (LSL delivers only to consumers connected now)")
    try:
        typer.echo(json.dumps(follow_session(session, publisher)))
    except KeyboardInterrupt:
        fail("stopped", 130)
