"""The agent's voice: lines spoken by espeak-ng or read from WAVs at their times in the
conversation, silence between them, and played to the user sample by sample on the session clock."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from genxr.platform.clock import ManualClock
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.audio import voice as voice_module
from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, AudioError
from genxr.xr_runtime.audio.voice import AgentVoice, SpeakerPlayer, speak
from tests.xr_runtime.audio.helpers import FakeSounddevice, device, tone, write_wav

START_NS = 5 * NS_PER_S
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (`apt install espeak-ng`; .ci/run installs it)")


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


def at(seconds: float) -> int:
    return START_NS + round(seconds * NS_PER_S)


@needs_espeak
def test_espeak_lines_are_spoken_at_their_times_with_silence_elsewhere():
    voice = AgentVoice([(0.5, "Hello, nice to meet you."), (3.0, "What brings you here today?")])
    voice.open(START_NS)
    first, second = voice.schedule
    assert first["start_s"] == 0.5 and second["start_s"] == 3.0 and 0.5 < first["seconds"] < 2.5
    whole = voice.chunk(START_NS, at(5.0))
    assert whole.speaker == "agent" and whole.start_time_ns == START_NS and whole.samples.shape == (5 * MODEL_RATE_HZ,)
    assert not whole.samples[:8000].any(), "silent before the first line"
    first_end = round((0.5 + first["seconds"]) * MODEL_RATE_HZ)
    assert rms(whole.samples[8000:first_end]) > 0.02, "the first line is spoken from 0.5 s"
    assert not whole.samples[first_end:3 * MODEL_RATE_HZ].any(), "silent between the lines"
    assert rms(whole.samples[3 * MODEL_RATE_HZ:round((3.0 + second["seconds"]) * MODEL_RATE_HZ)]) > 0.02
    span = voice.chunk(at(0.75), at(0.85))
    assert span.start_time_ns == at(0.75)
    np.testing.assert_array_equal(span.samples, whole.samples[12_000:13_600])


@needs_espeak
def test_an_unknown_espeak_voice_is_refused_naming_audio_agent_voice():
    with pytest.raises(AudioError, match=r"audio\.agent_lines\[0\]: espeak-ng -v xx-nonesuch failed .*audio\.agent_voice"):
        AgentVoice([(0.0, "Hello")], voice="xx-nonesuch")


def test_without_espeak_a_text_line_says_to_install_it_or_use_a_wav(monkeypatch):
    monkeypatch.setattr(voice_module.shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match=r"audio\.agent_lines\[0\]: espeak-ng is not installed: `apt install espeak-ng`"
                                         r", or .* as `wav: FILE`"):
        AgentVoice([(0.0, "Hello")])
    with pytest.raises(AudioError, match="espeak-ng is not installed"):
        speak("Hello")


def test_wav_lines_are_resampled_and_a_line_waits_for_the_one_before(tmp_path):
    long_line = write_wav(tmp_path / "long.wav", tone(1.0, 48_000, amplitude=0.5), 48_000)
    short_line = write_wav(tmp_path / "short.wav", tone(0.25, 16_000, amplitude=0.25), 16_000)
    voice = AgentVoice([(0.5, short_line), (0.0, long_line)])  # the second starts during the first: it waits
    voice.open(START_NS)
    assert [(line["start_s"], line["seconds"], line["line"]) for line in voice.schedule] == [
        (0.0, 1.0, str(long_line)), (1.0, 0.25, str(short_line))]
    samples = voice.chunk(START_NS, at(1.5)).samples
    assert 0.45 < np.abs(samples[:16_000]).max() < 0.51 and 0.2 < np.abs(samples[16_000:20_000]).max() < 0.26
    assert not samples[20_000:].any()


def test_a_bad_wav_line_names_its_entry(tmp_path):
    (tmp_path / "broken.wav").write_text("not audio")
    with pytest.raises(AudioError, match=r"audio\.agent_lines\[1\]\.wav .*broken\.wav.*not a usable WAV file"):
        AgentVoice([(0.0, write_wav(tmp_path / "ok.wav", tone(0.1, 16_000), 16_000)), (1.0, tmp_path / "broken.wav")])


def test_the_agents_voice_before_it_is_opened_is_an_error():
    with pytest.raises(AudioError, match="not open"):
        AgentVoice([]).chunk(0, NS_PER_S)


def test_speaker_player_plays_the_timeline_at_the_time_each_block_reaches_the_speaker(tmp_path, monkeypatch):
    fake = FakeSounddevice([device("Mic", 1, 0), device("Speakers", 0, 2, 48_000.0)])
    monkeypatch.setattr(voice_module, "import_sounddevice", lambda field: fake)
    line = tone(0.5, 16_000)
    voice = AgentVoice([(0.25, write_wav(tmp_path / "line.wav", line, 16_000))])
    voice.open(START_NS)
    player = SpeakerPlayer(None, ManualClock())
    assert player.device == 1 and player.rate_hz == 48_000, "the first output device when PortAudio has no default"
    player.open(voice)
    timeline = voice.timeline.at_rate(48_000)
    first = player.block(480, at(0.25))
    np.testing.assert_array_equal(first, timeline.samples(12_000, 480))
    jittered = player.block(480, at(0.25) + 13 * NS_PER_MS)  # 3 ms late: the blocks still follow sample by sample
    np.testing.assert_array_equal(jittered, timeline.samples(12_480, 480))
    jumped = player.block(480, at(0.5))  # 240 ms later: back in step with the clock
    np.testing.assert_array_equal(jumped, timeline.samples(24_000, 480))
    assert not player.block(480, at(2.0)).any(), "silence after the line"
    player.close()
    assert fake.streams[-1].closed


def test_a_missing_output_device_names_audio_output_device(monkeypatch):
    monkeypatch.setattr(voice_module, "import_sounddevice", lambda field: FakeSounddevice([device("Mic", 1, 0)]))
    with pytest.raises(AudioError, match=r"(?s)audio\.output_device=None: there is no audio output device.*"
                                         r"audio\.output=none"):
        SpeakerPlayer(None, ManualClock())
