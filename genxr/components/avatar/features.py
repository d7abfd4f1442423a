"""Per-frame model inputs and outputs at 30 fps, all in the avatar frame (metres, +Y up,
agent stance point at the origin, rest pose facing +Z).

* motion: (T, 135) = 22 local 6D rotations (T, 132) then the pelvis translation (T, 3) m;
* audio: (T, 6) = for the user then the agent: log10 RMS energy, onset strength (rise of
  the log energy since the previous frame, >= 0) and log10 RMS of the first difference
  (a crude high-frequency band: consonant bursts), from mono audio at 16 kHz; frame ``i``
  covers samples ``[floor(i sr / 30), floor((i + 1) sr / 30))``;
* user: (T, 9) = the user's head position (x, y, z) m, horizontal distance m, sine and
  cosine of its bearing from +Z, horizontal velocity (vx, vz) m/s and a tracked flag
  (1 tracked; 0 while tracking is lost, the position then holds the last tracked value);
* gaze score: (T,) mean over a 2 s centred window of (1 + cos gaze angle) / 2.

librosa's onset/RMS features were not used: it is not installed, and these three numbers
per speaker are computed identically offline and chunk by chunk in the stream.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import uniform_filter1d

from genxr.components.avatar import skeleton as sk

FPS = 30
SAMPLE_RATE_HZ = 16_000
MOTION_DIM = sk.AVATAR_JOINTS * 6 + 3
AUDIO_DIM = 6
USER_DIM = 9
SILENCE_LOG_ENERGY = -4.0


def frame_bounds(frame: int, sample_rate_hz: int = SAMPLE_RATE_HZ) -> tuple[int, int]:
    """First and one-past-last sample of 30 fps frame ``frame``."""
    return frame * sample_rate_hz // FPS, (frame + 1) * sample_rate_hz // FPS


def speaker_features(samples: np.ndarray, first_frame: int, frames: int, previous_log_energy: float
                     ) -> tuple[np.ndarray, float]:
    """(frames, 3) features of one speaker's audio for frames ``first_frame ...``.

    ``samples`` (n,) float32 at 16 kHz start at the first sample of ``first_frame``;
    missing samples count as silence. Returns the features and the last frame's log energy
    (the next call's ``previous_log_energy``).
    """
    if samples.ndim != 1:
        raise ValueError(f"audio must be mono samples of shape (n,), got shape {samples.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("audio contains NaN or infinite samples")
    offset = frame_bounds(first_frame)[0]
    whole = samples.astype(np.float64)
    out = np.empty((frames, 3), dtype=np.float32)
    for i in range(frames):  # scalar math per frame: this runs every streamed chunk
        start, stop = frame_bounds(first_frame + i)
        chunk = whole[start - offset:stop - offset]
        if chunk.size < 2:
            energy, high = SILENCE_LOG_ENERGY, SILENCE_LOG_ENERGY
        else:
            change = chunk[1:] - chunk[:-1]
            energy = math.log10(math.sqrt(float(chunk @ chunk) / chunk.size) + 1e-4)
            high = math.log10(math.sqrt(float(change @ change) / change.size) + 1e-4)
        out[i] = (energy, max(energy - previous_log_energy, 0.0), high)
        previous_log_energy = energy
    return out, previous_log_energy


def audio_features(user_audio: np.ndarray, agent_audio: np.ndarray, frames: int) -> np.ndarray:
    """(frames, 6) features of whole tracks (16 kHz) for frames 0 .. frames-1."""
    user, _ = speaker_features(user_audio, 0, frames, SILENCE_LOG_ENERGY)
    agent, _ = speaker_features(agent_audio, 0, frames, SILENCE_LOG_ENERGY)
    return np.concatenate([user, agent], axis=1)


def user_features(head: np.ndarray, tracked: np.ndarray | None = None) -> np.ndarray:
    """(T, 9) features of user head positions ``head`` (T, 3) metres; ``tracked`` (T,) bool
    (default all True). Untracked rows must already hold the last tracked position."""
    tracked = np.ones(len(head), dtype=bool) if tracked is None else tracked
    distance = np.hypot(head[:, 0], head[:, 2])
    bearing = np.arctan2(head[:, 0], head[:, 2])
    velocity = np.zeros((len(head), 2))
    velocity[1:] = np.diff(head[:, [0, 2]], axis=0) * FPS
    velocity[~tracked] = 0.0
    return np.concatenate([head, distance[:, None], np.sin(bearing)[:, None], np.cos(bearing)[:, None],
                           velocity, tracked[:, None]], axis=1).astype(np.float32)


def motion_features(rotations_6d: np.ndarray, root_translation: np.ndarray) -> np.ndarray:
    """(T, 135) float32 from (T, 22, 6) rotations and (T, 3) pelvis translation."""
    return np.concatenate([rotations_6d.reshape(len(rotations_6d), -1), root_translation], axis=1).astype(np.float32)


def split_motion(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`motion_features`: (T, 22, 6) rotations and (T, 3) translation."""
    return features[:, :-3].reshape(len(features), sk.AVATAR_JOINTS, 6), features[:, -3:]


def user_bearing(user: np.ndarray) -> np.ndarray:
    """(T,) radians about +Y from the avatar's +Z to the user's head, from user features (T, 9)."""
    return np.arctan2(user[:, 4], user[:, 5])


def turn_about_stance(motion: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Copy of motion features (T, 135) with each frame turned by ``angle[t]`` radians about the
    vertical axis through the stance point: the root (pelvis) rotation becomes ``R_y(angle) R``
    and the pelvis translation ``R_y(angle) p``; the other joints' local rotations are unchanged.

    With ``-user_bearing`` this gives the *user-facing frame* (+Z toward the user's head, see
    :class:`~genxr.components.avatar.vae.MotionVAEConfig` ``root_heading``); ``+user_bearing``
    turns it back."""
    cos, sin = np.cos(angle), np.sin(angle)  # R_y = [[cos, 0, sin], [0, 1, 0], [-sin, 0, cos]]
    out = np.array(motion, dtype=np.float64)
    for x, z in ((0, 2), (3, 5), (-3, -1)):  # the root's two 6D columns, then the pelvis translation
        out[:, x], out[:, z] = cos * motion[:, x] + sin * motion[:, z], cos * motion[:, z] - sin * motion[:, x]
    return out.astype(motion.dtype)


def gaze_score(rotations_6d: np.ndarray, root_translation: np.ndarray, user_head: np.ndarray,
               window_frames: int = 2 * FPS) -> np.ndarray:
    """(T,) float32 eye-contact score in [0, 1]: windowed mean of (1 + cos gaze angle) / 2."""
    positions, rotations = sk.forward_kinematics_6d(rotations_6d, root_translation)
    per_frame = 0.5 * (1.0 + np.cos(sk.gaze_angle(positions, rotations, user_head)))
    return uniform_filter1d(per_frame, window_frames, mode="nearest").astype(np.float32)
