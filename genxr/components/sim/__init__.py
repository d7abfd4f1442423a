"""Ground-truth egocentric world simulator and scripted users (the simulated tracking source).

Conventions: OpenXR - right-handed, +X right, +Y up, -Z forward; the world is STAGE space
(floor at y = 0); cameras look down their -Z; metres, radians, integer nanoseconds.
See docs/simulator.md.

Public API:

* :class:`ScriptedUser` - seeded behaviours emitting :class:`~genxr.platform.messages.TrackingFrame`
  at ``rate_hz`` plus per-frame ground truth (:class:`SimStep`).
* :class:`HandModel`, :data:`ARTICULATION_NAMES`, :data:`ARTICULATION_LIMITS`, :data:`GRIPS`,
  :func:`openxr_to_mano21`, :func:`mano21_to_openxr` - the articulated hand.
* :class:`Scene`, :class:`SceneState`, :data:`OBJECT_NAMES` - room, objects, contacts.
* :class:`Renderer`, :class:`RendererConfig`, :class:`PinholeCamera` - batched torch ray caster.
* :func:`record_episode`, :func:`write_dataset`, :class:`SimClips` - episodes as arrays, data sets on disk.
"""

from genxr.components.sim.behaviours import BEHAVIOURS, UnknownBehaviourError, parse_behaviours
from genxr.components.sim.camera import PinholeCamera
from genxr.components.sim.episode import FIELDS, record_episode, render_batch
from genxr.components.sim.hand import (
    ARTICULATION_LIMITS,
    ARTICULATION_NAMES,
    GRIPS,
    ArticulationError,
    HandModel,
    HandModelConfig,
    HandPose,
)
from genxr.components.sim.mano import MANO21_JOINT_NAMES, mano21_to_openxr, openxr_to_mano21
from genxr.components.sim.renderer import RenderBatch, Renderer, RendererConfig, RenderOutput
from genxr.components.sim.scene import OBJECT_NAMES, Scene, SceneConfig, SceneState
from genxr.components.sim.tracking import TrackingNoise
from genxr.components.sim.user import ScriptedUser, SimStep

__all__ = [
    "ARTICULATION_LIMITS", "ARTICULATION_NAMES", "BEHAVIOURS", "FIELDS", "GRIPS", "MANO21_JOINT_NAMES",
    "OBJECT_NAMES", "ArticulationError", "HandModel", "HandModelConfig", "HandPose", "PinholeCamera",
    "RenderBatch", "RenderOutput", "Renderer", "RendererConfig", "Scene", "SceneConfig", "SceneState",
    "ScriptedUser", "SimStep", "TrackingNoise", "UnknownBehaviourError", "mano21_to_openxr",
    "openxr_to_mano21", "parse_behaviours", "record_episode", "render_batch",
]
