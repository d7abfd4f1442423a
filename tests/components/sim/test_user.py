"""Scripted users: TrackingFrames at 90 Hz on the clock, reproducible from the seed, natural
(minimum-jerk) motion, tracking loss and jitter, and rejected bad input."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock
from genxr.platform.messages import StreamOrder, TrackingFrame, encode
from genxr.platform.units import NS_PER_S


def test_frames_are_stamped_at_the_rate_with_display_latency():
    clock = ManualClock(start_ns=5_000)
    user = ScriptedUser("wave", seed=1, rate_hz=90, clock=clock)
    frames = list(user.frames(180))
    order = StreamOrder()
    for k, frame in enumerate(frames):
        order.check(frame)
        assert isinstance(frame, TrackingFrame) and frame.frame_id == k
        assert frame.sample_time_ns == 5_000 + round(k * NS_PER_S / 90)
        assert frame.predicted_display_time_ns - frame.sample_time_ns == round(2 * NS_PER_S / 90)
    assert clock.now_ns() == frames[-1].sample_time_ns  # paced on the clock


def test_same_seed_gives_identical_frames_and_ground_truth_other_seed_differs():
    def run(seed):
        return list(ScriptedUser("press_button+tracking_loss", seed=seed, clock=ManualClock()).steps(150))

    a, b, c = run(3), run(3), run(4)
    assert [encode(s.frame) for s in a] == [encode(s.frame) for s in b]
    assert all(np.array_equal(x.hands[1].positions, y.hands[1].positions) for x, y in zip(a, b))
    assert encode(a[100].frame) != encode(c[100].frame)


def test_reaches_are_smooth():
    user = ScriptedUser("press_button", seed=5, clock=ManualClock())
    wrist = np.array([s.hands[1].positions[1] for s in user.steps()])
    speed = np.linalg.norm(np.diff(wrist, axis=0), axis=1) * 90
    assert speed.max() < 2.0  # m/s: a reach, not a teleport
    assert np.abs(np.diff(speed)).max() * 90 < 40.0  # m/s^2


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": -1}, "seed -1"), ({"rate_hz": 0.0}, "rate_hz 0.0"), ({"rate_hz": float("nan")}, "rate_hz nan"),
    ({"latency_ns": -5}, "latency_ns -5"),
])
def test_bad_user_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScriptedUser("idle", **kwargs)


def test_bad_frame_count_and_a_second_run_are_refused():
    user = ScriptedUser("idle", clock=ManualClock())
    with pytest.raises(ValueError, match="n_frames 0"):
        next(user.steps(0))
    next(user.steps(1))
    with pytest.raises(RuntimeError, match="already started; create a new one"):
        next(user.steps(1))
