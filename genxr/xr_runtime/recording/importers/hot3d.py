"""``genxr import hot3d``: a HOT3D sequence's headset trajectory and UmeTrack hands -> a recording.

A HOT3D sequence folder (facebookresearch/hot3d, ``data_loaders/``: ``loader_device_poses``,
``loader_hand_poses``, ``UmeTrackHandDataProvider``) holds what this reads:

* ``metadata.json`` - ``headset``: ``Aria`` or ``Quest3``;
* ``headset_trajectory.csv`` - ``object_uid, timestamp[ns], t_wo_x[m], t_wo_y[m], t_wo_z[m],
  q_wo_w, q_wo_x, q_wo_y, q_wo_z``: T_world_device, one device;
* ``umetrack_hand_pose_trajectory.jsonl`` - per line ``{"timestamp_ns": t, "hand_poses": {"0"
  (left) | "1" (right): {"wrist_xform": {"t_xyz": [m], "q_wxyz": [...]}, "joint_angles": [22],
  "hand_confidence": c}}}``, T_world_wrist and UmeTrack joint angles (a hand absent, or with
  confidence <= 0, was not annotated);
* ``umetrack_hand_user_profile.json`` - the hand model (:mod:`.umetrack`);
* ``camera_models.json`` (Quest 3) - ``T_Device_Camera`` of the SLAM cameras.

Frames (all metres, timestamps integer ns on HOT3D's time code):

* World -> OpenXR: Aria sequences are in the Aria MPS world, +Z up (the sample sequence's
  ``mps/slam/closed_loop_trajectory.csv`` holds the same device poses with gravity (0, 0, -9.81),
  its table lies 0.4 m below the head on -Z, its origin where tracking started); Quest 3
  sequences are +Y up with the floor at y = 0 (the sample's head at y = 1.17 m, its table at
  0.73 m). +Z up maps to OpenXR's +Y up by (x, y, z) -> (x, z, -y), a rotation.
* Device -> head (the OpenXR view: +X right, +Y up, -Z forward, at the eyes): Aria's device
  frame is its left SLAM camera; the head is its central pupil frame (CPF, +X left, +Y up, +Z
  forward, between the eyes) turned 180 degrees about Y. T_device_cpf is projectaria_tools'
  ``DeviceCalibration.get_transform_device_cpf()``, a CAD value (``core/calibration/
  DeviceCadExtrinsics.cpp``, Gen1 DVT-S; DVT-L's SLAM camera sits 2.3 mm further out), so it
  needs no per-device calibration. Quest 3's device frame has +X forward, +Y up, +Z right (its
  SLAM cameras look along +X, the left one at -Z); the head is put at the midpoint of the two
  SLAM cameras (``camera_models.json``), a few cm in front of the eyes, with the view axes.
* Origin (``origin="first-head"``, the default): turned about +Y and moved so the first head
  pose stands at x = z = 0 looking along -Z, its height kept where the world is floor-level
  (Quest 3), else ``head_height_m`` (default :data:`DEFAULT_HEAD_HEIGHT_M`) - the STAGE space
  genxr's scenes are laid out in. ``origin="source"`` keeps the source's origin and heading.
* Time: frames on a grid at ``rate_hz`` from the first to the last headset sample, sampled at
  the grid time and predicted for display one period later (as the display clock predicts);
  head and hands are interpolated between the two source samples around each grid time
  (positions linearly, rotations by slerp, joint angles linearly). Between two samples more than
  ``max_gap_s`` apart the head is marked not tracked and a hand is absent.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genxr.components.sim.geometry import matrix_to_quaternion, quaternion_to_matrix
from genxr.platform.messages import HandJoints, Pose, TrackingFrame
from genxr.platform.units import NS_PER_S
from genxr.xr_runtime.recording.importers.common import (
    ImportReport,
    Progress,
    TrackingImportError,
    at,
    check_after,
    check_unit,
    parse_float,
    parse_int,
    session_events,
    write_recording,
)
from genxr.xr_runtime.recording.importers.umetrack import JOINT_ANGLES, UmeTrackHandModel, hand_arrays, openxr_positions

HEADSETS = ("Aria", "Quest3")
HEADSET_COLUMNS = ("object_uid", "timestamp[ns]", "t_wo_x[m]", "t_wo_y[m]", "t_wo_z[m]", "q_wo_w", "q_wo_x",
                   "q_wo_y", "q_wo_z")
HAND_KEYS = {"left": "0", "right": "1"}
DEFAULT_HEAD_HEIGHT_M = 1.6
"""Standing eye height the first head pose is put at when the source world has no floor (Aria)."""
BLOCK_FRAMES = 900
"""Grid frames converted at once (bounds memory on long sequences)."""

WORLD_UP = {"z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]), "y": np.eye(3)}
"""Rotation taking a +Z-up or +Y-up world to OpenXR's axes (+Y up)."""
DEFAULT_WORLD_UP = {"Aria": "z", "Quest3": "y"}
FLOOR_LEVEL = {"Aria": False, "Quest3": True}

ARIA_CPF_SLAM_LEFT = ((0.069051, 0.002372, 0.009254), (0.793353, 0.000000, -0.608761),
                      (0.607927, -0.052336, 0.792266))
"""Aria Gen1 DVT-S CAD: camera-slam-left (Aria's device frame) in the CPF - translation (m), Y axis,
Z axis (projectaria_tools core/calibration/DeviceCadExtrinsics.cpp)."""
CPF_TO_VIEW = np.diag([-1.0, 1.0, -1.0])
"""CPF (+X left, +Y up, +Z forward) -> OpenXR view (+X right, +Y up, -Z forward): 180 degrees about Y."""
QUEST3_DEVICE_TO_VIEW = np.array([[0.0, 0, -1], [0, 1, 0], [1, 0, 0]])
"""Columns: the view's +X (right) = device +Z, +Y = device +Y, +Z (back) = device -X."""


def _rigid(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rotation, translation
    return out


def aria_device_to_head() -> np.ndarray:
    """(4, 4) T_device_head for Aria: T_device_cpf (the CAD camera-slam-left pose in the CPF, inverted)
    with the CPF's axes turned into the view's."""
    translation, y_axis, z_axis = (np.array(v) for v in ARIA_CPF_SLAM_LEFT)
    y_axis, z_axis = y_axis / np.linalg.norm(y_axis), z_axis / np.linalg.norm(z_axis)
    u, _, vt = np.linalg.svd(np.stack([np.cross(y_axis, z_axis), y_axis, z_axis], axis=1))
    cpf_slam = _rigid(u @ vt, translation)  # the nearest rotation, as Sophus::makeRotationMatrix makes it
    return np.linalg.inv(cpf_slam) @ _rigid(CPF_TO_VIEW, np.zeros(3))


def quest3_device_to_head(cameras: Path, notes: list[str]) -> np.ndarray:
    """(4, 4) T_device_head for Quest 3: view axes at the midpoint of the SLAM cameras of ``cameras``."""
    if not cameras.is_file():
        notes.append(f"{cameras.name} not found: the head is the Quest 3 device origin (not at the eyes)")
        return _rigid(QUEST3_DEVICE_TO_VIEW, np.zeros(3))
    try:
        models = json.loads(cameras.read_text())
        positions = [np.array(m["T_Device_Camera"]["translation_xyz"], dtype=np.float64) for m in models
                     if str(m.get("label", "")).startswith("camera-slam")]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise TrackingImportError(f"{cameras}: cannot read the cameras' T_Device_Camera.translation_xyz: {err}") from None
    if not positions or any(p.shape != (3,) or not np.isfinite(p).all() for p in positions):
        raise TrackingImportError(f"{cameras}: no camera-slam-* entry with a 3-number T_Device_Camera.translation_xyz")
    return _rigid(QUEST3_DEVICE_TO_VIEW, np.mean(positions, axis=0))


@dataclass(frozen=True)
class Track:
    """Timestamped samples: ``times_ns`` (N,) strictly increasing, ``positions`` (N, 3) m,
    ``orientations`` (N, 4) unit (x, y, z, w), and for hands ``joint_angles`` (N, 20) rad."""

    times_ns: np.ndarray
    positions: np.ndarray
    orientations: np.ndarray
    joint_angles: np.ndarray | None = None


def read_headset_trajectory(path: Path) -> Track:
    """The device poses of ``headset_trajectory.csv`` (T_world_device), checked row by row."""
    if not path.is_file():
        raise TrackingImportError(f"{path} does not exist; a HOT3D sequence folder holds headset_trajectory.csv")
    times, positions, orientations, devices = [], [], [], set()
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None) or []
        missing = [c for c in HEADSET_COLUMNS if c not in header]
        if missing:
            raise TrackingImportError(f"{at(path, 1)}: the header lacks the column(s) {', '.join(missing)}")
        col = {name: header.index(name) for name in HEADSET_COLUMNS}
        for row in reader:
            if not row:
                continue
            line = reader.line_num
            if len(row) < len(header):
                raise TrackingImportError(f"{at(path, line)}: the row has {len(row)} cells, the header {len(header)}")
            t = parse_int(row[col["timestamp[ns]"]], path, line, "timestamp[ns]")
            check_after(t, times[-1] if times else None, path, line, "timestamp[ns]")
            p = [parse_float(row[col[f"t_wo_{a}[m]"]], path, line, f"t_wo_{a}[m]") for a in "xyz"]
            q = [parse_float(row[col[f"q_wo_{a}"]], path, line, f"q_wo_{a}") for a in "xyzw"]
            check_unit(tuple(q), path, line, "q_wo_x..q_wo_w")
            times.append(t)
            positions.append(p)
            orientations.append(q)
            devices.add(row[col["object_uid"]])
    if not times:
        raise TrackingImportError(f"{path} holds no headset poses")
    if len(devices) > 1:
        raise TrackingImportError(f"{path}: object_uid has {len(devices)} values {sorted(devices)[:3]}; "
                                  "one headset is expected")
    q = np.array(orientations)
    return Track(np.array(times, dtype=np.int64), np.array(positions), q / np.linalg.norm(q, axis=1, keepdims=True))


def _number_list(value: Any, length: int, path: Path, line: int, name: str) -> list[float]:
    if not isinstance(value, list) or len(value) < length:
        raise TrackingImportError(f"{at(path, line)}: {name} is {str(value)[:80]}; expected {length} numbers")
    return [parse_float(v, path, line, f"{name}[{i}]") for i, v in enumerate(value[:length])]


def read_hand_poses(path: Path) -> dict[str, Track]:
    """Per side, the annotated UmeTrack hand poses of ``umetrack_hand_pose_trajectory.jsonl``."""
    if not path.is_file():
        raise TrackingImportError(f"{path} does not exist; a HOT3D sequence folder holds "
                                  "umetrack_hand_pose_trajectory.jsonl")
    samples: dict[str, list[tuple[int, list[float], list[float], list[float]]]] = {"left": [], "right": []}
    previous: int | None = None
    with open(path) as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise TrackingImportError(f"{at(path, line)}: not JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(record, dict) or "timestamp_ns" not in record:
                raise TrackingImportError(f"{at(path, line)}: timestamp_ns is missing")
            t = parse_int(record["timestamp_ns"], path, line, "timestamp_ns")
            check_after(t, previous, path, line, "timestamp_ns")
            previous = t
            poses = record.get("hand_poses")
            if not isinstance(poses, dict):
                raise TrackingImportError(f"{at(path, line)}: hand_poses is {str(poses)[:80]}; expected an object")
            for side, key in HAND_KEYS.items():
                hand = poses.get(key)
                if hand is None:
                    continue
                name = f"hand_poses.{key}"
                wrist = hand.get("wrist_xform") if isinstance(hand, dict) else None
                if not isinstance(wrist, dict):
                    raise TrackingImportError(f"{at(path, line)}: {name}.wrist_xform is missing")
                if parse_float(hand.get("hand_confidence", 1.0), path, line, f"{name}.hand_confidence") <= 0:
                    continue
                translation = _number_list(wrist.get("t_xyz"), 3, path, line, f"{name}.wrist_xform.t_xyz")
                w, x, y, z = _number_list(wrist.get("q_wxyz"), 4, path, line, f"{name}.wrist_xform.q_wxyz")
                check_unit((w, x, y, z), path, line, f"{name}.wrist_xform.q_wxyz")
                angles = _number_list(hand.get("joint_angles"), JOINT_ANGLES, path, line, f"{name}.joint_angles")
                samples[side].append((t, translation, [x, y, z, w], angles))
    tracks = {}
    for side, rows in samples.items():
        q = np.array([r[2] for r in rows]).reshape(-1, 4)
        tracks[side] = Track(np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows]).reshape(-1, 3),
                             q / np.linalg.norm(q, axis=1, keepdims=True) if len(rows) else q,
                             np.array([r[3] for r in rows]).reshape(-1, JOINT_ANGLES))
    return tracks


def _slerp(q0: np.ndarray, q1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions between (N, 4) ``q0`` and ``q1`` at fractions ``alpha`` (N,)."""
    dot = np.sum(q0 * q1, axis=1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.abs(dot)
    angle = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(angle)
    close = sin < 1e-6
    w0 = np.where(close, 1 - alpha, np.sin((1 - alpha) * angle) / np.where(close, 1, sin))
    w1 = np.where(close, alpha, np.sin(alpha * angle) / np.where(close, 1, sin))
    out = w0[:, None] * q0 + w1[:, None] * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def sample(track: Track, grid_ns: np.ndarray, max_gap_ns: int) -> tuple[np.ndarray, Track]:
    """(valid (G,), the track at ``grid_ns`` (G,)): interpolated between the samples around each grid
    time; valid where the grid time lies within the track and is a sample's time or between two samples
    at most ``max_gap_ns`` apart."""
    n = len(track.times_ns)
    if n == 0:
        empty = np.zeros(len(grid_ns), bool)
        return empty, Track(grid_ns, np.zeros((len(grid_ns), 3)), np.tile([0.0, 0, 0, 1], (len(grid_ns), 1)),
                            np.zeros((len(grid_ns), JOINT_ANGLES)))
    after = np.clip(np.searchsorted(track.times_ns, grid_ns, side="right"), 1, max(n - 1, 1))
    before = after - 1
    after = np.minimum(after, n - 1)
    t0, t1 = track.times_ns[before], track.times_ns[after]
    span = (t1 - t0).astype(np.float64)
    alpha = np.clip(np.where(span > 0, (grid_ns - t0) / np.where(span > 0, span, 1), 0.0), 0.0, 1.0)
    on_sample = (grid_ns == t0) | (grid_ns == t1)
    valid = (grid_ns >= track.times_ns[0]) & (grid_ns <= track.times_ns[-1]) & ((t1 - t0 <= max_gap_ns) | on_sample)

    def lerp(values: np.ndarray) -> np.ndarray:
        return values[before] + alpha[:, None] * (values[after] - values[before])

    angles = None if track.joint_angles is None else lerp(track.joint_angles)
    return valid, Track(grid_ns, lerp(track.positions), _slerp(track.orientations[before],
                                                               track.orientations[after], alpha), angles)


def _poses(track: Track) -> np.ndarray:
    """(N, 4, 4) rigid transforms of a track's samples."""
    out = np.broadcast_to(np.eye(4), (len(track.times_ns), 4, 4)).copy()
    out[:, :3, :3] = quaternion_to_matrix(track.orientations)
    out[:, :3, 3] = track.positions
    return out


def stage_from_world(world_up: str, first_head: np.ndarray, origin: str, head_height_m: float | None) -> np.ndarray:
    """(4, 4) the source world -> genxr's reference space (see the module docstring); ``first_head``
    (4, 4) is the first head pose in the source world."""
    axes = _rigid(WORLD_UP[world_up], np.zeros(3))
    if origin == "source":
        return axes
    head = axes @ first_head
    forward = -head[:3, 2]
    yaw = math.atan2(-forward[0], -forward[2]) if math.hypot(forward[0], forward[2]) > 1e-9 else 0.0
    c, s = math.cos(-yaw), math.sin(-yaw)
    turn = _rigid(np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]), np.zeros(3))
    position = (turn @ head)[:3, 3]
    height = position[1] if head_height_m is None else head_height_m
    return _rigid(np.eye(3), np.array([-position[0], height - position[1], -position[2]])) @ turn @ axes


def _frames(headset: Track, hands: dict[str, Track], model: UmeTrackHandModel, device_to_head: np.ndarray,
            stage: np.ndarray, grid_ns: np.ndarray, period_ns: int, max_gap_ns: int) -> Iterator[TrackingFrame]:
    for start in range(0, len(grid_ns), BLOCK_FRAMES):
        block = grid_ns[start:start + BLOCK_FRAMES]
        tracked, head = sample(headset, block, max_gap_ns)
        heads = stage @ _poses(head) @ device_to_head
        head_q = matrix_to_quaternion(heads[:, :3, :3])
        joints: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
        for side, track in hands.items():
            present, wrist = sample(track, block, max_gap_ns)
            arrays: dict[str, np.ndarray] = {}
            if present.any():
                landmarks, cmc = model.landmarks(_poses(wrist)[present], wrist.joint_angles[present], side)
                positions = openxr_positions(landmarks, cmc)
                positions = positions @ stage[:3, :3].T + stage[:3, 3]
                arrays = hand_arrays(positions, side)
            joints[side] = (np.where(present, np.cumsum(present) - 1, -1), arrays)  # row of each frame's hand
        for k, t in enumerate(block):
            hand_messages: dict[str, HandJoints | None] = {}
            for side, (row, arrays) in joints.items():
                i = int(row[k])
                hand_messages[side] = None if i < 0 else HandJoints(
                    hand=side, is_active=True, location_flags=arrays["location_flags"][i],
                    positions=arrays["positions"][i], orientations=arrays["orientations"][i], radii=arrays["radii"][i])
            yield TrackingFrame(frame_id=start + k, sample_time_ns=int(t), predicted_display_time_ns=int(t) + period_ns,
                                head=Pose(position=tuple(heads[k, :3, 3].tolist()), orientation=tuple(head_q[k].tolist())),
                                head_tracked=bool(tracked[k]), left_hand=hand_messages["left"],
                                right_hand=hand_messages["right"])


def _headset(folder: Path) -> str:
    path = folder / "metadata.json"
    try:
        headset = json.loads(path.read_text()).get("headset")
    except (OSError, json.JSONDecodeError, AttributeError) as err:
        raise TrackingImportError(f"{path} cannot be read ({err}); a HOT3D sequence folder holds metadata.json "
                                  "with its headset") from None
    if headset not in HEADSETS:
        raise TrackingImportError(f"{path}: headset is {headset!r}; expected one of {', '.join(HEADSETS)}")
    return headset


def import_hot3d(sequence: str | os.PathLike[str], out: str | os.PathLike[str], *, rate_hz: float = 90.0,
                 max_gap_s: float = 0.1, origin: str = "first-head", head_height_m: float | None = None,
                 world_up: str | None = None, on_progress: Progress | None = None) -> ImportReport:
    """Writes a HOT3D sequence folder's headset and hands as a recording at ``out`` (new or empty).

    ``rate_hz``: the frame grid; ``max_gap_s``: the longest interval interpolated across;
    ``origin``: ``first-head`` or ``source``; ``head_height_m``: the first head's height with
    ``first-head`` (default: the source's where it is floor-level, else 1.6 m); ``world_up``:
    ``z`` or ``y`` (default: by headset). Raises :class:`TrackingImportError` for malformed input,
    naming the file, line and field; nothing is then left at ``out``.
    """
    folder = Path(sequence)
    if not folder.is_dir():
        raise TrackingImportError(f"{folder} is not a folder; give a HOT3D sequence folder (with metadata.json, "
                                  "headset_trajectory.csv and umetrack_hand_pose_trajectory.jsonl)")
    if not 0 < rate_hz <= 1000 or not 0 < max_gap_s <= 10:
        raise TrackingImportError(f"rate_hz {rate_hz} must be in (0, 1000] and max_gap_s {max_gap_s} in (0, 10]")
    if origin not in ("first-head", "source"):
        raise TrackingImportError(f"origin {origin!r} must be 'first-head' or 'source'")
    if head_height_m is not None and (origin != "first-head" or not 0 <= head_height_m <= 3):
        raise TrackingImportError(f"head_height_m {head_height_m} needs origin 'first-head' and a height in [0, 3] m")
    headset = _headset(folder)
    world_up = world_up or DEFAULT_WORLD_UP[headset]
    if world_up not in WORLD_UP:
        raise TrackingImportError(f"world_up {world_up!r} must be 'z' or 'y'")
    notes: list[str] = []
    device_to_head = aria_device_to_head() if headset == "Aria" else quest3_device_to_head(
        folder / "camera_models.json", notes)
    trajectory = read_headset_trajectory(folder / "headset_trajectory.csv")
    hands = read_hand_poses(folder / "umetrack_hand_pose_trajectory.jsonl")
    model = UmeTrackHandModel.from_profile(folder / "umetrack_hand_user_profile.json")
    if head_height_m is None and origin == "first-head" and not FLOOR_LEVEL[headset]:
        head_height_m = DEFAULT_HEAD_HEIGHT_M
        notes.append(f"the {headset} world has no floor: the first head pose is put at {DEFAULT_HEAD_HEIGHT_M} m")
    first_head = _poses(Track(trajectory.times_ns[:1], trajectory.positions[:1], trajectory.orientations[:1]))[0]
    stage = stage_from_world(world_up, first_head @ device_to_head, origin, head_height_m)
    period_ns = round(NS_PER_S / rate_hz)
    span_ns = int(trajectory.times_ns[-1] - trajectory.times_ns[0])
    grid_ns = trajectory.times_ns[0] + np.round(np.arange(int(span_ns * rate_hz / NS_PER_S) + 1) * NS_PER_S
                                                / rate_hz).astype(np.int64)
    frames = _frames(trajectory, hands, model, device_to_head, stage, grid_ns, period_ns, round(max_gap_s * NS_PER_S))
    conversion = {"headset": headset, "world_up": world_up, "origin": origin, "head_height_m": head_height_m,
                  "rate_hz": rate_hz, "max_gap_s": max_gap_s, "units": "metres (source metres; hand model mm)",
                  "device_to_head": device_to_head.round(6).tolist(), "stage_from_world": stage.round(6).tolist(),
                  "hand_samples": {side: len(track.times_ns) for side, track in hands.items()},
                  "headset_samples": len(trajectory.times_ns)}
    messages = session_events(frames, f"hot3d-{folder.name}"[:128], f"imported from HOT3D sequence {folder.name} "
                              f"({headset}, UmeTrack hands)")
    stats = write_recording(Path(out), messages, {"format": "hot3d", "source": str(folder), **conversion},
                            source=folder, total_frames=len(grid_ns), on_progress=on_progress)
    return ImportReport.of("hot3d", folder, Path(out), stats, conversion, notes)
