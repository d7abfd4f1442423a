"""The agent's voice: its lines (text spoken by espeak-ng, or recorded WAVs) on a timeline of the
conversation, handed to the avatar as the agent's speech and played to the user through
PortAudio (:class:`SpeakerPlayer`) or nowhere (:class:`NullPlayer`, headless)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from genxr.platform.clock import Clock
from genxr.platform.messages import AudioChunk
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.audio.base import MODEL_RATE_HZ, AudioError, index_at, resample, time_of
from genxr.xr_runtime.audio.devices import close_stream, import_sounddevice, open_stream, resolve_device
from genxr.xr_runtime.audio.wav import read_wav

ESPEAK_TIMEOUT_S = 60.0
OUTPUT_FIELD = "audio.output_device"


def speak(text: str, voice: str = "en", rate_hz: int = MODEL_RATE_HZ, what: str = "agent line") -> np.ndarray:
    """``text`` spoken by espeak-ng (``espeak-ng --stdout -v VOICE``, the text on stdin) as mono
    float32 (n,) at ``rate_hz``. :class:`AudioError` naming ``what`` when espeak-ng is missing or fails."""
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise AudioError(f"{what}: espeak-ng is not installed: `apt install espeak-ng`, or record the line and give "
                         "it as `wav: FILE` instead of `text:`")
    try:
        spoken = subprocess.run([executable, "--stdout", "-v", voice], input=text.encode("utf-8"), capture_output=True,
                                timeout=ESPEAK_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise AudioError(f"{what}: espeak-ng took more than {ESPEAK_TIMEOUT_S:g} s; shorten the line") from None
    if spoken.returncode != 0 or not spoken.stdout:
        problem = spoken.stderr.decode("utf-8", "replace").strip() or "no audio"
        raise AudioError(f"{what}: espeak-ng -v {voice} failed (exit {spoken.returncode}): {problem}; "
                         "`espeak-ng --voices` lists the voices (audio.agent_voice)")
    return read_wav(spoken.stdout, f"{what} (espeak-ng's output)", rate_hz)


@dataclass(frozen=True)
class ScheduledLine:
    """One line on the agent's timeline: its first sample's index, its samples (n,) float32."""

    start: int
    samples: np.ndarray
    what: str
    """The line as configured: its text, or its WAV file."""

    @property
    def end(self) -> int:
        return self.start + self.samples.shape[0]


class Timeline:
    """The agent's lines at ``rate_hz``, silent between them."""

    def __init__(self, lines: Sequence[ScheduledLine], rate_hz: int) -> None:
        """``lines`` in order of their start, none overlapping the next."""
        self.lines, self.rate_hz = list(lines), rate_hz
        self._ends = np.array([line.end for line in self.lines], dtype=np.int64)

    def samples(self, first: int, count: int) -> np.ndarray:
        """float32 (count,): samples [first, first + count) (silence before 0 and between lines)."""
        out = np.zeros(max(count, 0), np.float32)
        for line in self.lines[int(np.searchsorted(self._ends, first, side="right")):]:
            if line.start >= first + count:
                break
            lo, hi = max(first, line.start), min(first + count, line.end)
            if lo < hi:
                out[lo - first:hi - first] = line.samples[lo - line.start:hi - line.start]
        return out

    def at_rate(self, rate_hz: int) -> Timeline:
        """The same lines resampled to ``rate_hz`` (each starting at the same time)."""
        if rate_hz == self.rate_hz:
            return self
        return Timeline([ScheduledLine(line.start * rate_hz // self.rate_hz, resample(line.samples, self.rate_hz,
                                       rate_hz), line.what) for line in self.lines], rate_hz)


class AgentVoice:
    """The agent's lines, each ``(start_s, text)`` (spoken by espeak-ng with ``voice``) or
    ``(start_s, Path)`` (a recorded WAV), ``start_s`` seconds after the conversation starts. All
    are synthesised or read when this is made, so a bad line stops the session before it
    starts. A line starts no earlier than the previous one ends (the agent does not talk over
    itself); :attr:`schedule` says when each one is spoken."""

    def __init__(self, lines: Sequence[tuple[float, str | os.PathLike[str]]], voice: str = "en",
                 field: str = "audio.agent_lines") -> None:
        scheduled: list[ScheduledLine] = []
        for number, (start_s, line) in sorted(enumerate(lines), key=lambda item: (item[1][0], item[0])):
            what = f"{field}[{number}]"
            if isinstance(line, str):
                samples, shown = speak(line, voice, MODEL_RATE_HZ, what), line
            else:
                samples, shown = read_wav(Path(line), f"{what}.wav", MODEL_RATE_HZ), str(line)
            start = round(start_s * MODEL_RATE_HZ)
            if scheduled:
                start = max(start, scheduled[-1].end)
            scheduled.append(ScheduledLine(start, samples, shown))
        self.timeline = Timeline(scheduled, MODEL_RATE_HZ)
        self.start_time_ns: int | None = None

    @property
    def schedule(self) -> list[dict[str, Any]]:
        """Each line: when it is spoken (s after the conversation starts), for how long, and what it is."""
        return [{"start_s": line.start / MODEL_RATE_HZ, "seconds": line.samples.shape[0] / MODEL_RATE_HZ,
                 "line": line.what} for line in self.timeline.lines]

    def open(self, start_time_ns: int) -> None:
        self.start_time_ns = start_time_ns

    def chunk(self, start_ns: int, end_ns: int) -> AudioChunk | None:
        """The agent's speech in [start_ns, end_ns) (zeros between lines); None for an empty span."""
        if self.start_time_ns is None:
            raise AudioError("the agent's voice is not open")
        first = max(index_at(start_ns, self.start_time_ns, MODEL_RATE_HZ), 0)
        last = index_at(end_ns, self.start_time_ns, MODEL_RATE_HZ)
        if last <= first:
            return None
        return AudioChunk(speaker="agent", sample_rate_hz=MODEL_RATE_HZ, samples=self.timeline.samples(first, last - first),
                          start_time_ns=time_of(first, self.start_time_ns, MODEL_RATE_HZ))


class AudioPlayer(Protocol):
    """Plays the agent's voice to the user while the conversation is open."""

    def open(self, voice: AgentVoice) -> None:
        ...

    def close(self) -> None:
        ...

    def describe(self) -> str:
        ...


class NullPlayer:
    """Plays nothing (``audio.output=none``: headless; the agent's voice is still recorded)."""

    def open(self, voice: AgentVoice) -> None:
        pass

    def close(self) -> None:
        pass

    def describe(self) -> str:
        return "none"


PLAYBACK_TOLERANCE_S = 0.05
"""How far playback may drift from the session clock before it jumps back in step."""


class SpeakerPlayer:
    """The agent's voice on a PortAudio output device (``audio.output_device``: index, name or
    None = the default) through a ``sounddevice.OutputStream`` at the device's own rate. Its
    callback plays, for each block, the timeline's samples at the session time the block reaches
    the speaker (PortAudio's DAC time on ``clock``); blocks follow each other sample by sample
    and jump only when that time strays more than :data:`PLAYBACK_TOLERANCE_S`."""

    def __init__(self, device: int | str | None, clock: Clock) -> None:
        self.clock = clock
        self._sd = import_sounddevice(OUTPUT_FIELD)
        self.device, self.info = resolve_device(self._sd, device, "output", OUTPUT_FIELD)
        self.rate_hz = int(self.info["default_samplerate"])
        self.timeline: Timeline | None = None
        self.start_time_ns = 0
        self._next: int | None = None
        self._stream: Any = None

    def open(self, voice: AgentVoice) -> None:
        if voice.start_time_ns is None:
            raise AudioError("open the agent's voice before playing it")
        self.timeline, self.start_time_ns, self._next = voice.timeline.at_rate(self.rate_hz), voice.start_time_ns, None
        self._stream = None
        self._stream = open_stream(self._sd, "output", self.device, self.info, self.rate_hz, self._on_block,
                                   OUTPUT_FIELD)

    def _on_block(self, out: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback (its own thread): fills ``out`` (frames, 1) float32."""
        dac = getattr(time_info, "outputBufferDacTime", 0.0)
        ahead_s = dac - time_info.currentTime if dac > 0 else 0.0
        out[:, 0] = self.block(frames, self.clock.now_ns() + round(ahead_s * NS_PER_S))

    def block(self, frames: int, first_sample_ns: int) -> np.ndarray:
        """float32 (frames,): what to play from session time ``first_sample_ns`` on."""
        due = index_at(first_sample_ns, self.start_time_ns, self.rate_hz)
        if self._next is None or abs(due - self._next) > PLAYBACK_TOLERANCE_S * self.rate_hz:
            self._next = due
        samples = self.timeline.samples(self._next, frames)
        self._next += frames
        return samples

    def close(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream)

    def describe(self) -> str:
        return f"speakers {self.device}: {self.info['name']} ({self.rate_hz} Hz)"
