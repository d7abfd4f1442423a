"""A small HOT3D sequence folder written from HOT3D's documented layout (facebookresearch/hot3d
``data_loaders``), with values chosen so the expected OpenXR output is known by hand.

The hand profile is a synthetic UmeTrack left hand (millimetres, fingers along +X, thumb on
+Z, every rotation axis +Z); each landmark rides one bone, as in HOT3D's profiles. The Aria
device -> CPF transform is rebuilt here from projectaria_tools' CAD table, independently of
the importer's copy.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from genxr.components.sim.geometry import matrix_to_quaternion

START_NS = 5_000_000_000_000
RATE_HZ = 30.0

LANDMARKS_MM = [
    (95, -40, 80), (180, 0, 20), (188, 0, -8), (175, 0, -38), (144, 0, -54),  # tips: thumb..little
    (0, 0, 0), (59, -27, 43), (82, -37, 66),  # wrist, thumb MCP, thumb IP
    (97, 0, 23), (134, 0, 21), (160, 0, 20),  # index MCP, PIP, DIP
    (96, 0, 2), (137, 0, -3), (165, 0, -6),  # middle
    (89, 0, -17), (126, 0, -27), (152, 0, -33),  # ring
    (77, 0, -35), (105, 0, -42), (124, 0, -48),  # little
    (82, -15, 4),  # palm centre
]
THUMB_CMC_MM = (16, -10, 8)
LANDMARK_BONES = [4, 7, 10, 13, 16, 1, 2, 3, 1, 5, 6, 1, 8, 9, 1, 11, 12, 1, 14, 15, 1]
INDEX_PIP_JOINT = 6
"""UmeTrack joint 4 * digit + 2 for the index finger (digit 1)."""


def joint_rest_mm() -> list[tuple[float, float, float]]:
    """22 joint centres: thumb CMC, a second CMC axis, MCP, IP; per finger MCP (two axes), PIP, DIP; 2 unused."""
    lm = LANDMARKS_MM
    joints = [THUMB_CMC_MM, (46, -4, 23), lm[6], lm[7]]
    for mcp in (8, 11, 14, 17):
        joints += [lm[mcp], lm[mcp], lm[mcp + 1], lm[mcp + 2]]
    return joints + [(0, 0, 0), (0, 0, 0)]


def profile() -> dict:
    return {"hand_model": {
        "joint_rotation_axes": [[0.0, 0.0, 1.0]] * 22,
        "joint_rest_positions": [list(p) for p in joint_rest_mm()],
        "landmark_rest_positions": [list(p) for p in LANDMARKS_MM],
        "landmark_rest_bone_indices": [[b, b, b] for b in LANDMARK_BONES],
        "landmark_rest_bone_weights": [[1.0, 0.0, 0.0]] * 21,
        "hand_scale": 1.0,
    }}


def rigid(rotation: np.ndarray, translation) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, translation
    return out


def aria_device_from_cpf() -> np.ndarray:
    """T_device_cpf: the inverse of camera-slam-left's CAD pose in the CPF (DVT-S)."""
    y_axis = np.array([0.793353, 0.0, -0.608761])
    z_axis = np.array([0.607927, -0.052336, 0.792266])
    y_axis, z_axis = y_axis / np.linalg.norm(y_axis), z_axis / np.linalg.norm(z_axis)
    cpf_from_slam = rigid(np.stack([np.cross(y_axis, z_axis), y_axis, z_axis], 1), [0.069051, 0.002372, 0.009254])
    return np.linalg.inv(cpf_from_slam)


CPF_LOOKING_ALONG_WORLD_Y = np.array([[-1.0, 0, 0], [0, 0, 1], [0, 1, 0]])
"""Columns: CPF +X (left) = world -X, +Y (up) = world +Z, +Z (forward) = world +Y - in OpenXR axes
(x, z, -y) that is the identity view: right +X, up +Y, forward -Z."""


def grid_ns(k: int) -> int:
    return START_NS + round(k * 1e9 / RATE_HZ)


def write_headset(path: Path, poses: list[tuple[int, np.ndarray]]) -> None:
    """``headset_trajectory.csv`` with one device: (timestamp ns, T_world_device (4, 4)) per row."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["object_uid", "timestamp[ns]", "t_wo_x[m]", "t_wo_y[m]", "t_wo_z[m]",
                         "q_wo_w", "q_wo_x", "q_wo_y", "q_wo_z"])
        for t, pose in poses:
            x, y, z, w = matrix_to_quaternion(pose[:3, :3])
            writer.writerow([5411364721403, t, *pose[:3, 3], w, x, y, z])


def hand_pose(wrist: np.ndarray, angles=None, confidence: float = 1.0) -> dict:
    x, y, z, w = matrix_to_quaternion(wrist[:3, :3])
    return {"wrist_xform": {"t_xyz": list(wrist[:3, 3]), "q_wxyz": [w, x, y, z]},
            "joint_angles": list(angles if angles is not None else np.zeros(22)), "hand_confidence": confidence}


def write_hands(path: Path, lines: list[tuple[int, dict]]) -> None:
    """``umetrack_hand_pose_trajectory.jsonl``: (timestamp ns, {"0": left, "1": right}) per line."""
    path.write_text("".join(json.dumps({"timestamp_ns": t, "hand_poses": poses}) + "\n" for t, poses in lines))


def write_sequence(folder: Path, headset: str = "Aria", frames: int = 6, head: np.ndarray | None = None,
                   head_speed_m_s: float = 0.0, wrist_position=(0.3, 2.2, 1.2), angles=None) -> Path:
    """A sequence of ``frames`` samples at 30 Hz: the device at ``head`` (T_world_device; default for Aria:
    the CPF at (1, 2, 1.5) looking along world +Y), moving along world +X at ``head_speed_m_s``; both wrists
    at ``wrist_position`` with an identity rotation and ``angles`` (22, default zero)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metadata.json").write_text(json.dumps({"headset": headset, "recording_name": folder.name}))
    if head is None:
        head = (rigid(CPF_LOOKING_ALONG_WORLD_Y, [1.0, 2.0, 1.5]) @ np.linalg.inv(aria_device_from_cpf())
                if headset == "Aria" else rigid(np.eye(3), [0.5, 1.2, -0.3]))
    poses = []
    for k in range(frames):
        moved = head.copy()
        moved[0, 3] += head_speed_m_s * k / RATE_HZ
        poses.append((grid_ns(k), moved))
    write_headset(folder / "headset_trajectory.csv", poses)
    wrist = rigid(np.eye(3), wrist_position)
    write_hands(folder / "umetrack_hand_pose_trajectory.jsonl",
                [(grid_ns(k), {"0": hand_pose(wrist, angles), "1": hand_pose(wrist, angles)}) for k in range(frames)])
    (folder / "umetrack_hand_user_profile.json").write_text(json.dumps(profile()))
    if headset == "Quest3":
        (folder / "camera_models.json").write_text(json.dumps([
            {"label": "camera-slam-left", "stream_id": "1201-1",
             "T_Device_Camera": {"translation_xyz": [0.03, -0.13, -0.03], "quaternion_wxyz": [1, 0, 0, 0]}},
            {"label": "camera-slam-right", "stream_id": "1201-2",
             "T_Device_Camera": {"translation_xyz": [0.03, -0.13, 0.03], "quaternion_wxyz": [1, 0, 0, 0]}}]))
    return folder
