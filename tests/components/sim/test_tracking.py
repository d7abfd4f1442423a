"""The tracking model: forced and out-of-view losses clear the flags and keep the last joints; jitter has the configured size."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.tracking import TrackingNoise
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock


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


def test_bad_noise_is_named():
    with pytest.raises(ValueError, match="hand_position_std_m = nan"):
        TrackingNoise(hand_position_std_m=float("nan"))
    with pytest.raises(ValueError, match="loss_duration_s = \\(0.1, -1.0\\)"):
        TrackingNoise(loss_duration_s=(0.1, -1.0))
