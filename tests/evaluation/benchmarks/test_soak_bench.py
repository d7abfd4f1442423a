"""``genxr bench soak`` runs the real in-process session for minutes: the avatar and the world stay
alive in every minute, nothing fails, memory stays flat. Asserts liveness and memory, never timings."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.evaluation.benchmarks.soak import run, slope_per_min
from tests.helpers.worlds import DEFAULT_STUDENT

MINUTE_KEYS = {"minute", "seconds", "frames", "deadline_misses", "deadline_miss_rate", "rss_mb",
               "world_hz", "world_updates", "world_timeouts", "world_failures",
               "avatar_hz", "avatar_updates", "avatar_timeouts", "avatar_failures"}

RSS_SLOPE_BOUND_MB_PER_MIN = 5.0
"""What a soak may grow by. The loop's own per-frame timing lists grow ~0.7 MB/min at 90 Hz
(3-4 Python ints a frame) and everything else is bounded (the tracer keeps a window and streams
the rest to spans.jsonl), while keeping any per-frame payload is far above the bound: a 256x256
display frame (197 kB) at 90 Hz is ~1 GB/min, a 64x64 world frame at 30 Hz ~22 MB/min, every
span kept in memory (as before spans were streamed: ~25k spans/min of ~400 B) ~10 MB/min. The
margin is for the allocator: a few MB returned to or taken from the OS between samples moves a
3-sample fit by ~1-2 MB/min."""


def test_a_fraction_of_a_minute_reports_every_key_per_minute_and_overall(tmp_path):
    result = CliRunner().invoke(app, ["bench", "soak", "--minutes", "0.1", "--out", str(tmp_path / "s"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for key in ("rss_mb_start", "rss_mb_end", "rss_mb_peak", "rss_slope_mb_per_min", "deadline_miss_rate",
                "world_failures", "world_timeouts", "avatar_failures", "avatar_timeouts", "world_model_hz",
                "avatar_hz", "frames", "per_minute"):
        assert key in report, key
    assert report["rss_slope_mb_per_min"] is None and report["rss_fit_samples"] == 0, "no whole minute to fit"
    assert report["rss_mb_end"] >= report["rss_mb_start"] > 0 and report["rss_mb_peak"] >= report["rss_mb_end"]
    assert report["world_model"] == DEFAULT_STUDENT and report["avatar"].startswith("streaming")
    [minute] = report["per_minute"]
    assert set(minute) == MINUTE_KEYS and minute["minute"] == 1 and minute["frames"] == report["frames"]
    assert minute["world_updates"] + minute["world_timeouts"] + minute["world_failures"] > 0
    assert report["session"] == str(tmp_path / "s") and (tmp_path / "s" / "spans.jsonl").is_file()


def test_the_slope_is_least_squares_per_minute():
    assert slope_per_min([(1.0, 500.0), (2.0, 502.0), (3.0, 504.0)]) == pytest.approx(2.0)
    assert slope_per_min([(1.0, 500.0), (2.0, 510.0), (3.0, 500.0)]) == pytest.approx(0.0)
    assert slope_per_min([(1.0, 500.0)]) is None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_three_minutes_keep_the_avatar_and_the_world_alive_in_flat_memory():
    report = run(minutes=3.0)
    assert report["seconds"] == pytest.approx(180, abs=1) and report["rate_hz"] == 90
    assert (report["world_failures"], report["avatar_failures"]) == (0, 0), report
    assert len(report["per_minute"]) == 3
    for minute in report["per_minute"]:
        assert minute["world_failures"] == minute["avatar_failures"] == 0, minute
        assert minute["world_hz"] > 0 and minute["avatar_hz"] > 0, f"a service died in minute {minute['minute']}"
    assert report["rss_fit_samples"] == 3
    assert report["rss_slope_mb_per_min"] < RSS_SLOPE_BOUND_MB_PER_MIN, report
