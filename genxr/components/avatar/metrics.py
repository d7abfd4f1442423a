"""Motion-quality metrics for the conversational avatar (no learned feature extractor).

Inputs are avatar-frame motion: rotations (T, 22, 6) local 6D, pelvis translation (T, 3)
metres, the user's head (T, 3) metres, 30 fps.

* pose features: FK joint positions relative to the pelvis, turned by minus the heading
  (canonical: facing +Z), (T, 66) metres; FD_g is the Frechet distance of their
  distributions, FD_k that of their frame-to-frame velocities (m/s);
  ``||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))`` with ``scipy.linalg.sqrtm`` (1e-6 I added
  to both covariances);
* diversity: mean L2 between random frame pairs of pose features (metres);
* gaze angle (degrees) between head forward and the direction to the user's head; eye
  contact: gaze angle below :data:`EYE_CONTACT_DEG`;
* facing error (degrees): absolute ground-plane angle from body facing to the user;
* speed by chunk phase: mean upper-body speed of the frame steps inside the model's 4-frame
  chunks and across their seams (a chunk-rate artefact shows as a larger seam entry);
* beat consistency (EMAGE): audio beats are peaks of the agent's onset strength; motion
  beats are prominent local minima of upper-body joint speed; BC = mean over audio beats
  of ``exp(-dt^2 / (2 sigma^2))``, dt the distance to the nearest motion beat, sigma 0.3 s.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import sqrtm
from scipy.signal import find_peaks

from genxr.components.avatar import skeleton as sk
from genxr.components.avatar.features import FPS

EYE_CONTACT_DEG = 12.0
BEAT_SIGMA_S = 0.3


def pose_features(rotations_6d: np.ndarray, root_translation: np.ndarray) -> np.ndarray:
    """(T, 66) pelvis-relative, heading-removed joint positions in metres."""
    positions, rotations = sk.forward_kinematics_6d(rotations_6d.astype(np.float64), root_translation.astype(np.float64))
    relative = positions - positions[:, :1]
    unturn = sk.rotation_y(-sk.heading(rotations[:, 0]))
    return np.einsum("tij,tkj->tki", unturn, relative).reshape(len(positions), -1)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to samples ``a`` (N, D) and ``b`` (M, D)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    eps = 1e-6 * np.eye(len(mu_a))  # keeps sqrtm defined for degenerate (e.g. constant) samples
    cov_a, cov_b = np.cov(a, rowvar=False) + eps, np.cov(b, rowvar=False) + eps
    root = sqrtm(cov_a @ cov_b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2.0 * np.real(root)))


def diversity(features: np.ndarray, pairs: int = 2000, seed: int = 0) -> float:
    """Mean L2 distance between ``pairs`` random frame pairs of ``features`` (T, D)."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(features), (2, pairs))
    return float(np.linalg.norm(features[i] - features[j], axis=-1).mean())


def gaze_and_facing_deg(rotations_6d: np.ndarray, root_translation: np.ndarray, user_head: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(T,) gaze angle and (T,) absolute facing error, degrees."""
    positions, rotations = sk.forward_kinematics_6d(rotations_6d.astype(np.float64), root_translation.astype(np.float64))
    gaze = np.degrees(sk.gaze_angle(positions, rotations, user_head))
    facing = np.degrees(np.abs(sk.facing_error(positions, user_head)))
    return gaze, facing


def motion_beats(pose: np.ndarray) -> np.ndarray:
    """Frame indices of prominent local minima of upper-body joint speed; ``pose`` (T, 66)."""
    joints = pose.reshape(len(pose), -1, 3)[:, list(sk.UPPER_BODY)]
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).sum(axis=-1)
    if speed.std() < 1e-9:
        return np.zeros(0, dtype=int)
    minima, _ = find_peaks(-speed, prominence=0.1 * speed.std())
    return minima + 1


def speed_by_chunk_phase(pose: np.ndarray, stride: int = 4) -> np.ndarray:
    """(stride,) mean upper-body speed (summed joint displacement per frame, metres) of the steps
    from frame ``k stride + j`` to the next, by ``j``; the last entry crosses a chunk seam. Equal
    entries: no chunk-rate artefact. ``pose`` (T, 66)."""
    joints = pose.reshape(len(pose), -1, 3)[:, list(sk.UPPER_BODY)]
    speed = np.linalg.norm(np.diff(joints, axis=0), axis=-1).sum(axis=-1)
    whole = len(speed) // stride * stride
    if whole == 0:
        raise ValueError(f"pose has {len(pose)} frames; speed by chunk phase needs more than {stride}")
    return speed[:whole].reshape(-1, stride).mean(axis=0)


def audio_beats(onset_strength: np.ndarray) -> np.ndarray:
    """Frame indices of onset peaks of one speaker's onset-strength feature (T,)."""
    peaks, _ = find_peaks(onset_strength, height=0.3, distance=3)
    return peaks


def beat_consistency(audio_beat_frames: np.ndarray, motion_beat_frames: np.ndarray) -> float:
    """EMAGE beat consistency in [0, 1]; 0 when there are no motion beats at all."""
    if len(audio_beat_frames) == 0:
        raise ValueError("no audio beats to score")
    if len(motion_beat_frames) == 0:
        return 0.0
    dt = np.abs(audio_beat_frames[:, None] - motion_beat_frames[None, :]).min(axis=1) / FPS
    return float(np.mean(np.exp(-dt ** 2 / (2.0 * BEAT_SIGMA_S ** 2))))
