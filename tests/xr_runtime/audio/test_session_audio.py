"""A session with a live conversation: the avatar hears the user's WAV and the agent's line, and
the session folder holds both as audio/user.wav and audio/agent.wav, complete up to its end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.io import wavfile

from genxr.platform.config import load_config
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.audio import MODEL_RATE_HZ
from genxr.xr_runtime.audio.wav import read_wav
from genxr.xr_runtime.recording.reader import read_recording
from genxr.xr_runtime.session import SessionError, run_session
from tests.xr_runtime.audio.helpers import tone, write_wav

SMALL = {"display": {"width": 64, "height": 64}}
ONE_CHUNK = MODEL_RATE_HZ * 4 // 30
"""Samples of one avatar request (4 frames at 30 fps): the most a track may differ from the session's length."""


@pytest.fixture(scope="module")
def avatar_checkpoint(tmp_path_factory):
    """A tiny untrained avatar (the session test's), so the session runs the avatar quickly."""
    import torch

    from genxr.components.avatar.checkpoint import save_checkpoint
    from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
    from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE

    torch.manual_seed(0)
    generator = GENERATOR_PRESETS["tiny"]
    models = {"vae": MotionVAE(VAE_PRESETS["tiny"]).eval(), "generator": LatentGenerator(generator).eval(),
              "baseline": LatentGenerator(replace(generator, causal=False)).eval()}
    return save_checkpoint(tmp_path_factory.mktemp("avatar") / "tiny", models, {"note": "untrained, for a test"})


@pytest.fixture(scope="module")
def live_session(tmp_path_factory, avatar_checkpoint):
    work = tmp_path_factory.mktemp("live")
    user_wav = write_wav(work / "user.wav", tone(3.0, 48_000, 180.0), 48_000)
    line_wav = write_wav(work / "hello.wav", tone(0.4, 22_050, 400.0), 22_050)
    config = load_config("quick", session={"world": "ground_truth", "avatar_checkpoint": str(avatar_checkpoint)},
                         audio={"conversation": "live", "input": "wav", "input_wav": str(user_wav), "output": "none",
                                "agent_lines": [{"at_s": 0.2, "wav": str(line_wav)}]}, **SMALL)
    assert config.session.duration_s == 2
    return run_session(config, work / "session"), user_wav


def test_live_session_records_both_speakers_for_the_whole_conversation(live_session):
    result, user_wav = live_session
    folder = result.folder
    assert {p.name for p in (folder / "audio").iterdir()} == {"user.wav", "agent.wav"}
    recording = read_recording(folder / "recording")
    audio = recording.manifest["audio"]
    assert recording.complete and audio["files"] == ["audio/user.wav", "audio/agent.wav"]
    stopped = next(event for event in recording.events if event.kind == "stopped")
    expected = (stopped.time_ns - audio["start_time_ns"]) * MODEL_RATE_HZ // NS_PER_S
    tracks = {}
    for speaker in ("user", "agent"):
        rate, samples = wavfile.read(folder / "audio" / f"{speaker}.wav")
        assert rate == MODEL_RATE_HZ and samples.dtype == np.int16
        assert abs(samples.shape[0] - expected) <= ONE_CHUNK, f"{speaker}.wav covers the conversation to its end"
        tracks[speaker] = samples.astype(np.float64) / 32767.0
    assert samples.shape[0] >= (result.metrics["duration_s"] - 0.2) * MODEL_RATE_HZ
    heard = read_wav(user_wav, "test", MODEL_RATE_HZ)
    span = min(tracks["user"].shape[0], heard.shape[0])
    np.testing.assert_allclose(tracks["user"][:span], heard[:span], atol=2e-4,
                               err_msg="the user's WAV, played in real time from the conversation's start")
    agent = tracks["agent"]
    assert not agent[:3200].any() and np.abs(agent[3200:9600]).max() > 0.4 and not agent[9600:].any(), \
        "the agent's line from 0.2 s to 0.6 s, silence around it"


def test_live_session_runs_the_avatar_on_the_conversation(live_session):
    result, _ = live_session
    assert result.avatar.startswith("streaming") and result.metrics["avatar_hz"] > 0
    metrics = json.loads((result.folder / "metrics.json").read_text())
    assert metrics["avatar_hz"] > 0 and metrics["frames"] > 0


def test_live_session_without_an_input_device_stops_before_it_starts(tmp_path, avatar_checkpoint):
    try:
        import sounddevice
    except (ImportError, OSError) as err:
        pytest.skip(f"no PortAudio here ({err}); .ci/run installs libportaudio2")
    if any(device["max_input_channels"] > 0 for device in sounddevice.query_devices()):
        pytest.skip("this machine has an audio input device, so the session would capture from it")
    config = load_config("quick", session={"world": "ground_truth", "avatar_checkpoint": str(avatar_checkpoint)},
                         audio={"conversation": "live", "output": "none"}, **SMALL)
    with pytest.raises(SessionError, match=r"audio\.input_device=None: there is no audio input device"):
        run_session(config, tmp_path / "session")
    assert not any((tmp_path / "session").iterdir()), "nothing was written"


def test_live_session_with_a_missing_input_wav_names_the_field(tmp_path, avatar_checkpoint):
    config = load_config("quick", session={"world": "ground_truth", "avatar_checkpoint": str(avatar_checkpoint)},
                         audio={"conversation": "live", "input": "wav", "input_wav": str(tmp_path / "nobody.wav"),
                                "output": "none"}, **SMALL)
    with pytest.raises(SessionError, match=r"audio\.input_wav .*nobody\.wav.*no such file"):
        run_session(config, tmp_path / "session")
