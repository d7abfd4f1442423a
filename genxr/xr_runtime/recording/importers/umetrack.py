"""UmeTrack hands: a user profile's forward kinematics -> 21 landmarks -> OpenXR's 26 joints.

HOT3D stores hands as UmeTrack pose parameters (a wrist pose and 20 joint angles, radians),
not as points; the points come from the sequence's hand profile
(``umetrack_hand_user_profile.json``, key ``hand_model``; lengths in millimetres). The model
is UmeTrack's (facebookresearch/UmeTrack ``lib/common/hand_skinning.py``, as HOT3D's
``data_loaders/umetrack_layer.py`` runs it): joint ``j`` rotates by ``angle_j`` about
``joint_rotation_axes[j]`` through ``joint_rest_positions[j]`` (both in the hand frame); each of
the five digits (thumb first) chains its four joints from the wrist and yields three bone frames
(after its joints 0-1, 2 and 3); with the root and the wrist that is 17 frames, and each landmark
is its rest position carried by its bones (linear blend skinning with
``landmark_rest_bone_indices`` / ``_weights``). The model is a left hand: a right hand's wrist
matrix has its first column negated, as HOT3D does. No MANO model (license-restricted) is needed.

Landmarks (UmeTrack order): 0-4 thumb..little tips, 5 wrist, 6 thumb MCP ("thumb intermediate
frame"), 7 thumb IP ("thumb distal frame"), then per finger (index, middle, ring, little) its
MCP, PIP and DIP ("proximal / intermediate / distal frame"), 20 palm centre.
:func:`openxr_joints` maps them onto ``XR_EXT_hand_tracking``'s joints (:data:`JOINT_SOURCES`).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genxr.components.sim.geometry import axis_angle_to_matrix, matrix_to_quaternion
from genxr.components.sim.hand import HandModelConfig
from genxr.platform.messages import HAND_JOINT_COUNT, HAND_JOINT_NAMES
from genxr.xr_runtime.recording.importers.common import TrackingImportError

MM_TO_M = 1e-3
JOINT_ANGLES = 20
"""Joint angles the hand model uses (HOT3D's files hold 22; the last two are unused zeros)."""
LANDMARKS = 21
FRAMES = 17
"""Bone frames: root, wrist, then three per digit."""
LANDMARK_WRIST, LANDMARK_PALM = 5, 20

METACARPAL_FRACTION = 0.12
"""Where an index..little metacarpal joint (CMC, which UmeTrack does not model: its palm is rigid)
is put on the line from the wrist to the finger's MCP, as in genxr's simulated hand
(:class:`~genxr.components.sim.hand.HandModelConfig`: bases ~1 cm along the ~8.5 cm wrist-knuckle line)."""

THUMB_CMC = "thumb_cmc"
JOINT_SOURCES: dict[str, int | str | tuple[str, int]] = {
    "palm": LANDMARK_PALM, "wrist": LANDMARK_WRIST,
    "thumb_metacarpal": THUMB_CMC, "thumb_proximal": 6, "thumb_distal": 7, "thumb_tip": 0,
    **{f"{finger}_{part}": source for finger, base, tip in (("index", 8, 1), ("middle", 11, 2), ("ring", 14, 3),
                                                            ("little", 17, 4))
       for part, source in (("metacarpal", ("interpolated", base)), ("proximal", base),
                            ("intermediate", base + 1), ("distal", base + 2), ("tip", tip))},
}
"""Where each OpenXR joint comes from: a landmark index; ``thumb_cmc``, the centre of the thumb's
first joint (the carpometacarpal, UmeTrack's joint 0, carried by the wrist); or ``("interpolated", mcp)``,
:data:`METACARPAL_FRACTION` of the way from the wrist to that MCP landmark."""

_BONE = {"palm": ("wrist", "middle_proximal"), "wrist": ("wrist", "middle_proximal"),
         **{f"{digit}_{part}": (f"{digit}_{part}", f"{digit}_{child}")
            for digit, parts in (("thumb", ("metacarpal", "proximal", "distal", "tip")),
                                 *((finger, ("metacarpal", "proximal", "intermediate", "distal", "tip"))
                                   for finger in ("index", "middle", "ring", "little")))
            for part, child in itertools.pairwise(parts)},
         **{f"{digit}_tip": (f"{digit}_distal", f"{digit}_tip") for digit in ("thumb", "index", "middle", "ring",
                                                                             "little")}}
"""Per joint, the (from, to) joints whose direction is the joint's bone (its -Z): toward the
next joint along the digit; a tip continues its distal bone, wrist and palm point to the middle MCP."""
_INDEX = {name: i for i, name in enumerate(HAND_JOINT_NAMES)}
_BONE_FROM = np.array([_INDEX[_BONE[name][0]] for name in HAND_JOINT_NAMES])
_BONE_TO = np.array([_INDEX[_BONE[name][1]] for name in HAND_JOINT_NAMES])
JOINT_RADII = np.array(HandModelConfig().radii, dtype=np.float32)
"""(26,) joint radii (m): genxr's simulated hand's table (UmeTrack's landmarks carry none)."""
JOINT_FLAGS = np.array([0x3 if isinstance(JOINT_SOURCES[name], tuple) else 0xF for name in HAND_JOINT_NAMES],
                       np.uint8)
"""Joints computed from the hand model are tracked (0xF); interpolated metacarpals are valid, not tracked (0x3)."""


@dataclass(frozen=True)
class UmeTrackHandModel:
    """One user's UmeTrack hand (a left hand, metres): joint axes (20, 3) and rest positions (20, 3),
    landmark rest positions (21, 3) and dense skinning weights (21, 17)."""

    joint_rotation_axes: np.ndarray
    joint_rest_positions: np.ndarray
    landmark_rest_positions: np.ndarray
    landmark_weights: np.ndarray

    @classmethod
    def from_profile(cls, path: Path) -> UmeTrackHandModel:
        """Reads ``umetrack_hand_user_profile.json`` (its ``hand_model``; millimetres)."""
        try:
            body = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise TrackingImportError(f"{path} cannot be read as JSON: {err}") from None
        model = body.get("hand_model") if isinstance(body, dict) else None
        if not isinstance(model, dict):
            raise TrackingImportError(f"{path}: no 'hand_model' object (a HOT3D UmeTrack hand profile has one)")

        def array(name: str, rows: int, cols: int | None) -> np.ndarray:
            if name not in model:
                raise TrackingImportError(f"{path}: hand_model.{name} is missing")
            try:
                value = np.asarray(model[name], dtype=np.float64)
            except (TypeError, ValueError):
                raise TrackingImportError(f"{path}: hand_model.{name} is not an array of numbers") from None
            if value.ndim != 2 or value.shape[0] < rows or (cols is not None and value.shape[1] != cols):
                raise TrackingImportError(f"{path}: hand_model.{name} has shape {value.shape}; expected "
                                          f"({rows}+, {cols if cols is not None else 'K'})")
            if not np.isfinite(value).all():
                raise TrackingImportError(f"{path}: hand_model.{name} holds a value that is not finite")
            return value[:rows] if name.startswith("joint_") else value

        axes = array("joint_rotation_axes", JOINT_ANGLES, 3)
        rest = array("joint_rest_positions", JOINT_ANGLES, 3) * MM_TO_M
        landmarks = array("landmark_rest_positions", LANDMARKS, 3) * MM_TO_M
        bones = array("landmark_rest_bone_indices", LANDMARKS, None)
        weights = array("landmark_rest_bone_weights", LANDMARKS, bones.shape[1])
        if landmarks.shape[0] != LANDMARKS or ((bones < 0) | (bones >= FRAMES) | (bones != np.round(bones))).any():
            raise TrackingImportError(f"{path}: hand_model needs {LANDMARKS} landmarks with bone indices in "
                                      f"0..{FRAMES - 1}; got {landmarks.shape[0]} landmarks, indices "
                                      f"{sorted(set(bones.ravel().tolist()))}")
        dense = np.zeros((LANDMARKS, FRAMES))
        for landmark in range(LANDMARKS):
            for bone, weight in zip(bones[landmark].astype(int), weights[landmark]):
                if weight != 0:
                    dense[landmark, bone] = weight
        return cls(axes, rest, landmarks, dense)

    def bone_frames(self, wrists: np.ndarray, joint_angles: np.ndarray) -> np.ndarray:
        """(N, 17, 4, 4) bone frames (hand -> world) for wrist transforms (N, 4, 4) and angles (N, 20)."""
        n = wrists.shape[0]
        rotation = axis_angle_to_matrix(self.joint_rotation_axes[None] * joint_angles[..., None])  # (N, 20, 3, 3)
        local = np.broadcast_to(np.eye(4), (n, JOINT_ANGLES, 4, 4)).copy()
        local[..., :3, :3] = rotation
        local[..., :3, 3] = self.joint_rest_positions - np.einsum("njab,jb->nja", rotation, self.joint_rest_positions)
        frames = [wrists, wrists]
        for digit in range(5):
            chain = wrists
            for joint in range(4):
                chain = chain @ local[:, 4 * digit + joint]
                if joint > 0:
                    frames.append(chain)
        return np.stack(frames, axis=1)

    def landmarks(self, wrists: np.ndarray, joint_angles: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
        """(landmarks (N, 21, 3), thumb CMC (N, 3)) in the wrist pose's parent frame (metres).

        ``wrists`` (N, 4, 4) wrist -> world (HOT3D's ``wrist_xform``), ``joint_angles`` (N, 20) radians.
        """
        wrists = np.array(wrists, dtype=np.float64)
        if side == "right":
            wrists[:, :3, 0] *= -1  # the model is a left hand; mirror its X for the right one
        frames = self.bone_frames(wrists, joint_angles)
        rest = np.concatenate([self.landmark_rest_positions, np.ones((LANDMARKS, 1))], axis=1)  # (21, 4)
        posed = np.einsum("lf,nfab,lb->nla", self.landmark_weights, frames, rest)[..., :3]
        cmc = wrists[:, :3, :3] @ self.joint_rest_positions[0] + wrists[:, :3, 3]
        return posed, cmc


def openxr_positions(landmarks: np.ndarray, thumb_cmc: np.ndarray) -> np.ndarray:
    """(N, 26, 3) OpenXR joint positions from UmeTrack landmarks (N, 21, 3) and thumb CMCs (N, 3)."""
    wrist = landmarks[:, LANDMARK_WRIST]
    columns = []
    for name in HAND_JOINT_NAMES:
        source = JOINT_SOURCES[name]
        if source == THUMB_CMC:
            columns.append(thumb_cmc)
        elif isinstance(source, tuple):
            columns.append(wrist + METACARPAL_FRACTION * (landmarks[:, source[1]] - wrist))
        else:
            columns.append(landmarks[:, source])
    return np.stack(columns, axis=1)


def _unit(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norm > 1e-9, norm, 1.0), norm[..., 0]


def openxr_orientations(positions: np.ndarray, side: str) -> np.ndarray:
    """(N, 26, 4) joint orientations (x, y, z, w) from joint positions (N, 26, 3), by OpenXR's joint
    convention: -Z along the joint's bone toward the tip (:data:`_BONE`), +Y out of the back of the
    hand, X = Y x Z. X is the hand's side axis (index MCP -> little MCP for a right hand, the reverse
    for a left) made perpendicular to the bone - flexion turns bones about it; where a bone runs
    along it, the back-of-hand normal of the wrist, index MCP and little MCP gives +Y instead."""
    index, little, wrist = (positions[:, _INDEX[n]] for n in ("index_proximal", "little_proximal", "wrist"))
    lateral = little - index if side == "right" else index - little
    dorsal, _ = _unit(np.cross(little - wrist, index - wrist) if side == "right"
                      else np.cross(index - wrist, little - wrist))
    z, _ = _unit(positions[:, _BONE_FROM] - positions[:, _BONE_TO])  # (N, 26, 3): -Z toward the tip
    x, x_norm = _unit(lateral[:, None] - np.sum(lateral[:, None] * z, -1, keepdims=True) * z)
    from_dorsal, _ = _unit(np.cross(dorsal[:, None], z))
    lateral_ok = x_norm > 0.2 * np.linalg.norm(lateral, axis=-1, keepdims=True)
    x = np.where(lateral_ok[..., None], x, from_dorsal)
    y = np.cross(z, x)
    return matrix_to_quaternion(np.stack([x, y, z], axis=-1))


def hand_arrays(positions: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """The :class:`~genxr.platform.messages.HandJoints` arrays (float32/uint8) of N hands from
    OpenXR joint positions (N, 26, 3) metres in the reference space."""
    n = positions.shape[0]
    return {"positions": positions.astype(np.float32),
            "orientations": openxr_orientations(positions, side).astype(np.float32),
            "radii": np.broadcast_to(JOINT_RADII, (n, HAND_JOINT_COUNT)),
            "location_flags": np.broadcast_to(JOINT_FLAGS, (n, HAND_JOINT_COUNT))}
