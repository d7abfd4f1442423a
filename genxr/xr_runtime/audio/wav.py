"""WAV files of the conversation: any PCM or float WAV read as mono float32 at a chosen rate, and
one speaker's track written as 16-bit PCM with its samples placed on the session clock."""

from __future__ import annotations

import io
import os
import warnings
import wave
from pathlib import Path
from typing import BinaryIO, Self

import numpy as np

from genxr.platform.messages import AudioChunk
from genxr.xr_runtime.audio.base import AudioError, index_at, resample

_FULL_SCALE = {np.dtype("int16"): 32768.0, np.dtype("int32"): 2147483648.0}
"""Integer WAV samples -> [-1, 1] (scipy reads 24-bit PCM as int32, left-aligned)."""


def read_wav(source: str | os.PathLike[str] | bytes, what: str, rate_hz: int) -> np.ndarray:
    """The WAV ``source`` (a path, or the bytes of a file) as mono float32 (n,) at ``rate_hz``:
    8/16/24/32-bit PCM or 32/64-bit float, any rate (resampled), channels averaged. A WAV whose
    header claims more data than it holds (a streamed one, e.g. ``espeak-ng --stdout``) is read
    up to its end. :class:`AudioError` naming ``what`` and the file if it cannot be used."""
    from scipy.io import wavfile

    where = f"{what} ({'in memory' if isinstance(source, bytes) else str(source)!r})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)  # streamed header, or extra chunks
            file_rate, data = wavfile.read(io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source))
    except FileNotFoundError:
        raise AudioError(f"{where}: no such file; give the path of a WAV file") from None
    except IsADirectoryError:
        raise AudioError(f"{where}: is a folder, not a WAV file") from None
    except (ValueError, OSError, EOFError) as err:
        raise AudioError(f"{where}: not a usable WAV file ({err}); write it as PCM (8/16/24/32-bit) or float WAV, "
                         "e.g. `ffmpeg -i IN -ac 1 -c:a pcm_s16le OUT.wav`") from None
    if data.size == 0:
        raise AudioError(f"{where}: the WAV file holds no samples")
    if file_rate <= 0:
        raise AudioError(f"{where}: the WAV header's sample rate is {file_rate} Hz")
    samples = data.astype(np.float64)
    if data.dtype == np.uint8:
        samples = (samples - 128.0) / 128.0
    elif data.dtype in _FULL_SCALE:
        samples = samples / _FULL_SCALE[data.dtype]
    elif data.dtype.kind != "f":
        raise AudioError(f"{where}: samples of type {data.dtype} are not supported; use PCM or float WAV")
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if not np.isfinite(samples).all():
        raise AudioError(f"{where}: the WAV file holds samples that are NaN or infinite")
    return resample(np.clip(samples, -1.0, 1.0), int(file_rate), rate_hz)


def pcm16(samples: np.ndarray) -> bytes:
    """float (n,) in [-1, 1] -> little-endian 16-bit PCM bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class WavTrackWriter:
    """One speaker's track as a 16-bit PCM mono WAV at ``rate_hz``, its sample 0 at session time
    ``start_time_ns``: each chunk is placed by its ``start_time_ns``, a gap before it is written
    as silence, and samples that overlap what is already written are dropped. The header is
    brought up to date with every write, so the file is a complete WAV at any moment."""

    def __init__(self, path: str | os.PathLike[str], start_time_ns: int, rate_hz: int) -> None:
        self.path = Path(path)
        self.start_time_ns = start_time_ns
        self.rate_hz = rate_hz
        self.samples_written = 0
        self._file: wave.Wave_write | None = None
        self._handle: BinaryIO | None = None

    def __enter__(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "wb")  # closed in __exit__
            self._file = wave.open(self._handle, "wb")
            self._file.setnchannels(1)
            self._file.setsampwidth(2)
            self._file.setframerate(self.rate_hz)
            self._file.writeframes(b"")  # the header, so even an empty track is a valid WAV
            self._handle.flush()
        except OSError as err:
            if self._handle is not None:
                self._handle.close()
            self._file = self._handle = None
            raise self._error(err) from err
        return self

    def _error(self, err: OSError) -> OSError:
        return OSError(err.errno, f"cannot write the conversation's audio {str(self.path)!r}: {err.strerror or err}",
                       str(self.path))

    def _write(self, samples: np.ndarray) -> None:
        if self._file is None:
            raise AudioError(f"{self.path}: the track is not open (use it as a context manager)")
        try:
            self._file.writeframes(pcm16(samples))
            self._handle.flush()
        except OSError as err:
            raise self._error(err) from err
        self.samples_written += samples.shape[0]

    def _silence(self, samples: int) -> None:
        block = np.zeros(min(samples, self.rate_hz), np.float32)  # a second at a time: a long gap stays small
        while samples > 0:
            self._write(block[:samples])
            samples -= block.shape[0]

    def write(self, chunk: AudioChunk) -> None:
        """Places ``chunk`` (resampled to the track's rate if it has another) on the track."""
        samples = resample(chunk.samples, chunk.sample_rate_hz, self.rate_hz)
        offset = index_at(chunk.start_time_ns, self.start_time_ns, self.rate_hz)
        if offset > self.samples_written:
            self._silence(offset - self.samples_written)
        skip = self.samples_written - offset
        if skip < samples.shape[0]:
            self._write(samples[max(skip, 0):])

    def pad_to(self, samples: int) -> None:
        """Silence up to ``samples`` samples in all (nothing if the track is already that long)."""
        if samples > self.samples_written:
            self._silence(samples - self.samples_written)

    def __exit__(self, *exc: object) -> None:
        if self._file is None:
            return
        file, handle, self._file, self._handle = self._file, self._handle, None, None
        try:
            file.close()
            handle.close()
        except OSError as err:
            handle.close()
            raise self._error(err) from err
