"""SimClips: k-frame clips that round-trip the recorded episode exactly, through a DataLoader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genxr.components.sim.clips import SimClips
from genxr.components.sim.dataset import DatasetConfig, DatasetError, write_dataset
from genxr.components.sim.episode import FIELDS, record_episode
from genxr.components.sim.renderer import Renderer, RendererConfig
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock

CONFIG = DatasetConfig(episodes=2, frames=12, resolution=16)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clips") / "data"
    write_dataset(root, CONFIG, progress=False)
    return root


def test_clips_round_trip_the_recorded_episode_exactly(written):
    seed, behaviour = CONFIG.episode(1)
    record = record_episode(ScriptedUser(behaviour, seed=seed, clock=ManualClock(0)),
                            Renderer(RendererConfig(width=16, height=16, vertical_fov_deg=CONFIG.vertical_fov_deg)), 12)
    clips = SimClips(written, clip_frames=5, stride=3)
    assert len(clips) == 2 * 3  # starts 0, 3, 6 in each episode
    clip = clips[4]  # episode 1, start 3
    assert int(clip["episode"]) == 1 and int(clip["start"]) == 3
    for name in FIELDS:
        assert torch.equal(clip[name], torch.from_numpy(record[name][3:8])), name
    loader = torch.utils.data.DataLoader(SimClips(written, clip_frames=4, fields=("rgb", "hand_positions")),
                                         batch_size=3)
    batch = next(iter(loader))
    assert batch["rgb"].shape == (3, 4, 16, 16, 3) and batch["hand_positions"].shape == (3, 4, 2, 26, 3)


def test_clips_reject_bad_arguments(written):
    with pytest.raises(DatasetError, match="clip_frames 13"):
        SimClips(written, clip_frames=13)
    with pytest.raises(DatasetError, match="unknown fields \\['colour'\\]"):
        SimClips(written, fields=("colour",))
    assert np.isfinite(SimClips(written, clip_frames=12)[0]["depth"].numpy()).all()
