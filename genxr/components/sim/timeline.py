"""Keyframed motion channels blended with minimum-jerk profiles.

A :class:`Track` is one vector-valued channel (a head's yaw and pitch, a wrist's position
and Euler angles, a hand's 20 articulation angles) given as keyframes in seconds from the
start of the episode. Between consecutive keyframes the value follows the minimum-jerk
profile, so every movement starts and ends at rest, like a human reach. After the last
keyframe the value holds. A :class:`Timeline` groups the channels of one scripted user and
records which behaviour runs when and when tracking is forced to drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genxr.components.sim.geometry import minimum_jerk


class Track:
    """One channel: keyframe times (s, increasing) and values (D,)."""

    def __init__(self, value: np.ndarray) -> None:
        self.times: list[float] = [0.0]
        self.values: list[np.ndarray] = [np.asarray(value, dtype=np.float64).copy()]

    @property
    def end_s(self) -> float:
        return self.times[-1]

    @property
    def last(self) -> np.ndarray:
        return self.values[-1].copy()

    def move_to(self, value: np.ndarray, duration_s: float) -> Track:
        """Minimum-jerk movement from the last keyframe to ``value`` over ``duration_s`` > 0 seconds."""
        value = np.asarray(value, dtype=np.float64)
        if value.shape != self.values[0].shape:
            raise ValueError(f"keyframe of shape {value.shape} on a track of shape {self.values[0].shape}")
        if not duration_s > 0:
            raise ValueError(f"movement duration must be > 0 s, got {duration_s}")
        self.times.append(self.end_s + duration_s)
        self.values.append(value.copy())
        return self

    def hold(self, duration_s: float) -> Track:
        """Keeps the last value for ``duration_s`` seconds."""
        return self.move_to(self.last, duration_s)

    def hold_until(self, time_s: float) -> Track:
        """Keeps the last value until ``time_s`` (no-op if the track already runs that long)."""
        return self.hold(time_s - self.end_s) if time_s > self.end_s else self

    def sample(self, time_s: float) -> np.ndarray:
        """(D,) value at ``time_s`` seconds."""
        k = int(np.searchsorted(self.times, time_s, side="right"))
        if k >= len(self.times):
            return self.last
        if k == 0:
            return self.values[0].copy()
        t0, t1 = self.times[k - 1], self.times[k]
        s = minimum_jerk((time_s - t0) / (t1 - t0))
        return self.values[k - 1] + s * (self.values[k] - self.values[k - 1])


@dataclass
class Timeline:
    """The channels of one scripted user, its behaviour segments and forced tracking losses.

    ``head``: (yaw, pitch) radians; ``wrist[side]``: (x, y, z) metres in the world plus
    (yaw, pitch, roll) radians of the hand frame (see :func:`~genxr.components.sim.geometry.euler_yxz`);
    ``grip[side]``: 20 articulation angles; ``jitter``: (1,) factor on the tracking noise.
    ``segments``: (behaviour, start_s, end_s); ``losses``: (target, start_s, end_s) with
    target "left", "right" or "head".
    """

    head: Track
    wrist: dict[str, Track]
    grip: dict[str, Track]
    jitter: Track = field(default_factory=lambda: Track(np.ones(1)))
    segments: list[tuple[str, float, float]] = field(default_factory=list)
    losses: list[tuple[str, float, float]] = field(default_factory=list)

    def tracks(self) -> list[Track]:
        return [self.head, *self.wrist.values(), *self.grip.values(), self.jitter]

    @property
    def end_s(self) -> float:
        return max(track.end_s for track in self.tracks())

    def sync(self) -> float:
        """Holds every channel until the latest one ends; returns that time (s)."""
        end = self.end_s
        for track in self.tracks():
            track.hold_until(end)
        return end

    def behaviour_at(self, time_s: float) -> str:
        """Name of the behaviour running at ``time_s`` ("idle" outside every segment)."""
        for name, start, end in self.segments:
            if start <= time_s < end:
                return name
        return "idle"

    def lost(self, target: str, time_s: float) -> bool:
        """Whether tracking of ``target`` is forced off at ``time_s``."""
        return any(who == target and start <= time_s < end for who, start, end in self.losses)
