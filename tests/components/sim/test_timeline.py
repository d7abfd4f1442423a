"""Keyframe tracks: minimum-jerk movements between keyframes, holds, and checked keyframes."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.timeline import Track


def test_movement_follows_minimum_jerk_and_then_holds():
    track = Track(np.zeros(1)).move_to(np.ones(1), 1.0).hold(0.5)
    values = np.array([track.sample(t)[0] for t in np.linspace(0, 1, 101)])
    assert values[0] == 0 and values[-1] == 1 and values[50] == pytest.approx(0.5)
    velocity = np.diff(values)
    assert velocity[0] < 1e-4 and velocity[-1] < 1e-4 and velocity.max() == pytest.approx(1.875 / 100, rel=0.02)
    assert track.end_s == 1.5 and track.sample(7.0)[0] == 1.0


def test_bad_keyframes_are_named():
    with pytest.raises(ValueError, match="duration must be > 0 s, got 0"):
        Track(np.zeros(2)).move_to(np.ones(2), 0.0)
    with pytest.raises(ValueError, match=r"keyframe of shape \(3,\) on a track of shape \(2,\)"):
        Track(np.zeros(2)).move_to(np.ones(3), 1.0)
