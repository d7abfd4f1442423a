"""The simulated room: layout from a seed, per-frame object state, and drawable primitives.

World frame = OpenXR STAGE space: right-handed, +X right, +Y up, -Z forward, floor at
y = 0, metres. The user stands at the origin facing -Z; a table stands in front with
three interactable objects on it:

* a push **button** (id 2) whose cap goes down under a finger and lights while pressed,
* a **box** (id 3) that hands push across the table (and that falls off its edge),
* a **ball** (id 4) that a thumb-index pinch grasps, carries and releases (it falls).

Layout, colours and textures vary with the seed; the same seed gives the same room.
Object ids (``OBJECT_NAMES``) are the values of the renderer's object-id mask.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from genxr.components.sim.contacts import button_press, capsule_points, fall, pinch_grasp, push_out
from genxr.components.sim.hand import HandPose
from genxr.components.sim.layout import BALL_ID, BOX_ID, BUTTON_ID, TABLE_ID, SceneConfig, SceneState, make_layout


class Scene:
    """A room with its objects, stepped forward by the ground-truth hands.

    ``step(hands, dt_s)`` applies, in this fixed order: button press, pinch grasp/carry/
    release of the ball, pushes of the box by hand capsules, then gravity - a deterministic
    function of the previous state and the hands.
    """

    def __init__(self, seed: int, config: SceneConfig | None = None) -> None:
        self.layout = make_layout(seed, config)
        self.state = SceneState(button_press_m=0.0, button_lit=False, box_centre=self.layout.box_start.copy(),
                                box_velocity_y=0.0, ball_centre=self.layout.ball_start.copy(), ball_velocity_y=0.0)

    def step(self, hands: list[HandPose], dt_s: float) -> SceneState:
        """Advances by ``dt_s`` seconds with the hands (single poses, world frame) and returns the new state."""
        if not dt_s > 0:
            raise ValueError(f"dt_s must be > 0, got {dt_s}")
        layout, state = self.layout, self.state
        points, radii = capsule_points(hands)
        press = button_press(points, radii, layout.button_cap_min, layout.button_cap_max, layout.button_travel_m)
        state = replace(state, button_press_m=press, button_lit=press >= 0.5 * layout.button_travel_m)
        state = pinch_grasp(state, hands, layout.ball_radius_m)
        box = push_out(state.box_centre, layout.box_half, points, radii)
        box, box_v = fall(box, state.box_velocity_y, float(layout.box_half[1]), layout, dt_s)
        ball, ball_v = state.ball_centre, state.ball_velocity_y
        if state.grasped_by is None:
            ball, ball_v = fall(ball, ball_v, layout.ball_radius_m, layout, dt_s)
        self.state = replace(state, box_centre=box, box_velocity_y=box_v, ball_centre=ball, ball_velocity_y=ball_v)
        return self.state

    def primitives(self, state: SceneState | None = None) -> dict[str, np.ndarray]:
        """Drawable objects of ``state`` (default: the current one), world frame, float32.

        ``boxes`` (NB, 2, 3) axis-aligned min/max corners, ``box_colours`` (NB, 3) RGB in
        [0, 1], ``box_ids`` (NB,) object ids; ``spheres`` (NS, 4) centre and radius,
        ``sphere_colours`` (NS, 3), ``sphere_ids`` (NS,).
        """
        layout, state = self.layout, state or self.state
        top_min, top_max = layout.table_min, layout.table_max
        legs = []
        for x in (top_min[0] + 0.05, top_max[0] - 0.05):
            for z in (top_min[2] + 0.05, top_max[2] - 0.05):
                legs.append(((x - 0.025, 0.0, z - 0.025), (x + 0.025, top_min[1], z + 0.025)))
        press = np.array([0.0, state.button_press_m, 0.0])
        boxes = [(top_min, top_max), *legs, (layout.button_base_min, layout.button_base_max),
                 (layout.button_cap_min - press, layout.button_cap_max - press),
                 (state.box_centre - layout.box_half, state.box_centre + layout.box_half)]
        cap = layout.button_lit_colour if state.button_lit else layout.button_colour
        colours = [layout.table_colour] * 5 + [np.full(3, 0.2), cap, layout.box_colour]
        ids = [TABLE_ID] * 5 + [BUTTON_ID, BUTTON_ID, BOX_ID]
        return {
            "boxes": np.array(boxes, dtype=np.float32),
            "box_colours": np.array(colours, dtype=np.float32),
            "box_ids": np.array(ids, dtype=np.int64),
            "spheres": np.array([[*state.ball_centre, layout.ball_radius_m]], dtype=np.float32),
            "sphere_colours": layout.ball_colour[None].astype(np.float32),
            "sphere_ids": np.array([BALL_ID], dtype=np.int64),
        }
