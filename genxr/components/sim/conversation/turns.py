"""Turn-taking: who speaks when, down to syllable onsets.

A conversation alternates turns between the two speakers. A turn is a run of inter-pausal
units (IPUs: stretches of continuous speech) separated by short pauses; the gap between
turns is drawn around 200 ms and is negative for overlaps (the next speaker starts before
the current one stops). Listeners add short backchannels ("mm-hm") during long turns,
which overlap the speaker. Inside an IPU, syllables follow at 4-5.5 per second with
jitter; about a third are stressed (every IPU's first syllable is).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPEAKERS: tuple[str, str] = ("user", "agent")


@dataclass(frozen=True)
class SpeechTrack:
    """One speaker's speech. ``ipus`` (n, 2) start/end seconds; ``syllables`` (m,) onset
    seconds, sorted; ``stressed`` (m,) bool; ``syllable_ends`` (m,) seconds."""

    ipus: np.ndarray
    syllables: np.ndarray
    syllable_ends: np.ndarray
    stressed: np.ndarray

    def active(self, times: np.ndarray) -> np.ndarray:
        """(T,) bool: inside an IPU at ``times`` (T,) seconds."""
        inside = (times[:, None] >= self.ipus[None, :, 0]) & (times[:, None] < self.ipus[None, :, 1])
        return inside.any(axis=1) if self.ipus.size else np.zeros(times.shape, bool)


def _ipu_syllables(rng: np.random.Generator, start: float, end: float) -> tuple[list[float], list[float], list[bool]]:
    rate = rng.uniform(4.0, 5.5)
    onsets, ends, stressed = [], [], []
    t = start
    while t < end - 0.08:
        interval = float(np.clip(rng.normal(1.0 / rate, 0.25 / rate), 0.09, 0.4))
        onsets.append(t)
        ends.append(min(t + 0.85 * interval, end))
        stressed.append(not onsets[:-1] or bool(rng.random() < 0.3))
        t += interval
    return onsets, ends, stressed


def simulate_turns(rng: np.random.Generator, seconds: float) -> dict[str, SpeechTrack]:
    """Speech of ``"user"`` and ``"agent"`` over ``[0, seconds)``."""
    ipus: dict[str, list[tuple[float, float]]] = {s: [] for s in SPEAKERS}
    speaker = SPEAKERS[int(rng.integers(2))]
    t = float(rng.uniform(0.2, 1.0))
    while t < seconds:
        turn_end = min(t + float(np.clip(rng.gamma(2.0, 1.5) + 0.6, 0.6, 9.0)), seconds)
        while t < turn_end - 0.3:
            ipu_end = min(t + rng.uniform(0.6, 2.6), turn_end)
            ipus[speaker].append((t, ipu_end))
            if ipu_end - t > 1.5 and rng.random() < 0.3:  # the listener backchannels
                at = rng.uniform(t + 0.5, ipu_end - 0.2)
                ipus[SPEAKERS[1 - SPEAKERS.index(speaker)]].append((at, at + rng.uniform(0.25, 0.45)))
            t = ipu_end + rng.uniform(0.15, 0.6)
        t = turn_end + float(np.clip(rng.normal(0.2, 0.35), -0.6, 1.5))
        if rng.random() > 0.15:
            speaker = SPEAKERS[1 - SPEAKERS.index(speaker)]
    tracks = {}
    for name in SPEAKERS:
        spans = sorted((a, min(b, seconds)) for a, b in ipus[name] if a < seconds)
        merged: list[tuple[float, float]] = []
        for a, b in spans:
            if merged and a < merged[-1][1] + 0.05:
                merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
            else:
                merged.append((a, b))
        onsets, ends, stressed = [], [], []
        for a, b in merged:
            o, e, s = _ipu_syllables(rng, a, b)
            onsets += o
            ends += e
            stressed += s
        tracks[name] = SpeechTrack(np.array(merged, dtype=np.float64).reshape(-1, 2), np.array(onsets),
                                   np.array(ends), np.array(stressed, dtype=bool))
    return tracks
