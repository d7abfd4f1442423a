"""The conversation the avatar hears: scripted by default, live from a WAV (or microphone) and
the agent's lines, recorded as two WAVs that are complete however the conversation ends; and
the ``audio`` config section, whose bad values are refused naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.io import wavfile

from genxr.components.avatar.service import ConversationAudio
from genxr.platform.clock import ManualClock
from genxr.platform.config import ConfigError, load_config
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.audio import (
    MODEL_RATE_HZ,
    ConversationSource,
    LiveConversation,
    RecordedConversation,
    ScriptedConversation,
    make_conversation,
    open_conversation,
)
from genxr.xr_runtime.audio.inputs import WavInput
from genxr.xr_runtime.audio.voice import AgentVoice, NullPlayer
from tests.xr_runtime.audio.helpers import tone, write_wav

START_NS = 2 * NS_PER_S


@pytest.fixture
def live(tmp_path):
    """A live conversation: the user's 1 s tone from a WAV, the agent's 0.5 s line from 0.5 s."""
    clock = ManualClock(START_NS)
    user = WavInput(write_wav(tmp_path / "user.wav", tone(1.0, MODEL_RATE_HZ, 220.0), MODEL_RATE_HZ), clock)
    voice = AgentVoice([(0.5, write_wav(tmp_path / "line.wav", tone(0.5, MODEL_RATE_HZ, 440.0), MODEL_RATE_HZ))])
    return LiveConversation(user, voice, NullPlayer(), clock), clock


def test_scripted_conversation_is_the_simulators_script():
    scripted = ScriptedConversation(START_NS, seed=3, seconds=4.0)
    original = ConversationAudio(START_NS, seed=3, seconds=4.0)
    assert isinstance(scripted, ConversationSource)
    for mine, theirs in zip(scripted.chunks(START_NS, START_NS + NS_PER_S), original.chunks(START_NS, START_NS + NS_PER_S),
                            strict=True):
        assert mine.speaker == theirs.speaker and np.array_equal(mine.samples, theirs.samples)


def test_live_conversation_hands_out_both_speakers_for_each_span(live):
    conversation, clock = live
    assert conversation.chunks(START_NS, START_NS + NS_PER_S) == [], "nothing before it starts"
    with conversation:
        assert isinstance(conversation, ConversationSource) and conversation.start_time_ns == START_NS
        clock.advance_ns(NS_PER_S)
        chunks = {chunk.speaker: chunk for chunk in conversation.chunks(START_NS + 400 * NS_PER_MS,
                                                                         START_NS + 600 * NS_PER_MS)}
        assert set(chunks) == {"user", "agent"}
        for chunk in chunks.values():
            assert chunk.start_time_ns == START_NS + 400 * NS_PER_MS and chunk.samples.shape == (3200,)
            assert chunk.sample_rate_hz == MODEL_RATE_HZ
        np.testing.assert_allclose(chunks["user"].samples, tone(1.0, MODEL_RATE_HZ, 220.0)[6400:9600], atol=1e-4)
        assert not chunks["agent"].samples[:1600].any(), "the agent is silent until 0.5 s"
        np.testing.assert_allclose(chunks["agent"].samples[1600:], tone(0.5, MODEL_RATE_HZ, 440.0)[:1600], atol=1e-4)
        assert conversation.chunks(START_NS + NS_PER_S, START_NS + NS_PER_S) == []


def read_track(path) -> np.ndarray:
    rate, data = wavfile.read(path)
    assert rate == MODEL_RATE_HZ and data.dtype == np.int16
    return data.astype(np.float64) / 32767.0


def test_recorded_conversation_writes_both_speakers_from_its_start_to_its_end(live, tmp_path):
    conversation, clock = live
    metadata: dict = {}
    with RecordedConversation(conversation, tmp_path / "session" / "audio", clock, metadata) as recorded:
        clock.advance_ns(300 * NS_PER_MS)
        frame_time = clock.now_ns()
        assert recorded.chunks(frame_time, frame_time) == [], "the loop's first request has an empty span"
        clock.advance_ns(400 * NS_PER_MS)
        handed = recorded.chunks(frame_time, clock.now_ns())
        assert {chunk.speaker for chunk in handed} == {"user", "agent"}
        clock.advance_ns(500 * NS_PER_MS)  # the session ends 1.2 s after the conversation started
    user, agent = (read_track(tmp_path / "session" / "audio" / f"{who}.wav") for who in ("user", "agent"))
    assert user.shape == agent.shape == (round(1.2 * MODEL_RATE_HZ),), "both complete up to the end"
    np.testing.assert_allclose(user[:16_000], tone(1.0, MODEL_RATE_HZ, 220.0), atol=1e-4)
    assert not user[16_000:].any(), "silence after the user's file ended"
    assert not agent[:8000].any() and not agent[16_000:].any()
    np.testing.assert_allclose(agent[8000:16_000], tone(0.5, MODEL_RATE_HZ, 440.0), atol=1e-4)
    audio = metadata["audio"]
    assert audio["files"] == ["audio/user.wav", "audio/agent.wav"] and audio["seconds"] == pytest.approx(1.2)
    assert audio["start_time_ns"] == START_NS and audio["sample_rate_hz"] == MODEL_RATE_HZ
    assert audio["input"].startswith("wav ") and audio["output"] == "none" and len(audio["agent_lines"]) == 1


def test_recorded_conversation_is_complete_and_closed_when_the_session_fails(live, tmp_path):
    conversation, clock = live
    with pytest.raises(KeyboardInterrupt), RecordedConversation(conversation, tmp_path / "audio", clock) as recorded:
        clock.advance_ns(250 * NS_PER_MS)
        recorded.chunks(START_NS, clock.now_ns())
        clock.advance_ns(250 * NS_PER_MS)
        raise KeyboardInterrupt
    for who in ("user", "agent"):
        assert read_track(tmp_path / "audio" / f"{who}.wav").shape == (8000,)
    assert conversation.user_input.start_time_ns is None, "the input was closed"


def test_make_conversation_is_scripted_by_default_and_live_as_configured(tmp_path):
    clock = ManualClock(START_NS)
    assert isinstance(make_conversation(load_config("quick"), START_NS, clock), ScriptedConversation)
    user = write_wav(tmp_path / "user.wav", tone(0.5, 8000), 8000)
    line = write_wav(tmp_path / "line.wav", tone(0.2, 16_000), 16_000)
    config = load_config("quick", audio={"conversation": "live", "input": "wav", "input_wav": str(user),
                                         "output": "none", "agent_lines": [{"at_s": 1.0, "wav": str(line)}]})
    live = make_conversation(config, START_NS, clock)
    assert isinstance(live, LiveConversation) and isinstance(live.user_input, WavInput)
    assert live.agent_voice.schedule[0]["start_s"] == 1.0 and isinstance(live.player, NullPlayer)
    scripted = make_conversation(load_config("quick"), START_NS, clock)
    with open_conversation(scripted, tmp_path / "session", clock, {}) as handed:
        assert handed is scripted, "a scripted conversation is handed over as it is, and records nothing"
    assert not (tmp_path / "session").exists()


@pytest.mark.parametrize(("audio", "field"), [
    ({"conversation": "talk"}, "audio.conversation = 'talk'"),
    ({"input": "line-in"}, "audio.input = 'line-in'"),
    ({"conversation": "live", "input": "wav"}, "audio.input = 'wav' needs audio.input_wav"),
    ({"input_device": -1}, "audio.input_device = -1"),
    ({"output_device": ""}, "audio.output_device = ''"),
    ({"output": "headphones"}, "audio.output = 'headphones'"),
    ({"agent_voice": "en; rm -rf"}, "audio.agent_voice = 'en; rm -rf'"),
    ({"agent_lines": [{"at_s": 1.0}]}, "audio.agent_lines.0: Value error, an agent line has exactly one of text"),
    ({"agent_lines": [{"at_s": 1.0, "text": "Hi", "wav": "hi.wav"}]}, "audio.agent_lines.0: Value error"),
    ({"agent_lines": [{"at_s": -1.0, "text": "Hi"}]}, "audio.agent_lines.0.at_s = -1.0"),
    ({"agent_lines": [{"at_s": 1.0, "text": ""}]}, "audio.agent_lines.0.text = ''"),
    ({"microphone": "usb"}, "audio.microphone = 'usb'"),
])
def test_a_bad_audio_setting_is_refused_naming_the_field(audio, field):
    with pytest.raises(ConfigError) as caught:
        load_config("quick", audio=audio)
    assert field in str(caught.value)


def test_the_audio_section_is_scripted_by_default_and_reads_the_environment(monkeypatch):
    assert load_config().audio.conversation == "scripted"
    monkeypatch.setenv("GENXR_AUDIO__INPUT_DEVICE", "3")
    monkeypatch.setenv("GENXR_AUDIO__CONVERSATION", "live")
    config = load_config()
    assert config.audio.conversation == "live" and config.audio.input_device == "3"
