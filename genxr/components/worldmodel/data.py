"""Simulator episodes held in memory for world-model training and evaluation.

A data set written by ``genxr sim dataset`` (see :mod:`genxr.components.sim.dataset`) is
read whole: at 64x64 an episode of 360 frames is ~4.4 MB of RGB, so a training set of
tens of episodes fits in memory and clips are sliced without touching the disk.
:class:`~genxr.components.sim.clips.SimClips` is not used for training because it opens a
shard per clip, which costs more than a training step of the small models here.

Model frames are every ``frame_stride``-th simulator frame (90 Hz / 3 = 30 Hz by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors
import torch

from genxr.components.sim.dataset import read_manifest
from genxr.components.worldmodel.conditioning import Tracking, tracking_from_arrays

TRAINING_FIELDS = ("rgb", "head_pose", "hand_positions", "hand_flags", "hand_active")
EVALUATION_FIELDS = TRAINING_FIELDS + ("hand_mask", "object_mask", "object_state")


@dataclass
class Episodes:
    """Arrays (E, T, ...) of every episode (same length T), keyed by data set field name."""

    arrays: dict[str, np.ndarray]
    vertical_fov_deg: float

    @property
    def count(self) -> int:
        return self.arrays["rgb"].shape[0]

    @property
    def frames(self) -> int:
        return self.arrays["rgb"].shape[1]

    def clip(self, episode: int, start: int, frames: int, stride: int, gap: int = 0) -> dict[str, np.ndarray]:
        """Frame ``start`` (the anchor) then ``frames - 1`` frames every ``stride`` simulator frames
        from ``start + (1 + gap) * stride`` on, of one episode."""
        index = [start] + [start + (1 + gap + k) * stride for k in range(frames - 1)]
        return {name: array[episode, index] for name, array in self.arrays.items()}

    def batch(self, batch: int, frames: int, stride: int, rng: np.random.Generator, max_gap: int = 0
              ) -> tuple[torch.Tensor, Tracking]:
        """``batch`` random clips, each an anchor frame and ``frames - 1`` consecutive model frames
        starting a random 0..``max_gap`` model frames after it (the situation of a stream whose
        cache keeps its first frame as a sink): images (B, F, 3, H, W) float in [0, 1] and their
        :class:`Tracking` (reference = the anchor)."""
        clips = []
        for _ in range(batch):
            gap = int(rng.integers(max_gap + 1))
            span = (frames - 1 + gap) * stride + 1
            if span > self.frames:
                raise ValueError(f"episodes of {self.frames} frames are too short for clips spanning {span}")
            clips.append(self.clip(int(rng.integers(self.count)), int(rng.integers(self.frames - span + 1)),
                                   frames, stride, gap))
        return images_of(np.stack([c["rgb"] for c in clips])), tracking_of(clips)


def images_of(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float (..., 3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).movedim(-1, -3).float() / 255.0


def tracking_of(clips: list[dict[str, np.ndarray]]) -> Tracking:
    """A batched :class:`Tracking` of clips (each a :meth:`Episodes.clip` dict)."""
    parts = [tracking_from_arrays(c["head_pose"], c["hand_positions"], c["hand_flags"], c["hand_active"]) for c in clips]
    return Tracking(*(torch.cat([getattr(p, name) for p in parts]) for name in
                      ("head_pose", "hand_positions", "joint_valid", "reference")))


def load_episodes(root: Path, fields: tuple[str, ...] = TRAINING_FIELDS, limit: int | None = None) -> Episodes:
    """Every episode (or the first ``limit``) of the data set at ``root``, only ``fields``."""
    manifest = read_manifest(Path(root))
    entries = manifest["episodes"][:limit]
    arrays: dict[str, list[np.ndarray]] = {name: [] for name in fields}
    for entry in entries:
        with safetensors.safe_open(str(Path(root) / entry["file"]), framework="numpy") as shard:
            for name in fields:
                arrays[name].append(shard.get_tensor(name))
    return Episodes({name: np.stack(values) for name, values in arrays.items()},
                    float(manifest["config"]["vertical_fov_deg"]))
