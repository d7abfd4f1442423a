"""Scripted users: TrackingFrames at 90 Hz on the clock, reproducible from the seed, natural
(minimum-jerk) motion, tracking loss and jitter, and rejected bad input."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.behaviours import BEHAVIOURS, UnknownBehaviourError
from genxr.components.sim.timeline import Track
from genxr.components.sim.tracking import TrackingNoise
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import NS_PER_S, ManualClock
from genxr.platform.messages import StreamOrder, TrackingFrame, encode


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


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_every_behaviour_runs_and_emits_valid_two_handed_frames(behaviour):
    user = ScriptedUser(behaviour, seed=2, clock=ManualClock())
    steps = list(user.steps())
    assert len(steps) == user.frame_count > 90
    assert all(s.frame.left_hand.hand == "left" and s.frame.right_hand.hand == "right" for s in steps)
    assert {s.behaviour for s in steps} <= {behaviour, "idle"}


def test_motion_is_smooth_minimum_jerk():
    track = Track(np.zeros(1)).move_to(np.ones(1), 1.0)
    values = np.array([track.sample(t)[0] for t in np.linspace(0, 1, 101)])
    assert values[0] == 0 and values[-1] == 1 and values[50] == pytest.approx(0.5)
    velocity = np.diff(values)
    assert velocity[0] < 1e-4 and velocity[-1] < 1e-4 and velocity.max() == pytest.approx(1.875 / 100, rel=0.02)
    user = ScriptedUser("press_button", seed=5, clock=ManualClock())
    wrist = np.array([s.hands[1].positions[1] for s in user.steps()])
    speed = np.linalg.norm(np.diff(wrist, axis=0), axis=1) * 90
    assert speed.max() < 2.0  # m/s: a reach, not a teleport
    assert np.abs(np.diff(speed)).max() * 90 < 40.0  # m/s^2


def test_forced_losses_clear_flags_and_keep_the_last_joints():
    user = ScriptedUser("tracking_loss", seed=6, clock=ManualClock(), noise=TrackingNoise(loss_rate_hz=0.0))
    steps = list(user.steps())
    for target, start, end in user.timeline.losses:
        inside = [s for s in steps if start <= s.time_s < end]
        assert inside, f"no frame inside the {target} loss"
        for step in inside:
            if target == "head":
                assert not step.frame.head_tracked
            else:
                hand = getattr(step.frame, f"{target}_hand")
                assert not hand.is_active and (hand.location_flags == 0).all()
    tracked = [s.frame.right_hand for s in steps if s.frame.right_hand.is_active]
    assert tracked and all((h.location_flags == 0xF).all() for h in tracked)
    lost = next(k for k, s in enumerate(steps) if k and not s.frame.right_hand.is_active
                and steps[k - 1].frame.right_hand.is_active)
    np.testing.assert_array_equal(steps[lost].frame.right_hand.positions, steps[lost - 1].frame.right_hand.positions)


def test_hands_out_of_view_are_not_tracked_and_jitter_follows_the_noise_model():
    user = ScriptedUser("hands_out_of_view", seed=7, clock=ManualClock(), noise=TrackingNoise(loss_rate_hz=0.0))
    steps = list(user.steps())
    lowered = [s for s in steps if s.hands[1].positions[1, 1] < user.eye[1] - 0.8]
    assert lowered and not any(s.frame.right_hand.is_active or s.frame.left_hand.is_active for s in lowered)
    active = [s for s in steps if s.frame.right_hand.is_active]
    error = np.concatenate([s.frame.right_hand.positions - s.hands[1].positions for s in active])
    assert 0.0005 < np.sqrt((error ** 2).mean()) < 0.005  # ~2 mm jitter


def test_unknown_behaviour_lists_the_known_ones():
    with pytest.raises(UnknownBehaviourError, match="unknown behaviour 'juggle' in 'wave\\+juggle'; known behaviours: idle"):
        ScriptedUser("wave+juggle")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"seed": -1}, "seed -1"), ({"rate_hz": 0.0}, "rate_hz 0.0"), ({"rate_hz": float("nan")}, "rate_hz nan"),
    ({"latency_ns": -5}, "latency_ns -5"),
])
def test_bad_user_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScriptedUser("idle", **kwargs)


def test_bad_noise_and_frame_count_are_named():
    with pytest.raises(ValueError, match="hand_position_std_m = nan"):
        TrackingNoise(hand_position_std_m=float("nan"))
    with pytest.raises(ValueError, match="n_frames 0"):
        next(ScriptedUser("idle", clock=ManualClock()).steps(0))
