"""WAV files of the conversation: any PCM or float WAV read as mono at the model's rate, and
tracks written as 16-bit PCM with their samples placed on the session clock."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from scipy.io import wavfile
from scipy.signal import resample_poly

from genxr.platform.messages import AudioChunk
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, AudioError, index_at, time_of
from genxr.xr_runtime.audio.wav import WavTrackWriter, read_wav
from tests.xr_runtime.audio.helpers import tone, write_wav


def test_a_stereo_44k_wav_is_read_as_its_mono_mix_resampled_to_16k(tmp_path):
    left, right = tone(0.5, 44_100, 220.0), tone(0.5, 44_100, 330.0)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 44_100)
    samples = read_wav(path, "audio.input_wav", MODEL_RATE_HZ)
    pcm = wavfile.read(path)[1].astype(np.float64) / 32768.0
    expected = resample_poly(pcm.mean(axis=1), 160, 441)  # 16000 / 44100 = 160 / 441
    assert samples.dtype == np.float32 and samples.shape == (8000,)
    np.testing.assert_allclose(samples, expected, atol=1e-6)


def test_float_and_8_bit_wavs_are_scaled_to_unit_range(tmp_path):
    wavfile.write(tmp_path / "float.wav", MODEL_RATE_HZ, np.array([0.0, 0.5, -1.0], np.float32))
    wavfile.write(tmp_path / "u8.wav", MODEL_RATE_HZ, np.array([128, 192, 0], np.uint8))
    np.testing.assert_allclose(read_wav(tmp_path / "float.wav", "x", MODEL_RATE_HZ), [0.0, 0.5, -1.0])
    np.testing.assert_allclose(read_wav(tmp_path / "u8.wav", "x", MODEL_RATE_HZ), [0.0, 0.5, -1.0])


def test_a_streamed_wav_whose_header_claims_more_data_is_read_to_its_end(tmp_path):
    pcm = (tone(0.1, MODEL_RATE_HZ) * 32767).astype("<i2").tobytes()
    header = bytearray(wave_bytes(pcm)[:44])
    header[4:8] = header[40:44] = (0x7FFFFFFF).to_bytes(4, "little")  # as espeak-ng --stdout writes it
    samples = read_wav(bytes(header) + pcm, "espeak", MODEL_RATE_HZ)
    assert samples.shape == (1600,)


def wave_bytes(pcm: bytes) -> bytes:
    import io

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(MODEL_RATE_HZ)
        out.writeframes(pcm)
    return buffer.getvalue()


@pytest.mark.parametrize(("content", "problem"), [
    (None, "no such file"),
    (b"just some text, not audio", "not a usable WAV file"),
    (wave_bytes(b""), "holds no samples"),
])
def test_an_unusable_wav_is_refused_naming_the_field_and_the_file(tmp_path, content, problem):
    path = tmp_path / "line.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError, match=problem) as caught:
        read_wav(path, "audio.agent_lines[1].wav", MODEL_RATE_HZ)
    assert "audio.agent_lines[1].wav" in str(caught.value) and str(path) in str(caught.value)


def test_a_wav_of_nan_samples_is_refused(tmp_path):
    wavfile.write(tmp_path / "nan.wav", MODEL_RATE_HZ, np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match="NaN or infinite"):
        read_wav(tmp_path / "nan.wav", "audio.input_wav", MODEL_RATE_HZ)


def test_sample_indices_and_times_round_trip_at_any_rate():
    for rate in (16_000, 22_050, 44_100, 48_000):
        for index in (0, 1, 7, 12_345, 10**7 + 3):
            assert index_at(time_of(index, 5 * NS_PER_S, rate), 5 * NS_PER_S, rate) == index


def chunk(start_s: float, samples: np.ndarray, start_ns: int = 0) -> AudioChunk:
    return AudioChunk(speaker="user", sample_rate_hz=MODEL_RATE_HZ, samples=samples.astype(np.float32),
                      start_time_ns=start_ns + round(start_s * NS_PER_S))


def read_pcm(path) -> tuple[int, np.ndarray]:
    rate, data = wavfile.read(path)
    return rate, data.astype(np.float64) / 32767.0


def test_track_places_chunks_by_time_with_silent_gaps_and_drops_overlaps(tmp_path):
    start_ns = 3 * NS_PER_S
    with WavTrackWriter(tmp_path / "user.wav", start_ns, MODEL_RATE_HZ) as track:
        track.write(chunk(0.0, np.full(100, 0.5), start_ns))
        track.write(chunk(200 / MODEL_RATE_HZ, np.full(100, -0.5), start_ns))  # 100 samples of silence before it
        track.write(chunk(250 / MODEL_RATE_HZ, np.full(100, 0.25), start_ns))  # its first 50 overlap: dropped
        track.pad_to(400)
        assert track.samples_written == 400
    rate, samples = read_pcm(tmp_path / "user.wav")
    assert rate == MODEL_RATE_HZ and samples.shape == (400,)
    expected = np.concatenate([np.full(100, 0.5), np.zeros(100), np.full(100, -0.5), np.full(50, 0.25), np.zeros(50)])
    np.testing.assert_allclose(samples, expected, atol=1e-4)


def test_track_file_is_a_complete_wav_after_every_write(tmp_path):
    with WavTrackWriter(tmp_path / "agent.wav", 0, MODEL_RATE_HZ) as track:
        with wave.open(str(tmp_path / "agent.wav")) as early:
            assert early.getnframes() == 0
        track.write(chunk(0.0, np.full(160, 0.1)))
        with wave.open(str(tmp_path / "agent.wav")) as later:
            assert later.getnframes() == 160 and later.getsampwidth() == 2 and later.getnchannels() == 1


def test_track_that_cannot_be_written_names_its_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write the conversation's audio") as caught:
        WavTrackWriter(blocker / "audio" / "user.wav", 0, MODEL_RATE_HZ).__enter__()
    assert str(blocker / "audio" / "user.wav") in str(caught.value)
