"""Task success judged from the simulator's ground truth, frame by frame.

* ``press_button``: the button's light came on during the trial.
* ``grasp_and_move``: a hand grasped the ball and the ball then moved at least
  ``MOVE_M`` (0.10 m) from where it was when grasped.
"""

from __future__ import annotations

import numpy as np

from genxr.components.sim.layout import SceneState

MOVE_M = 0.10


class TaskJudge:
    """Watches :class:`SceneState` after every frame; ``success`` says whether the task was done."""

    def __init__(self, kind: str) -> None:
        if kind not in ("press_button", "grasp_and_move"):
            raise ValueError(f"the simulator cannot judge task kind {kind!r}; use success: experimenter")
        self.kind = kind
        self.success = False
        self.first_success_frame: int | None = None
        self._grasp_start: np.ndarray | None = None

    def observe(self, frame_id: int, state: SceneState) -> None:
        if self.success:
            return
        if self.kind == "press_button":
            done = state.button_lit
        else:
            if self._grasp_start is None and state.grasped_by is not None:
                self._grasp_start = np.asarray(state.ball_centre, dtype=np.float64).copy()
            done = (self._grasp_start is not None
                    and float(np.linalg.norm(np.asarray(state.ball_centre) - self._grasp_start)) >= MOVE_M)
        if done:
            self.success, self.first_success_frame = True, frame_id
