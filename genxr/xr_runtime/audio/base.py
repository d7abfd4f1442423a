"""What every part of the live conversation shares: its error, the model's sample rate, the
resampler, and the two interfaces - a conversation source, and the user's speech input."""

from __future__ import annotations

from math import gcd
from typing import Protocol, runtime_checkable

import numpy as np

from genxr.components.avatar.features import SAMPLE_RATE_HZ
from genxr.platform.messages import AudioChunk
from genxr.platform.units import NS_PER_S

MODEL_RATE_HZ = SAMPLE_RATE_HZ
"""Sample rate of the avatar's audio features (16 kHz): what every conversation hands out and records."""


class AudioError(RuntimeError):
    """Audio that cannot be captured, synthesised, read or played; the message names the config
    field (``audio.input_device``, ``audio.agent_lines[2]``, ...), what is wrong and what to do."""


@runtime_checkable
class ConversationSource(Protocol):
    """Both speakers' speech addressed by session time: what the frame loop hands the avatar."""

    start_time_ns: int
    """Session time (ns) of the conversation's first sample."""
    sample_rate_hz: int

    def chunks(self, start_ns: int, end_ns: int) -> list[AudioChunk]:
        """Each speaker's samples in [start_ns, end_ns) as one chunk per speaker ("user", "agent");
        a speaker with nothing in the span has no chunk, an empty span gives []."""
        ...


class UserInput(Protocol):
    """The user's speech as it is captured, on the session clock, at :data:`MODEL_RATE_HZ`."""

    def open(self, start_time_ns: int) -> None:
        """Starts capturing; sample 0 of the conversation is at ``start_time_ns``."""
        ...

    def read(self, start_ns: int, end_ns: int) -> AudioChunk | None:
        """The samples captured in [start_ns, end_ns), from the end of the previous read if that is
        earlier (by at most a second: samples that arrived after their span was read are handed
        out once, with the next read) and never one that was handed out before; None when none have arrived."""
        ...

    def close(self) -> None:
        ...

    def describe(self) -> str:
        """What the input is, for the session's manifest."""
        ...


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """``samples`` (n,) at ``from_hz`` as float32 (m,) at ``to_hz`` (polyphase, scipy's
    ``resample_poly``), m = ceil(n * to_hz / from_hz), clipped to [-1, 1]."""
    samples = np.asarray(samples, dtype=np.float32)
    if from_hz != to_hz and samples.size:
        from scipy.signal import resample_poly

        step = gcd(int(from_hz), int(to_hz))
        samples = resample_poly(samples, int(to_hz) // step, int(from_hz) // step).astype(np.float32)
    return np.clip(samples, -1.0, 1.0)


def index_at(time_ns: int, start_time_ns: int, rate_hz: int) -> int:
    """Index of the first sample at or after ``time_ns`` of a track whose sample 0 is at ``start_time_ns``."""
    return -(-(time_ns - start_time_ns) * rate_hz // NS_PER_S)


def time_of(index: int, start_time_ns: int, rate_hz: int) -> int:
    """Session time (ns) of sample ``index`` of a track whose sample 0 is at ``start_time_ns``, rounded
    down to the ns (so :func:`index_at` of it is ``index`` again)."""
    return start_time_ns + index * NS_PER_S // rate_hz
