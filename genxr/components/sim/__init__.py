"""Simulators that generate ground-truth data for genxr models.

This package is the ground-truth egocentric world simulator and its scripted users (the
simulated tracking source of a session); ``conversation/`` simulates conversations for
the avatar. Conventions: OpenXR - right-handed, +X right, +Y up, -Z forward; the world is
STAGE space (floor at y = 0); cameras look down their -Z; metres, radians, integer
nanoseconds. See docs/simulator.md.

Public API (imported lazily, so ``genxr --help`` does not load torch):

* :class:`ScriptedUser`, :class:`SimStep`, :class:`TrackingNoise` - seeded behaviours
  emitting :class:`~genxr.platform.messages.TrackingFrame` at ``rate_hz`` with per-frame
  ground truth; :data:`BEHAVIOURS`, :func:`parse_behaviours`.
* :class:`HandModel`, :class:`HandPose`, :data:`ARTICULATION_NAMES`, :data:`ARTICULATION_LIMITS`,
  :data:`GRIPS`, :func:`openxr_to_mano21`, :func:`mano21_to_openxr` - the articulated hand.
* :class:`Scene`, :class:`SceneState`, :data:`OBJECT_NAMES` - room, objects, contacts.
* :class:`Renderer`, :class:`RendererConfig`, :class:`RenderBatch`, :class:`PinholeCamera` - the ray caster.
* :func:`record_episode`, :func:`write_dataset`, :class:`DatasetConfig`, :class:`SimClips` - data sets.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    **dict.fromkeys(("ScriptedUser", "SimStep"), "genxr.components.sim.user"),
    "TrackingNoise": "genxr.components.sim.tracking",
    **dict.fromkeys(("BEHAVIOURS", "UnknownBehaviourError", "parse_behaviours"), "genxr.components.sim.behaviours"),
    **dict.fromkeys(("HandModel", "HandModelConfig", "HandPose", "ARTICULATION_NAMES", "ARTICULATION_LIMITS",
                     "GRIPS", "ArticulationError"), "genxr.components.sim.hand"),
    **dict.fromkeys(("MANO21_JOINT_NAMES", "openxr_to_mano21", "mano21_to_openxr"), "genxr.components.sim.mano"),
    **dict.fromkeys(("Scene", "SceneConfig", "SceneState", "OBJECT_NAMES"), "genxr.components.sim.scene"),
    **dict.fromkeys(("Renderer", "RendererConfig", "RenderBatch", "RenderOutput"), "genxr.components.sim.renderer"),
    "PinholeCamera": "genxr.components.sim.camera",
    **dict.fromkeys(("FIELDS", "record_episode", "render_batch"), "genxr.components.sim.episode"),
    **dict.fromkeys(("DatasetConfig", "DatasetError", "write_dataset", "read_manifest"),
                    "genxr.components.sim.dataset"),
    "SimClips": "genxr.components.sim.clips",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genxr.components.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
