"""The simulated room's layout from a seed and its per-frame object state.

World frame = OpenXR STAGE space: right-handed, +X right, +Y up, -Z forward, floor at
y = 0, metres. Layout, colours and textures vary with the seed; the same seed gives the
same room. Object ids (``OBJECT_NAMES``) are the values of the renderer's object-id mask.
:class:`~genxr.components.sim.scene.Scene` steps the state; :mod:`genxr.components.sim.contacts`
computes the contacts it is stepped by.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OBJECT_NAMES: tuple[str, ...] = ("room", "table", "button", "box", "ball")
"""Object-id mask values: index = id (0 = room surfaces or nothing)."""
TABLE_ID, BUTTON_ID, BOX_ID, BALL_ID = 1, 2, 3, 4


@dataclass(frozen=True)
class SceneConfig:
    """Ranges (low, high) the seed draws the room from; metres and seconds."""

    room_width_m: tuple[float, float] = (3.5, 6.0)
    room_depth_m: tuple[float, float] = (3.5, 6.0)
    room_height_m: tuple[float, float] = (2.5, 3.0)
    table_height_m: tuple[float, float] = (0.72, 0.80)
    table_front_z_m: tuple[float, float] = (-0.36, -0.30)
    table_size_m: tuple[float, float] = (1.1, 0.6)
    button_travel_m: float = 0.012
    box_half_m: tuple[float, float] = (0.035, 0.05)
    ball_radius_m: tuple[float, float] = (0.028, 0.034)
    gravity_m_s2: float = 9.81


@dataclass(frozen=True)
class SceneLayout:
    """Everything about the room that does not change during an episode (world frame, metres, RGB in [0, 1])."""

    seed: int
    room_min: np.ndarray
    room_max: np.ndarray
    floor_colours: np.ndarray  # (2, 3) checker colours
    checker_m: float
    wall_colour: np.ndarray
    stripe_colour: np.ndarray
    stripe_height_m: float
    ceiling_colour: np.ndarray
    table_min: np.ndarray
    table_max: np.ndarray
    table_colour: np.ndarray
    button_base_min: np.ndarray
    button_base_max: np.ndarray
    button_cap_min: np.ndarray  # at rest (not pressed)
    button_cap_max: np.ndarray
    button_travel_m: float
    button_colour: np.ndarray
    button_lit_colour: np.ndarray
    box_half: np.ndarray
    box_start: np.ndarray
    box_colour: np.ndarray
    ball_radius_m: float
    ball_start: np.ndarray
    ball_colour: np.ndarray
    skin_colour: np.ndarray
    gravity_m_s2: float

    @property
    def table_top(self) -> float:
        return float(self.table_max[1])


@dataclass(frozen=True)
class SceneState:
    """Object state at one frame: button press depth (m) and light, box and ball centres (3,) m,
    vertical velocities (m/s), which hand holds the ball and where (offset in that hand's wrist frame)."""

    button_press_m: float
    button_lit: bool
    box_centre: np.ndarray
    box_velocity_y: float
    ball_centre: np.ndarray
    ball_velocity_y: float
    grasped_by: str | None = None
    grasp_offset: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def vector(self) -> np.ndarray:
        """(9,) float32: button press (m), lit (0/1), grasped (0 none, 1 left, 2 right), box centre, ball centre."""
        grasp = {None: 0.0, "left": 1.0, "right": 2.0}[self.grasped_by]
        return np.array([self.button_press_m, float(self.button_lit), grasp, *self.box_centre, *self.ball_centre],
                        dtype=np.float32)


STATE_FIELDS = ("button_press_m", "button_lit", "grasped_by", "box_x", "box_y", "box_z", "ball_x", "ball_y", "ball_z")
"""Names of the entries of :meth:`SceneState.vector`."""


def _colour(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, 3)


def make_layout(seed: int, config: SceneConfig | None = None) -> SceneLayout:
    """The room of ``seed``: sizes, table, object positions on the table, colours and textures."""
    config = config or SceneConfig()
    rng = np.random.default_rng([seed, 0x5CE7E])
    width, depth, height = (rng.uniform(*config.room_width_m), rng.uniform(*config.room_depth_m),
                            rng.uniform(*config.room_height_m))
    back = rng.uniform(0.8, 1.5)
    room_min = np.array([-width / 2, 0.0, back - depth])
    room_max = np.array([width / 2, height, back])
    table_w, table_d = config.table_size_m
    table_h = rng.uniform(*config.table_height_m)
    front = rng.uniform(*config.table_front_z_m)
    x0 = rng.uniform(-0.1, 0.1)
    table_min = np.array([x0 - table_w / 2, table_h - 0.04, front - table_d])
    table_max = np.array([x0 + table_w / 2, table_h, front])

    slots = x0 + np.array([-0.28, 0.0, 0.28])[rng.permutation(3)] + rng.uniform(-0.04, 0.04, 3)
    row_z = front - rng.uniform(0.17, 0.24, 3)
    base_half = np.array([0.04, 0.012, 0.04])
    base_centre = np.array([slots[0], table_h + base_half[1], row_z[0]])
    cap_half = np.array([0.028, config.button_travel_m / 2 + 0.002, 0.028])
    cap_centre = base_centre + np.array([0.0, base_half[1] + cap_half[1], 0.0])
    box_half = np.full(3, rng.uniform(*config.box_half_m))
    ball_radius = rng.uniform(*config.ball_radius_m)
    hue = rng.permutation(np.eye(3))
    return SceneLayout(
        seed=seed, room_min=room_min, room_max=room_max,
        floor_colours=np.stack([_colour(rng, 0.35, 0.6), _colour(rng, 0.15, 0.35)]),
        checker_m=rng.uniform(0.25, 0.6), wall_colour=_colour(rng, 0.55, 0.85), stripe_colour=_colour(rng, 0.2, 0.5),
        stripe_height_m=rng.uniform(0.8, 1.2), ceiling_colour=_colour(rng, 0.8, 0.95),
        table_min=table_min, table_max=table_max, table_colour=np.array([0.45, 0.3, 0.15]) * rng.uniform(0.8, 1.3),
        button_base_min=base_centre - base_half, button_base_max=base_centre + base_half,
        button_cap_min=cap_centre - cap_half, button_cap_max=cap_centre + cap_half,
        button_travel_m=config.button_travel_m, button_colour=np.array([0.45, 0.08, 0.08]),
        button_lit_colour=np.array([1.0, 0.95, 0.35]),
        box_half=box_half, box_start=np.array([slots[1], table_h + box_half[1], row_z[1]]),
        box_colour=0.15 + 0.7 * hue[0] + rng.uniform(0, 0.1, 3),
        ball_radius_m=ball_radius, ball_start=np.array([slots[2], table_h + ball_radius, row_z[2]]),
        ball_colour=0.15 + 0.7 * hue[1] + rng.uniform(0, 0.1, 3),
        skin_colour=np.array([0.85, 0.62, 0.5]) * rng.uniform(0.55, 1.1),
        gravity_m_s2=config.gravity_m_s2,
    )
