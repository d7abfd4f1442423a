"""Seeded room layout: same seed same room, objects resting on the table inside the room."""

from __future__ import annotations

import numpy as np
import pytest

from genxr.components.sim.layout import BALL_ID, OBJECT_NAMES, make_layout
from genxr.components.sim.scene import Scene


def test_same_seed_same_room_other_seed_other_room():
    a, b, c = make_layout(5), make_layout(5), make_layout(6)
    for field in ("room_max", "wall_colour", "box_start", "ball_start", "button_cap_max"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.allclose(a.wall_colour, c.wall_colour) and not np.allclose(a.ball_start, c.ball_start)
    assert OBJECT_NAMES[BALL_ID] == "ball"


@pytest.mark.parametrize("seed", range(5))
def test_objects_rest_on_the_table_inside_the_room(seed):
    layout = make_layout(seed)
    assert layout.box_start[1] - layout.box_half[1] == pytest.approx(layout.table_top)
    assert layout.ball_start[1] - layout.ball_radius_m == pytest.approx(layout.table_top)
    for point in (layout.box_start, layout.ball_start, layout.button_cap_max):
        assert (layout.table_min[[0, 2]] <= point[[0, 2]]).all() and (point[[0, 2]] <= layout.table_max[[0, 2]]).all()
    assert (layout.room_min < layout.table_min).all() and (layout.table_max < layout.room_max).all()


def test_step_refuses_a_non_positive_time_step():
    with pytest.raises(ValueError, match="dt_s must be > 0, got 0"):
        Scene(0).step([], 0.0)
