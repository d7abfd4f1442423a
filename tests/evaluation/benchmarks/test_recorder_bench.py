"""``genxr bench recorder`` reports throughput and fsync cost of a verified recording."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from genxr.cli.app import app


def test_bench_recorder_prints_the_figures_of_a_verified_recording():
    result = CliRunner().invoke(app, ["bench", "recorder", "--seconds", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["frames"] == 90 and figures["verified_records"] == 180, "a tracking frame and an image per frame"
    assert figures["frames_per_s"] > 0 and figures["mb_per_s"] > 0 and figures["fsync_ms_per_s"] > 0
    assert figures["chunks"] == 2 and figures["bytes_per_frame"] > 64 * 64 * 3


def test_the_bench_recording_is_a_stream_that_replays(tmp_path):
    from genxr.evaluation.benchmarks.recorder import run
    from genxr.xr_runtime.replay_source import ReplaySource

    run(seconds=0.5, folder=tmp_path)
    with ReplaySource(tmp_path / "recording", timing="fast") as source:  # refuses a stream that goes back
        assert len(source.recording.frames) == 45
