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

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "user": ["ScriptedUser", "SimStep"],
    "tracking": ["TrackingNoise"],
    "behaviours": ["BEHAVIOURS", "UnknownBehaviourError", "parse_behaviours"],
    "hand": ["HandModel", "HandModelConfig", "HandPose", "ARTICULATION_NAMES", "ARTICULATION_LIMITS", "GRIPS",
             "ArticulationError"],
    "mano": ["MANO21_JOINT_NAMES", "openxr_to_mano21", "mano21_to_openxr"],
    "scene": ["Scene"],
    "layout": ["SceneConfig", "SceneState", "OBJECT_NAMES"],
    "renderer": ["Renderer", "RendererConfig", "RenderBatch", "RenderOutput"],
    "camera": ["PinholeCamera"],
    "episode": ["FIELDS", "record_episode", "render_batch"],
    "dataset": ["DatasetConfig", "DatasetError", "write_dataset", "read_manifest"],
    "clips": ["SimClips"],
})
