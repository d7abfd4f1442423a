"""The dashboard server: loopback-only unless told otherwise, follows a running session over
server-sent events, serves live spans as a Perfetto trace, and refuses bad input clearly."""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app as cli
from genxr.evaluation.dashboard.data import SPANS_FILE, load_session, perfetto_trace, read_spans
from genxr.evaluation.dashboard.server import DashboardError, check_bind, create_app, is_loopback
from genxr.platform.config import load_config
from genxr.platform.tracing import LiveSpanWriter, Tracer
from genxr.xr_runtime.session import run_session
from genxr.xr_runtime.sim_source import SimulatedSource
from tests.helpers.cli import said
from tests.helpers.dashboard import RunningServer


def test_non_loopback_binding_is_refused_unless_allowed_and_says_why():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")
    with pytest.raises(DashboardError, match="without any authentication"):
        check_bind("0.0.0.0", allow_remote=False)
    check_bind("0.0.0.0", allow_remote=True)
    result = CliRunner().invoke(cli, ["dashboard", ".", "--host", "0.0.0.0"])
    message = said(result.stderr)
    assert result.exit_code == 2 and "not a loopback address" in message and "--allow-remote" in message


def test_folders_that_are_not_sessions_and_unknown_ids_are_refused(sessions, tmp_path):
    with pytest.raises(DashboardError, match="is not a genxr session folder"):
        create_app([tmp_path])
    with RunningServer(create_app(sessions)) as url:
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{url}/api/sessions/7")
        listing = json.load(urllib.request.urlopen(f"{url}/api/sessions"))
        assert [s["name"] for s in listing["sessions"]] == ["fast_world", "slow_world"] and not listing["live"]
        script = urllib.request.urlopen(f"{url}/plotly.min.js").read()
        assert len(script) > 1_000_000 and b"plotly" in script[:2000].lower()


class HeldSource(SimulatedSource):
    """The simulated user, held from frame 60 on - once the recording has a chunk on disk -
    until the test has seen the session live."""

    def __init__(self, folder) -> None:
        super().__init__(rate_hz=90.0)
        self.chunks = folder / "recording" / "records.chunks"
        self.reached, self.release = threading.Event(), threading.Event()

    def read(self, timing):
        if (timing.frame_id >= 60 and not self.release.is_set() and self.chunks.is_file()
                and self.chunks.stat().st_size > 0):
            self.reached.set()
            assert self.release.wait(60), "the test never released the session"
        return super().read(timing)


def sse_messages(response):
    event = None
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            yield event or "message", json.loads(line[len("data: "):])
            event = None


def test_live_mode_follows_a_running_session_until_it_finishes(tmp_path):
    folder = tmp_path / "running"
    source = HeldSource(folder)
    config = load_config("quick", display={"width": 64, "height": 64})
    session = threading.Thread(target=run_session, args=(config, folder), kwargs={"seconds": 1.5, "source": source})
    session.start()
    try:
        assert source.reached.wait(60)
        with RunningServer(create_app([folder], live=True, poll_s=0.1)) as url:
            with urllib.request.urlopen(f"{url}/api/sessions/0/live", timeout=60) as response:
                stream = sse_messages(response)
                kind, first = next(stream)
                assert kind == "message" and not first["finished"] and first["recording"]["frames"] > 0
                assert not first["recording"]["closed"] and first["metrics"] is None
                source.release.set()
                messages = list(stream)
            assert messages[-1][0] == "finished"
            last = messages[-2][1]
            assert last["finished"] and last["recording"]["closed"]
            assert last["recording"]["frames"] > first["recording"]["frames"]
            assert last["stages"]["composite"]["count"] == last["metrics"]["frames"]
    finally:
        source.release.set()
        session.join()


def test_live_spans_file_is_read_while_the_trace_is_not_written_yet(tmp_path):
    tracer = Tracer()
    with LiveSpanWriter(tracer, tmp_path / SPANS_FILE, interval_s=0.01) as writer:
        for frame in range(50):
            with tracer.span("composite", track="compositor", frame_id=frame):
                pass
            with tracer.span("read_tracking", track="tracking", frame_id=frame):
                pass
        writer.flush()
        events, origin = read_spans(tmp_path)
        assert origin == SPANS_FILE and len(events) == 100
    assert writer.written == 100 and writer.missed_spans == 0
    with open(tmp_path / SPANS_FILE, "a") as handle:
        handle.write('{"name": "composite", "ca')  # the writer was mid-line
    view = load_session(tmp_path)
    assert view["spans_from"] == SPANS_FILE and view["stages"]["composite"]["count"] == 50
    assert len(view["frame_work_ms"]) == 50 and not view["finished"]
    trace = perfetto_trace(tmp_path)
    assert {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"} == {
        "compositor", "tracking"}
    assert sum(e["ph"] == "X" for e in trace["traceEvents"]) == 100


def test_tracer_spans_since_returns_only_newer_kept_spans():
    tracer = Tracer(max_spans=3)
    for frame in range(5):
        with tracer.span("a", track="x", frame_id=frame):
            pass
    spans, recorded = tracer.spans_since(3)
    assert recorded == 5 and [s.frame_id for s in spans] == [3, 4]
    assert [s.frame_id for s in tracer.spans_since(0)[0]] == [2, 3, 4], "older spans were dropped by max_spans"
    assert tracer.spans_since(5)[0] == []


def test_genxr_dashboard_command_serves_the_sessions_on_localhost(sessions):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", "from genxr.cli.app import main; main()", "dashboard",
                               *map(str, sessions), "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "COLUMNS": "200"})  # the URL it prints is one unbroken word
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                listing = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/sessions", timeout=5))
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "genxr dashboard did not come up"
                time.sleep(0.2)
        assert [s["name"] for s in listing["sessions"]] == ["fast_world", "slow_world"]
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/").read().decode()
        assert '<script src="/plotly.min.js">' in page and "cdn" not in page.lower()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"genxr dashboard on http://127.0.0.1:{port}/" in said(server.stderr.read())
