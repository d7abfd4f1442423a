"""The user's speech on the session clock: a WAV played in real time (for tests and CI) and the
PortAudio microphone (its capture buffer, and its device choice over a fake and the real PortAudio)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.signal import resample_poly

from genxr.platform.clock import ManualClock
from genxr.platform.units import NS_PER_MS, NS_PER_S
from genxr.xr_runtime.audio import inputs
from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, AudioError
from genxr.xr_runtime.audio.devices import resolve_device
from genxr.xr_runtime.audio.inputs import CaptureBuffer, MicrophoneInput, WavInput
from genxr.xr_runtime.audio.wav import read_wav
from tests.xr_runtime.audio.helpers import FakeSounddevice, device, tone, write_wav

START_NS = 7 * NS_PER_S


@pytest.fixture
def wav_input(tmp_path):
    """A 1 s 44.1 kHz WAV, opened at START_NS on a manual clock."""
    clock = ManualClock(START_NS)
    user = WavInput(write_wav(tmp_path / "user.wav", tone(1.0, 44_100), 44_100), clock)
    user.open(START_NS)
    return user, clock


def expected_samples(path, first: int, last: int) -> np.ndarray:
    from scipy.io import wavfile

    pcm = wavfile.read(path)[1].astype(np.float64) / 32768.0
    return resample_poly(pcm, 160, 441)[first:last]


def test_wav_input_hands_out_the_files_samples_for_each_span_resampled(wav_input):
    user, clock = wav_input
    clock.advance_ns(NS_PER_S)
    chunk = user.read(START_NS + 250 * NS_PER_MS, START_NS + 500 * NS_PER_MS)
    assert chunk.speaker == "user" and chunk.sample_rate_hz == MODEL_RATE_HZ
    assert chunk.start_time_ns == START_NS + 250 * NS_PER_MS and chunk.samples.shape == (4000,)
    np.testing.assert_allclose(chunk.samples, expected_samples(user.path, 4000, 8000), atol=1e-6)
    following = user.read(START_NS + 500 * NS_PER_MS, START_NS + 600 * NS_PER_MS)
    assert following.start_time_ns == START_NS + 500 * NS_PER_MS and following.samples.shape == (1600,)


def test_wav_input_plays_in_real_time_never_ahead_of_the_clock(wav_input):
    user, clock = wav_input
    assert user.read(START_NS, START_NS + NS_PER_S) is None, "nothing has been said at the start"
    clock.advance_ns(100 * NS_PER_MS)
    early = user.read(START_NS, START_NS + 200 * NS_PER_MS)
    assert early.samples.shape == (1600,), "only the 100 ms that have passed"
    clock.advance_ns(200 * NS_PER_MS)
    late = user.read(START_NS + 200 * NS_PER_MS, START_NS + 300 * NS_PER_MS)
    assert late.start_time_ns == START_NS + 100 * NS_PER_MS and late.samples.shape == (3200,), \
        "the 100 ms the clock had not reached come with the next read, once"
    np.testing.assert_allclose(np.concatenate([early.samples, late.samples]), expected_samples(user.path, 0, 4800),
                               atol=1e-6)


def test_wav_input_is_silent_after_the_file_ends(wav_input):
    user, clock = wav_input
    clock.advance_ns(2 * NS_PER_S)
    chunk = user.read(START_NS + 900 * NS_PER_MS, START_NS + 1100 * NS_PER_MS)
    assert chunk.samples.shape == (3200,)
    assert np.abs(chunk.samples[:1600]).max() > 0.1 and not chunk.samples[1600:].any()


def test_wav_input_of_a_missing_file_names_audio_input_wav(tmp_path):
    with pytest.raises(AudioError, match=r"audio\.input_wav .*no such file"):
        WavInput(tmp_path / "missing.wav", ManualClock())


def test_capture_buffer_reads_back_what_was_pushed_by_time():
    buffer = CaptureBuffer(1000, seconds=1.0)
    assert buffer.index_at(0) is None, "no timeline before the first block"
    buffer.push(np.arange(100, dtype=np.float32), first_sample_ns=NS_PER_S)
    buffer.push(np.arange(100, 200, dtype=np.float32), first_sample_ns=NS_PER_S + 100 * NS_PER_MS + 3 * NS_PER_MS)
    assert buffer.written == 200 and buffer.lost_samples == 0, "3 ms of stamp jitter is within tolerance"
    first, samples = buffer.read(buffer.index_at(NS_PER_S + 50 * NS_PER_MS), buffer.index_at(NS_PER_S + 150 * NS_PER_MS))
    assert first == 50 and buffer.time_of(first) == NS_PER_S + 50 * NS_PER_MS
    np.testing.assert_array_equal(samples, np.arange(50, 150))


def test_capture_buffer_fills_lost_blocks_with_silence_and_keeps_only_its_ring():
    buffer = CaptureBuffer(1000, seconds=1.0)
    buffer.push(np.ones(100, np.float32), first_sample_ns=0)
    buffer.push(np.ones(100, np.float32), first_sample_ns=300 * NS_PER_MS)  # 200 ms of blocks never came
    assert buffer.lost_samples == 200 and buffer.written == 400
    _, samples = buffer.read(0, 400)
    np.testing.assert_array_equal(samples, np.concatenate([np.ones(100), np.zeros(200), np.ones(100)]))
    buffer.push(np.full(900, 2.0, np.float32), first_sample_ns=400 * NS_PER_MS)
    first, samples = buffer.read(0, 1300)
    assert first == 300 and samples.shape == (1000,), "the ring keeps the last second"
    np.testing.assert_array_equal(samples[:100], np.ones(100))


def test_capture_buffer_follows_a_sound_card_clock_that_runs_fast():
    buffer = CaptureBuffer(1000, seconds=1.0)
    buffer.push(np.zeros(500, np.float32), first_sample_ns=0)
    buffer.push(np.ones(100, np.float32), first_sample_ns=400 * NS_PER_MS)  # stamped 100 ms before its place
    assert buffer.written == 600 and buffer.index_at(400 * NS_PER_MS) == 500, "the newest block is where it was stamped"


def fake_portaudio(monkeypatch, devices, default=(-1, -1)) -> FakeSounddevice:
    fake = FakeSounddevice(devices, default)
    monkeypatch.setattr(inputs, "import_sounddevice", lambda field: fake)
    return fake


def test_microphone_stamps_blocks_with_the_session_clock_and_resamples_them(monkeypatch):
    fake = fake_portaudio(monkeypatch, [device("Speakers", 0, 2), device("USB Mic", 1, 0, 48_000.0)])
    clock = ManualClock(START_NS)
    microphone = MicrophoneInput("usb", clock)
    assert microphone.device == 1 and microphone.rate_hz == 48_000
    microphone.open(START_NS)
    stream = fake.streams[-1]
    assert stream.started and stream.kwargs["device"] == 1 and stream.kwargs["samplerate"] == 48_000
    captured = tone(0.2, 48_000)
    for block in range(4):  # 50 ms blocks, each arriving 10 ms after its last sample (PortAudio's ADC time)
        clock.advance_ns(50 * NS_PER_MS)
        timing = SimpleNamespace(currentTime=10.06, inputBufferAdcTime=10.0)
        stream.callback(captured[block * 2400:(block + 1) * 2400, None], 2400, timing, SimpleNamespace())
    assert microphone.buffer.anchor_ns == START_NS - 10 * NS_PER_MS
    chunk = microphone.read(START_NS, START_NS + 100 * NS_PER_MS)
    assert chunk.sample_rate_hz == MODEL_RATE_HZ and chunk.start_time_ns == START_NS
    np.testing.assert_allclose(chunk.samples, resample_poly(captured[480:5280], 1, 3), atol=1e-6)
    assert microphone.read(START_NS, START_NS + 100 * NS_PER_MS) is None, "each sample is handed out once"
    microphone.close()
    assert stream.closed


def test_resolve_device_by_index_name_or_default():
    fake = FakeSounddevice([device("HDMI", 0, 2), device("Built-in Mic", 2, 0), device("USB Headset", 1, 2)],
                           default=(2, 0))
    assert resolve_device(fake, None, "input", "audio.input_device")[0] == 2, "PortAudio's default input"
    assert resolve_device(fake, None, "output", "audio.output_device")[0] == 0
    assert resolve_device(fake, "1", "input", "audio.input_device")[0] == 1, "digits from GENXR_AUDIO__INPUT_DEVICE"
    assert resolve_device(fake, "built-in mic", "input", "audio.input_device")[0] == 1
    assert resolve_device(fake, "headset", "output", "audio.output_device")[0] == 2


@pytest.mark.parametrize(("wanted", "problem"), [(0, "no input device 0"), ("HDMI", "names no input devices"),
                                                 ("mic", "matches 2 input devices")])
def test_a_device_that_is_not_there_is_refused_listing_the_devices(wanted, problem):
    fake = FakeSounddevice([device("HDMI", 0, 2), device("Mic A", 1, 0), device("Mic B", 1, 0)])
    with pytest.raises(AudioError, match=problem) as caught:
        resolve_device(fake, wanted, "input", "audio.input_device")
    message = str(caught.value)
    assert message.startswith(f"audio.input_device={wanted!r}") and "0: HDMI (0 in, 2 out, 48000 Hz)" in message
    assert "audio.input=wav" in message


def test_no_input_devices_at_all_is_a_clear_error():
    with pytest.raises(AudioError, match="there is no audio input device") as caught:
        resolve_device(FakeSounddevice([device("HDMI", 0, 2)]), None, "input", "audio.input_device")
    assert "audio.input_device=None" in str(caught.value) and "audio.input_wav" in str(caught.value)


def real_portaudio_devices() -> list:
    try:
        import sounddevice
    except (ImportError, OSError) as err:
        pytest.skip(f"no PortAudio here ({err}); .ci/run installs libportaudio2")
    return list(sounddevice.query_devices())


def test_the_real_portaudio_without_a_microphone_names_audio_input_device():
    if any(d["max_input_channels"] > 0 for d in real_portaudio_devices()):
        pytest.skip("this machine has an audio input device, so choosing one does not fail")
    with pytest.raises(AudioError, match=r"audio\.input_device=None: there is no audio input device"):
        MicrophoneInput(None, ManualClock())


def test_read_wav_and_wav_input_agree(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(0.3, 22_050), 22_050)
    assert WavInput(path, ManualClock()).samples.shape == read_wav(path, "x", MODEL_RATE_HZ).shape == (4800,)
