"""Latency conditions of whole sessions: content age tells a 4 Hz world from a 30 Hz one (content
latency does not), ``display.added_latency_ms`` raises motion-to-photon by that much while the
recording keeps the tracking as sampled, the models answer a warm-up request before the first frame,
and ``session.warmup_s`` leaves the session's first seconds out of metrics.json."""

from __future__ import annotations

import json
import math

import pytest

from genxr.components.sim.world_service import GroundTruthWorld
from genxr.platform.clock import MONOTONIC
from genxr.platform.config import ConfigError, load_config
from genxr.xr_runtime.frame_loop import warm_up_session_id
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.session import run_session
from genxr.xr_runtime.sim_source import SimulatedSource

SECONDS = 1.5
WARMUP_S = 0.5


def config(session=None, display=None):
    return load_config("quick", session={"world": "ground_truth", "avatar": False, **(session or {})},
                       display={"width": 64, "height": 64, **(display or {})})


class SampledSource(SimulatedSource):
    """The simulated user, keeping every tracking frame it gave the loop."""

    def __init__(self) -> None:
        super().__init__(rate_hz=90.0)
        self.given = []

    def read(self, timing):
        frame = super().read(timing)
        if frame is not None:
            self.given.append(frame)
        return frame


class AskedWorld(GroundTruthWorld):
    """The ground-truth world, noting when each request came and for which session."""

    def __init__(self) -> None:
        super().__init__(seed=0)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, request):
        self.asked.append((request.session_id, MONOTONIC.now_ns()))
        return super().__call__(request)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """Four short sessions: 30 Hz world (the baseline), 4 Hz world, 100 ms added latency, 0.5 s warm-up."""
    root = tmp_path_factory.mktemp("latency")
    world, base_source, delayed_source = AskedWorld(), SampledSource(), SampledSource()
    return {
        "base": run_session(config(), root / "base", seconds=SECONDS, world=("ground_truth", world),
                            source=base_source),
        "world": world, "base_source": base_source,
        "slow": run_session(config({"world_rate_hz": 4}), root / "slow", seconds=SECONDS),
        "delayed": run_session(config(display={"added_latency_ms": 100}), root / "delayed", seconds=SECONDS,
                               source=delayed_source),
        "delayed_source": delayed_source,
        "warm": _timed(lambda: run_session(config({"warmup_s": WARMUP_S}), root / "warm", seconds=SECONDS)),
    }


def _timed(run):
    """``run()``'s result with ``wall_s``: the seconds the whole call took (loading included)."""
    start = MONOTONIC.now_ns()
    result = run()
    result.wall_s = (MONOTONIC.now_ns() - start) / 1e9
    return result


def test_content_age_tells_a_4_hz_world_from_a_30_hz_one(sessions):
    fast, slow = sessions["base"].metrics, sessions["slow"].metrics
    for metrics in (fast, slow):
        assert metrics["content_age_ms_p50"] >= metrics["content_latency_ms_p50"] > 0
        assert metrics["content_age_ms_p99"] >= metrics["content_age_ms_p50"]
    # a world frame stays on screen for a 250 ms request period at 4 Hz: ~125 ms of age on average
    assert slow["content_age_ms_p50"] - fast["content_age_ms_p50"] >= 60


def test_added_latency_raises_motion_to_photon_by_that_much(sessions):
    base, delayed = sessions["base"].metrics, sessions["delayed"].metrics
    assert delayed["rotational_m2p_ms_p50"] - base["rotational_m2p_ms_p50"] == pytest.approx(100, abs=15)
    assert delayed["content_latency_ms_p50"] > base["content_latency_ms_p50"], "the world is asked with it too"
    recording = read_recording(sessions["delayed"].folder / "recording")
    assert recording.manifest["config"]["display"]["added_latency_ms"] == 100
    given = sessions["delayed_source"].given
    assert [(f.frame_id, f.sample_time_ns, f.head) for f in recording.frames] == \
        [(f.frame_id, f.sample_time_ns, f.head) for f in given], "the recording keeps the tracking as sampled"


def test_the_world_answers_a_warm_up_request_before_the_first_frame(sessions):
    folder = sessions["base"].folder
    asked = sessions["world"].asked
    first_sample_ns = sessions["base_source"].given[0].sample_time_ns
    assert asked[0][0] == warm_up_session_id(folder.name) and asked[0][1] < first_sample_ns
    assert all(session == folder.name for session, _ in asked[1:]), "one warm-up request, then the session's"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["warm_up"]["world_model"]["error"] is None and metrics["warmup_frames"] == 0
    spans = [json.loads(line) for line in (folder / "spans.jsonl").read_text().splitlines()]
    warm = next(span for span in spans if span["name"] == "warm_up world_model")
    first_frame = min(span["ts"] for span in spans if span["name"] == "wait_frame")
    assert warm["ts"] + warm["dur"] <= first_frame
    assert all(span.get("args", {}).get("frame_id") != 0 for span in spans if span["ts"] < first_frame), \
        "the warm-up is no session frame"


def test_warmup_seconds_are_recorded_but_left_out_of_the_metrics(sessions):
    result = sessions["warm"]
    metrics = result.metrics
    recording = read_recording(result.folder / "recording")
    assert metrics["warmup_frames"] > 0 and metrics["frames"] > 0
    assert metrics["frames"] + metrics["warmup_frames"] == len(recording.frames), "frames = total - warm-up"
    assert metrics["video_frames"] + metrics["video_dropped_frames"] == len(recording.frames)
    # the measured duration is the loop's less its warm-up (at least WARMUP_S), whatever the machine's speed
    assert metrics["duration_s"] <= result.wall_s - WARMUP_S and metrics["frame_time_ms_p50"] is not None


@pytest.mark.parametrize("section, field, value", [
    ("display", "added_latency_ms", -5), ("display", "added_latency_ms", math.nan),
    ("display", "added_latency_ms", 1500), ("display", "added_latency_ms", "slow"),
    ("session", "warmup_s", -1), ("session", "warmup_s", math.nan), ("session", "warmup_s", "long"),
])
def test_bad_latency_settings_are_refused_naming_the_field(section, field, value):
    with pytest.raises(ConfigError, match=rf"{section}\.{field}"):
        load_config("quick", **{section: {field: value}})
