"""Speech-like audio with syllable rhythm, synthesised from a :class:`SpeechTrack`.

Each syllable is a voiced vowel: a harmonic series on a falling f0 contour (stressed
syllables higher and louder), shaped by two formant resonances of a randomly chosen
vowel, under a fast-attack raised-cosine envelope; most start with a short noise burst
(a consonant). A faint noise floor fills silences.

Why not espeak-ng: it would be one more system package to install in ``.ci/run`` whose
output changes between versions (breaking "same seed, same bytes"), it gives no
ground-truth syllable onsets to score beat consistency against, and the avatar only
listens to prosody (energy, onsets, spectral balance), never to words.
"""

from __future__ import annotations

import numpy as np

from genxr.components.sim.conversation.turns import SpeechTrack

SAMPLE_RATE_HZ = 16_000
VOWEL_FORMANTS_HZ = np.array([[730, 1090], [530, 1840], [270, 2290], [570, 840], [300, 870]], dtype=np.float64)


def synthesize_speech(rng: np.random.Generator, track: SpeechTrack, seconds: float,
                      sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """(round(seconds * sample_rate_hz),) float32 in [-1, 1]: the speaker's audio."""
    n = round(seconds * sample_rate_hz)
    out = rng.normal(0.0, 1e-3, n)
    base_f0 = rng.uniform(95.0, 230.0)
    loudness = rng.uniform(0.25, 0.5)
    harmonics = np.arange(1, 16, dtype=np.float64)
    for onset, end, stressed in zip(track.syllables, track.syllable_ends, track.stressed):
        start, stop = int(onset * sample_rate_hz), min(int(end * sample_rate_hz), n)
        if stop - start < 16:
            continue
        t = np.arange(stop - start) / sample_rate_hz
        duration = t[-1] + 1.0 / sample_rate_hz
        f0 = base_f0 * (1.15 if stressed else 1.0) * (1.0 - 0.12 * t / duration) * rng.uniform(0.95, 1.05)
        phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate_hz
        f1, f2 = VOWEL_FORMANTS_HZ[rng.integers(len(VOWEL_FORMANTS_HZ))]
        freqs = harmonics[:, None] * f0[None, :]
        weights = (np.exp(-((freqs - f1) / 180.0) ** 2) + 0.6 * np.exp(-((freqs - f2) / 260.0) ** 2)
                   + 0.08 / harmonics[:, None]) * (freqs < sample_rate_hz / 2)
        voiced = (weights * np.sin(harmonics[:, None] * phase[None, :])).sum(axis=0)
        voiced /= max(np.abs(voiced).max(), 1e-6)
        attack = np.clip(t / 0.015, 0.0, 1.0)
        envelope = attack * 0.5 * (1.0 + np.cos(np.pi * np.clip(t / duration, 0.0, 1.0) ** 2))
        syllable = voiced * envelope * (1.0 if stressed else 0.65)
        if rng.random() < 0.7:
            burst = min(int(0.03 * sample_rate_hz), stop - start)
            noise = np.diff(rng.normal(0.0, 0.5, burst + 1)) * np.linspace(1.0, 0.0, burst)
            syllable[:burst] += noise
        out[start:stop] += loudness * syllable
    return np.clip(out, -1.0, 1.0).astype(np.float32)
