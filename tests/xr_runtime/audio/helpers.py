"""WAV files and a fake PortAudio for the audio tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy.io import wavfile


def tone(seconds: float, rate_hz: int, hz: float = 220.0, amplitude: float = 0.5) -> np.ndarray:
    """A float32 sine (n,)."""
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(round(seconds * rate_hz)) / rate_hz)).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate_hz: int) -> Path:
    """``samples`` (float in [-1, 1]; (n,) or (n, channels)) as 16-bit PCM."""
    wavfile.write(path, rate_hz, (np.clip(samples, -1, 1) * 32767).round().astype(np.int16))
    return path


def device(name: str, inputs: int, outputs: int, rate_hz: float = 48_000.0) -> dict:
    return {"name": name, "max_input_channels": inputs, "max_output_channels": outputs, "default_samplerate": rate_hz}


class FakeStream:
    """Records what a session does with a sounddevice stream; ``callback`` is PortAudio's."""

    def __init__(self, **kwargs) -> None:
        self.kwargs, self.callback, self.started, self.closed = kwargs, kwargs["callback"], False, False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


class FakeSounddevice(SimpleNamespace):
    """The parts of the sounddevice module genxr uses, over a fixed device list."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices: list[dict], default: tuple[int, int] = (-1, -1)) -> None:
        super().__init__(devices=devices, default=SimpleNamespace(device=list(default)), streams=[])

    def query_devices(self) -> list[dict]:
        return self.devices

    def InputStream(self, **kwargs) -> FakeStream:  # sounddevice's name
        self.streams.append(FakeStream(**kwargs))
        return self.streams[-1]

    OutputStream = InputStream
