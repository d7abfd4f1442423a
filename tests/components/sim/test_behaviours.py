"""Scripted behaviours: every one runs and emits valid frames; unknown names list the known ones."""

from __future__ import annotations

import pytest

from genxr.components.sim.behaviours import BEHAVIOURS, UnknownBehaviourError, parse_behaviours
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_every_behaviour_runs_and_emits_valid_two_handed_frames(behaviour):
    user = ScriptedUser(behaviour, seed=2, clock=ManualClock())
    steps = list(user.steps())
    assert len(steps) == user.frame_count > 90
    assert all(s.frame.left_hand.hand == "left" and s.frame.right_hand.hand == "right" for s in steps)
    assert {s.behaviour for s in steps} <= {behaviour, "idle"}


def test_unknown_behaviour_lists_the_known_ones():
    with pytest.raises(UnknownBehaviourError, match="unknown behaviour 'juggle' in 'wave\\+juggle'; known behaviours: idle"):
        ScriptedUser("wave+juggle")


def test_scripts_compose_with_plus_and_record_their_segments():
    assert parse_behaviours("wave + press_button") == ["wave", "press_button"]
    user = ScriptedUser("wave+press_button", seed=1, clock=ManualClock())
    (first, start1, end1), (second, start2, end2) = user.timeline.segments
    assert (first, second) == ("wave", "press_button") and start1 == 0 and end1 == start2 < end2 == user.duration_s
