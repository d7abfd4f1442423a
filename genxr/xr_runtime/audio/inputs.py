"""The user's speech: a PortAudio microphone (:class:`MicrophoneInput`), or a WAV file played in
real time on the session clock (:class:`WavInput`, for tests and CI). Both hand out what has been
captured by session time, at the avatar's rate (:data:`~genxr.xr_runtime.audio.base.MODEL_RATE_HZ`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from genxr.platform.clock import Clock
from genxr.platform.messages import AudioChunk
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, AudioError, index_at, resample, time_of
from genxr.xr_runtime.audio.devices import close_stream, import_sounddevice, open_stream, resolve_device
from genxr.xr_runtime.audio.wav import read_wav

INPUT_FIELD = "audio.input_device"
LATE_S = 1
"""Samples that arrive after their span was read are handed out with the next read, up to this many seconds late."""


class WavInput:
    """The user's speech from the WAV file ``path`` (any rate: resampled at load to
    :data:`MODEL_RATE_HZ`), its sample 0 at the conversation's start and played in real time
    on ``clock``: a read never hands out samples later than ``clock.now_ns()``, as a microphone
    would not; after the file's end the user is silent."""

    def __init__(self, path: str | os.PathLike[str], clock: Clock, field: str = "audio.input_wav") -> None:
        self.path = Path(path)
        self.clock = clock
        self.samples = read_wav(self.path, field, MODEL_RATE_HZ)
        self.start_time_ns: int | None = None
        self._delivered: int | None = None
        """End of the samples handed out so far (the next read starts here at the earliest)."""

    def open(self, start_time_ns: int) -> None:
        self.start_time_ns, self._delivered = start_time_ns, None

    def read(self, start_ns: int, end_ns: int) -> AudioChunk | None:
        """The file's samples from ``start_ns`` (or the end of the last read) to ``min(end_ns, now)``."""
        if self.start_time_ns is None:
            raise AudioError(f"{self.path}: the WAV input is not open")
        first = index_at(start_ns, self.start_time_ns, MODEL_RATE_HZ)
        first = max(first if self._delivered is None else max(self._delivered, first - MODEL_RATE_HZ * LATE_S), 0)
        last = index_at(min(end_ns, self.clock.now_ns()), self.start_time_ns, MODEL_RATE_HZ)
        if last <= first:
            return None
        samples = np.zeros(last - first, np.float32)
        heard = self.samples[first:last]
        samples[:heard.shape[0]] = heard
        self._delivered = last
        return AudioChunk(speaker="user", sample_rate_hz=MODEL_RATE_HZ, samples=samples,
                          start_time_ns=time_of(first, self.start_time_ns, MODEL_RATE_HZ))

    def close(self) -> None:
        self.start_time_ns = None

    def describe(self) -> str:
        return f"wav {str(self.path)!r} ({self.samples.shape[0] / MODEL_RATE_HZ:.1f} s)"


CLOCK_TOLERANCE_S = 0.05
"""How far a captured block's time stamp may stray from where the capture timeline expects it
before the timeline follows the stamp (blocks lost to an overflow, or the sound card's clock
running apart from the session clock)."""


class CaptureBuffer:
    """Thread-safe ring of mono float32 samples at ``rate_hz`` (the last ``seconds`` of them) on a
    timeline of session time: sample ``i`` was captured at ``anchor_ns + i / rate_hz``. The audio
    callback :meth:`push`-es blocks stamped with the session clock; readers ask by index."""

    def __init__(self, rate_hz: int, seconds: float = 30.0) -> None:
        self.rate_hz = rate_hz
        self._ring = np.zeros(max(1, round(rate_hz * seconds)), np.float32)
        self.anchor_ns: int | None = None
        self.written = 0
        """Samples pushed in all (the ring holds the last ``len(ring)`` of them)."""
        self.lost_samples = 0
        """Samples the timeline filled with silence because their blocks never came."""
        self._lock = threading.Lock()

    def push(self, block: np.ndarray, first_sample_ns: int) -> None:
        """Appends ``block`` (n,), whose first sample was captured at ``first_sample_ns`` (session time)."""
        tolerance = round(CLOCK_TOLERANCE_S * self.rate_hz)
        with self._lock:
            if self.anchor_ns is None:
                self.anchor_ns = first_sample_ns
            gap = index_at(first_sample_ns, self.anchor_ns, self.rate_hz) - self.written
            if gap > tolerance:  # blocks were lost: the missing time is silence
                self._append(np.zeros(gap, np.float32))
                self.lost_samples += gap
            elif gap < -tolerance:  # the sound card's clock runs fast: follow the stamps
                self.anchor_ns = first_sample_ns - self.written * NS_PER_S // self.rate_hz
            self._append(np.asarray(block, np.float32))

    def _append(self, samples: np.ndarray) -> None:
        size = self._ring.shape[0]
        if samples.shape[0] > size:  # more than the ring holds: only its last `size` samples stay
            self.written += samples.shape[0] - size
            samples = samples[-size:]
        start = self.written % size
        head = min(samples.shape[0], size - start)
        self._ring[start:start + head] = samples[:head]
        self._ring[:samples.shape[0] - head] = samples[head:]
        self.written += samples.shape[0]

    def index_at(self, time_ns: int) -> int | None:
        """Index of the first sample captured at or after ``time_ns``; None before the first block."""
        return None if self.anchor_ns is None else index_at(time_ns, self.anchor_ns, self.rate_hz)

    def time_of(self, index: int) -> int:
        return time_of(index, self.anchor_ns or 0, self.rate_hz)

    def read(self, first: int, last: int) -> tuple[int, np.ndarray]:
        """(index of the first sample returned, samples) of [first, last), cut to what the ring still holds."""
        with self._lock:
            size = self._ring.shape[0]
            first = max(first, self.written - size, 0)
            last = min(last, self.written)
            if last <= first:
                return first, np.zeros(0, np.float32)
            indices = np.arange(first, last) % size
            return first, self._ring[indices].copy()


class MicrophoneInput:
    """The user's microphone: a PortAudio ``sounddevice.InputStream`` at the device's own rate,
    one channel, whose callback stamps each block with the session clock (the ADC time PortAudio
    reports, where it does) into a :class:`CaptureBuffer`; reads resample to :data:`MODEL_RATE_HZ`.
    The device is chosen when this is made (``audio.input_device``: index, name or None = the
    default), so a missing one stops the session before it starts."""

    def __init__(self, device: int | str | None, clock: Clock, buffer_s: float = 30.0) -> None:
        self.clock = clock
        self._sd = import_sounddevice(INPUT_FIELD)
        self.device, self.info = resolve_device(self._sd, device, "input", INPUT_FIELD)
        self.rate_hz = int(self.info["default_samplerate"])
        self.buffer = CaptureBuffer(self.rate_hz, buffer_s)
        self.overflows = 0
        self.start_time_ns: int | None = None
        self._delivered: int | None = None
        self._stream: Any = None

    def open(self, start_time_ns: int) -> None:
        self.start_time_ns, self._delivered = start_time_ns, None
        self._stream = None
        self._stream = open_stream(self._sd, "input", self.device, self.info, self.rate_hz, self._on_block, INPUT_FIELD)

    def _on_block(self, block: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback (its own thread): (frames, 1) float32 captured samples."""
        now_ns = self.clock.now_ns()
        adc = getattr(time_info, "inputBufferAdcTime", 0.0)
        age_s = time_info.currentTime - adc if adc > 0 else frames / self.rate_hz
        if getattr(status, "input_overflow", False):
            self.overflows += 1
        self.buffer.push(block[:, 0], now_ns - round(age_s * NS_PER_S))

    def read(self, start_ns: int, end_ns: int) -> AudioChunk | None:
        first = self.buffer.index_at(start_ns)
        last = self.buffer.index_at(end_ns)
        if first is None or last is None:
            return None
        if self._delivered is not None:
            first = max(self._delivered, first - self.buffer.rate_hz * LATE_S)
        first, samples = self.buffer.read(first, last)
        if samples.size == 0:
            return None
        self._delivered = first + samples.shape[0]
        return AudioChunk(speaker="user", sample_rate_hz=MODEL_RATE_HZ, start_time_ns=self.buffer.time_of(first),
                          samples=resample(samples, self.rate_hz, MODEL_RATE_HZ))

    def close(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream)

    def describe(self) -> str:
        return f"microphone {self.device}: {self.info['name']} ({self.rate_hz} Hz)"
