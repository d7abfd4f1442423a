"""The session measures where the avatar looks: gaze and facing angles toward the user's head for
every avatar motion frame received, summarised as SARAH's eye-contact ratio."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.avatar.metrics import gaze_and_facing_deg
from genxr.platform.messages import AVATAR_JOINT_COUNT
from genxr.xr_runtime.metrics import LoopMetrics

IDENTITY_6D = np.tile(np.array([1, 0, 0, 0, 1, 0], np.float32), (4, AVATAR_JOINT_COUNT, 1))
ROOT = np.tile(np.array([0.0, 0.9, 0.0], np.float32), (4, 1))


def test_the_eye_contact_ratio_is_the_share_of_frames_looking_within_12_degrees():
    metrics = LoopMetrics(avatar_gaze_deg=[5.0, 20.0, 11.9, 30.0], avatar_facing_deg=[1.0, 2.0, 3.0, 40.0])
    summary = metrics.summary()
    assert summary["avatar_eye_contact_ratio"] == 0.5
    assert summary["avatar_gaze_deg_p50"] == pytest.approx(15.95) and summary["avatar_facing_deg_p50"] == 2.5
    assert LoopMetrics().summary()["avatar_eye_contact_ratio"] is None, "no avatar: no number, not 0"


def test_an_avatar_facing_the_user_scores_better_than_one_turned_away():
    front = np.tile([0.0, 1.6, 2.0], (4, 1))
    behind = np.tile([0.0, 1.6, -2.0], (4, 1))
    gaze_front, facing_front = gaze_and_facing_deg(IDENTITY_6D, ROOT, front)
    gaze_behind, facing_behind = gaze_and_facing_deg(IDENTITY_6D, ROOT, behind)
    assert facing_front.max() < 10 and facing_behind.min() > 170
    assert gaze_front.max() < gaze_behind.min()
