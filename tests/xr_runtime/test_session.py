"""The end-to-end session writes a complete folder - recording, valid Perfetto trace,
metrics, mp4 - from the simulated user, from a replay, and after Ctrl-C."""

from __future__ import annotations

import json

import av
import pytest

from genxr.platform.config import load_config
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.session import SessionError, run_session
from genxr.xr_runtime.sim_source import SimulatedSource
from tests.helpers.tracing import validate_chrome_trace
from tests.helpers.worlds import DEFAULT_STUDENT

SMALL = {"display": {"width": 64, "height": 64}}


def decoded_frames(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


@pytest.fixture(scope="module")
def sim_session(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sessions") / "sim"
    # A frame count, not a duration: a loaded machine shows fewer frames per second.
    return run_session(load_config("quick", **SMALL), folder, seconds=60.0, max_frames=60)


def test_sim_session_writes_every_file_of_the_session_folder(sim_session):
    folder = sim_session.folder
    assert {p.name for p in folder.iterdir()} == {"recording", "trace.json", "metrics.json", "session.mp4",
                                                  "spans.jsonl"}
    live = [json.loads(line) for line in (folder / "spans.jsonl").read_text().splitlines()]
    assert {"composite", "read_tracking"} <= {event["name"] for event in live}, "spans were written as they ran"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["frames"] == 60 and metrics["world_model"] == DEFAULT_STUDENT, "the shipped student is the default"
    for key in ("frame_time_ms_p99", "deadline_miss_rate", "compositor_ms_p50", "rotational_m2p_ms_p99",
                "content_latency_ms_p50", "world_model_hz", "avatar_hz"):
        assert key in metrics
    assert metrics["world_model_hz"] > 0 and metrics["content_latency_ms_p50"] > 0
    recording = read_recording(folder / "recording")
    assert recording.complete and len(recording.frames) == metrics["frames"]
    assert [e.kind for e in recording.events][0] == "started" and recording.events[-1].kind == "stopped"
    assert metrics["video_frames"] + metrics["video_dropped_frames"] == metrics["frames"]
    assert decoded_frames(folder / "session.mp4") == metrics["video_frames"] == metrics["frames"], \
        "60 frames are far below the recorder's queue: none dropped"


def test_sim_session_trace_is_valid_and_covers_every_stage(sim_session):
    trace = json.loads((sim_session.folder / "trace.json").read_text())
    validate_chrome_trace(trace)
    names = {e["name"] for e in trace["traceEvents"] if e["ph"] == "X"}
    assert {"wait_frame", "read_tracking", "request world_model", "serve world_model", "receive world_model",
            "composite", "submit video"} <= names
    assert any(e["ph"] == "f" for e in trace["traceEvents"]), "samples flow to the frames that showed them"


def test_the_ground_truth_world_is_one_setting_away(tmp_path):
    config = load_config("quick", session={"world": "ground_truth", "avatar": False}, **SMALL)
    result = run_session(config, tmp_path / "gt", seconds=60.0, max_frames=30)
    assert result.world_model == "ground_truth" and result.metrics["world_model_hz"] > 0


def test_replaying_a_recorded_session_reproduces_its_tracking(sim_session, tmp_path):
    config = load_config("quick", session={"source": "replay", "replay_path": sim_session.folder / "recording"},
                         **SMALL)
    replayed = run_session(config, tmp_path / "replay", seconds=30.0)
    original = read_recording(sim_session.folder / "recording").frames
    again = read_recording(tmp_path / "replay" / "recording").frames
    assert [f.frame_id for f in again] == [f.frame_id for f in original]
    assert [f.head for f in again] == [f.head for f in original]
    assert replayed.metrics["frames"] == len(original)


class InterruptedSource(SimulatedSource):
    """The simulated user, with the researcher pressing Ctrl-C at frame 20."""

    def read(self, timing):
        if timing.frame_id >= 20:
            raise KeyboardInterrupt
        return super().read(timing)


def test_ctrl_c_ends_cleanly_with_complete_files(tmp_path):
    config = load_config("quick", **SMALL)
    result = run_session(config, tmp_path / "interrupted", seconds=30.0, source=InterruptedSource(rate_hz=90.0))
    shown = result.metrics["frames"]  # frames 0..19, less any refreshes a loaded machine skipped
    assert result.interrupted and 1 <= shown <= 20
    recording = read_recording(tmp_path / "interrupted" / "recording")
    assert recording.complete and len(recording.frames) == shown and recording.frames[-1].frame_id < 20
    assert recording.manifest["ended"] == "interrupted"
    assert recording.events[-1].detail == "interrupted (Ctrl-C)"
    assert decoded_frames(tmp_path / "interrupted" / "session.mp4") == shown
    validate_chrome_trace(json.loads((tmp_path / "interrupted" / "trace.json").read_text()))


def test_unwritable_session_folder_fails_before_starting(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SessionError, match="cannot write the session folder"):
        run_session(load_config("quick"), blocker / "session")


def test_session_with_an_avatar_checkpoint_streams_motion_and_draws_it(tmp_path):
    from dataclasses import replace

    import torch

    from genxr.components.avatar.checkpoint import save_checkpoint
    from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
    from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE

    torch.manual_seed(0)
    generator = GENERATOR_PRESETS["tiny"]
    models = {"vae": MotionVAE(VAE_PRESETS["tiny"]).eval(), "generator": LatentGenerator(generator).eval(),
              "baseline": LatentGenerator(replace(generator, causal=False)).eval()}
    checkpoint = save_checkpoint(tmp_path / "avatar", models, {"note": "untrained, for the session test"})
    config = load_config("quick", session={"avatar_checkpoint": checkpoint}, **SMALL)
    result = run_session(config, tmp_path / "with-avatar", seconds=60.0, max_frames=60)
    assert result.avatar.startswith("streaming")
    assert result.metrics["avatar_hz"] > 0
    trace = json.loads((tmp_path / "with-avatar" / "trace.json").read_text())
    assert any(e["name"] == "serve avatar" for e in trace["traceEvents"] if e["ph"] == "X")


def test_session_without_an_avatar_checkpoint_says_why(tmp_path):
    config = load_config("quick", session={"avatar_checkpoint": tmp_path / "nothing-here"}, **SMALL)
    result = run_session(config, tmp_path / "no-avatar", seconds=0.5)
    assert result.avatar.startswith("unavailable: no avatar checkpoint at")
    assert result.metrics["avatar_hz"] == 0
