"""The agent's ground-truth body motion at 30 fps on the 22-joint skeleton.

Avatar frame (metres, +Y up, the agent stands at the origin and faces +Z at rest).
Behaviours, each a few lines below:

* body turn: the pelvis heading follows the bearing to the user through two cascaded
  first-order lags (0.5-0.9 s in total), the spine leads with a faster partial twist;
* gaze: alternating eye-contact and averted spells whose mean dwell times depend on the
  role (listening: ~75% contact scaled by a per-conversation propensity, speaking: ~45%);
  the head aims exactly at the user's head (or 15-40 deg beside it) through a 0.12 s lag;
* gestures: per IPU of the agent's speech an arm (or both) reaches an apex pose at
  stressed syllable onsets, with minimum-jerk moves between keyframes so the hand speed
  has its minima at the onsets, then retracts to rest after the IPU;
* nods while listening: damped 2-2.5 Hz pitch oscillations at the ends of the user's
  IPUs and sometimes on the user's stressed syllables;
* idle sway: slow pelvis shift, lean and breathing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from genxr.components.avatar import skeleton as sk
from genxr.components.sim.conversation.turns import SpeechTrack
from genxr.components.sim.conversation.user import FPS, minimum_jerk

LISTENING_CONTACT = 0.8
SPEAKING_CONTACT = 0.48
REST_ARM = np.array([1.3, 0.15, 0.3])
"""(abduction, flexion, elbow flexion) radians of an arm hanging at rest."""


@dataclass(frozen=True)
class AgentMotion:
    """``local_rotations`` (T, 22, 3, 3); ``root_translation`` (T, 3) metres;
    ``eye_contact`` (T,) bool: the gaze state intends contact with the user's head."""

    local_rotations: np.ndarray
    root_translation: np.ndarray
    eye_contact: np.ndarray


def _lag(signal: np.ndarray, tau_s: float, fps: int = FPS) -> np.ndarray:
    """First-order low-pass of ``signal`` (T, ...) with time constant ``tau_s``, starting at its first value."""
    alpha = 1.0 - np.exp(-1.0 / (tau_s * fps))
    out = np.empty_like(signal)
    out[0] = signal[0]
    for i in range(1, len(signal)):
        out[i] = out[i - 1] + alpha * (signal[i] - out[i - 1])
    return out


def _gaze_spells(rng: np.random.Generator, speaking: np.ndarray, propensity: float, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """(T,) bool contact and (T, 2) yaw/pitch offsets (radians) of averted spells."""
    frames = len(speaking)
    contact = np.zeros(frames, dtype=bool)
    offsets = np.zeros((frames, 2))
    i = 0
    while i < frames:
        p = propensity * (SPEAKING_CONTACT if speaking[i] else LISTENING_CONTACT)
        mean_contact = 1.2 if speaking[i] else 2.0
        if rng.random() < p:
            n = int(rng.gamma(2.0, mean_contact / 2.0) * fps) + 3
            contact[i:i + n] = True
        else:
            n = int(rng.gamma(2.0, mean_contact * (1.0 - p) / max(p, 0.05) / 2.0) * fps) + 3
            offsets[i:i + n] = [rng.choice([-1.0, 1.0]) * rng.uniform(0.26, 0.7), rng.uniform(-0.35, 0.1)]
        i += n
    return contact, offsets


def _nods(rng: np.random.Generator, listener_speaking: np.ndarray, other: SpeechTrack, t: np.ndarray) -> np.ndarray:
    """(T,) radians of nod pitch (negative: chin down)."""
    cues = [end for _, end in other.ipus if rng.random() < 0.5]
    cues += [o for o, s in zip(other.syllables, other.stressed) if s and rng.random() < 0.06]
    pitch = np.zeros_like(t)
    for cue in cues:
        i = min(int(cue * FPS), len(t) - 1)
        if listener_speaking[i]:
            continue
        duration, freq, amp = rng.uniform(0.6, 1.0), rng.uniform(2.0, 2.5), rng.uniform(0.1, 0.2)
        local = t - cue
        window = (local >= 0) & (local < duration)
        pitch -= window * amp * np.sin(2.0 * np.pi * freq * local) * np.exp(-2.0 * local)
    return pitch


def _arm_keyframes(rng: np.random.Generator, track: SpeechTrack) -> list[list[tuple[float, np.ndarray]]]:
    """Per arm (left, right): sorted (time seconds, (abduction, flexion, elbow) radians) keyframes."""
    arms: list[list[tuple[float, np.ndarray]]] = [[], []]
    for start, end in track.ipus:
        inside = (track.syllables >= start) & (track.syllables < end) & track.stressed
        apex_times = []
        for onset in track.syllables[inside]:
            if not apex_times or onset - apex_times[-1] >= 0.35:
                apex_times.append(onset)
        if not apex_times or end - start < 0.5:
            continue
        hands = [[0], [1], [0, 1]][rng.choice(3, p=[0.3, 0.4, 0.3])]
        for arm in hands:
            arms[arm].append((apex_times[0] - 0.35, REST_ARM))
            for onset in apex_times:
                arms[arm].append((onset, np.array([rng.uniform(0.75, 1.25), rng.uniform(0.35, 1.0), rng.uniform(0.8, 1.6)])))
            arms[arm].append((end + 0.4, REST_ARM))
    for arm in range(2):
        kept: list[tuple[float, np.ndarray]] = []
        for key in sorted(arms[arm], key=lambda k: k[0]):
            if not kept or key[0] - kept[-1][0] >= 0.2:
                kept.append(key)
        arms[arm] = kept
    return arms


def _arm_angles(keys: list[tuple[float, np.ndarray]], t: np.ndarray) -> np.ndarray:
    """(T, 3) arm angles from keyframes with minimum-jerk moves between them (rest outside)."""
    angles = np.tile(REST_ARM, (len(t), 1))
    for (t0, a0), (t1, a1) in itertools.pairwise(keys):
        span = (t >= t0) & (t < t1)
        s = minimum_jerk((t[span] - t0) / (t1 - t0))
        angles[span] = a0 + (a1 - a0) * s[:, None]
    return angles


def simulate_agent(rng: np.random.Generator, user_head: np.ndarray, tracks: dict[str, SpeechTrack],
                   fps: int = FPS) -> AgentMotion:
    """Agent motion for ``user_head`` (T, 3) metres and both speakers' tracks."""
    frames = len(user_head)
    t = np.arange(frames) / fps
    speaking = tracks["agent"].active(t)
    phases = rng.uniform(0.0, 2.0 * np.pi, 4)
    root = np.stack([0.015 * np.sin(2 * np.pi * 0.17 * t + phases[0]), np.full(frames, sk.PELVIS_HEIGHT),
                     0.01 * np.sin(2 * np.pi * 0.23 * t + phases[1])], axis=-1)
    bearing = np.unwrap(np.arctan2(user_head[:, 0] - root[:, 0], user_head[:, 2] - root[:, 2]))
    body_tau = rng.uniform(0.5, 0.9)
    body_yaw = _lag(_lag(bearing, body_tau / 2), body_tau / 2)
    twist = np.clip(_lag(bearing, 0.25) - body_yaw, -0.6, 0.6) * 0.12

    local = np.broadcast_to(np.eye(3), (frames, sk.AVATAR_JOINTS, 3, 3)).copy()
    lean = 0.02 * np.sin(2 * np.pi * 0.17 * t + phases[0])
    local[:, 0] = sk.rotation_y(body_yaw) @ sk.rotation_z(lean)
    for joint in ("spine1", "spine2", "spine3"):
        local[:, sk.JOINT[joint]] = sk.rotation_y(twist)
    local[:, sk.JOINT["spine3"]] = local[:, sk.JOINT["spine3"]] @ sk.rotation_x(0.015 * np.sin(2 * np.pi * 0.25 * t + phases[2]))

    for arm, keys in enumerate(_arm_keyframes(rng, tracks["agent"])):
        abduction, flexion, elbow = _arm_angles(keys, t).T
        side = 1.0 if arm == 0 else -1.0
        local[:, sk.JOINT["left_shoulder" if arm == 0 else "right_shoulder"]] = (
            sk.rotation_x(-flexion) @ sk.rotation_z(-side * abduction))
        local[:, sk.JOINT["left_elbow" if arm == 0 else "right_elbow"]] = sk.rotation_y(-side * elbow)

    positions, global_rot = sk.forward_kinematics(local, root)
    to_user = user_head - positions[:, sk.JOINT["head"]]
    contact, averted = _gaze_spells(rng, speaking, rng.uniform(0.45, 1.0), fps)
    yaw = np.unwrap(np.arctan2(to_user[:, 0], to_user[:, 2])) + averted[:, 0]
    pitch = np.arctan2(to_user[:, 1], np.hypot(to_user[:, 0], to_user[:, 2])) + averted[:, 1]
    pitch = _lag(pitch, 0.12) + _nods(rng, speaking, tracks["user"], t)
    yaw = _lag(yaw, 0.12)
    torso_yaw = body_yaw + 3 * twist
    local[:, sk.JOINT["neck"]] = sk.rotation_y(0.4 * (yaw - torso_yaw))
    neck_global = global_rot[:, sk.JOINT["spine3"]] @ local[:, sk.JOINT["neck"]]
    local[:, sk.JOINT["head"]] = np.swapaxes(neck_global, -1, -2) @ sk.look_rotation(yaw, pitch)
    return AgentMotion(local, root, contact)
