"""A torch ``Dataset`` of k-frame clips from a simulator data set (see :mod:`.dataset`).

Item ``i`` is a dict of tensors, each field of :data:`~genxr.components.sim.episode.FIELDS`
with a leading clip axis of ``clip_frames`` (e.g. ``rgb`` (k, H, W, 3) uint8,
``true_hand_positions`` (k, 2, 26, 3) float32), plus ``episode`` and ``start`` (int64
scalars). Clips start every ``stride`` frames and never cross episodes. Only the clip's
frames are read from the shard.
"""

from __future__ import annotations

from pathlib import Path

import safetensors
import torch
from torch.utils.data import Dataset

from genxr.components.sim.dataset import DatasetError, read_manifest
from genxr.components.sim.episode import FIELDS


class SimClips(Dataset):
    """Clips of ``clip_frames`` consecutive frames of the data set at ``root``, optionally only ``fields``."""

    def __init__(self, root: Path, clip_frames: int = 8, stride: int = 1, fields: tuple[str, ...] | None = None):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        frames = self.manifest["config"]["frames"]
        if not (isinstance(clip_frames, int) and 1 <= clip_frames <= frames):
            raise DatasetError(f"clip_frames {clip_frames!r} must be an integer in [1, {frames}] (episode length)")
        if not (isinstance(stride, int) and stride >= 1):
            raise DatasetError(f"stride {stride!r} must be an integer >= 1")
        unknown = sorted(set(fields or ()) - set(FIELDS))
        if unknown:
            raise DatasetError(f"unknown fields {unknown}; known fields: {', '.join(FIELDS)}")
        self.fields = tuple(fields) if fields else tuple(FIELDS)
        self.clip_frames = clip_frames
        self.index = [(episode, start) for episode in range(len(self.manifest["episodes"]))
                      for start in range(0, frames - clip_frames + 1, stride)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        episode, start = self.index[item]
        path = self.root / self.manifest["episodes"][episode]["file"]
        clip = {"episode": torch.tensor(episode), "start": torch.tensor(start)}
        with safetensors.safe_open(str(path), framework="pt") as shard:
            for name in self.fields:
                clip[name] = shard.get_slice(name)[start:start + self.clip_frames]
        return clip
