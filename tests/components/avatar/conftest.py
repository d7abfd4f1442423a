"""Untrained tiny avatar models (random weights): enough to test mechanics without training."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    generator = GENERATOR_PRESETS["tiny"]
    return {
        "vae": MotionVAE(VAE_PRESETS["tiny"]).eval(),
        "generator": LatentGenerator(generator).eval(),
        "generator_no_user": LatentGenerator(replace(generator, use_user_position=False)).eval(),
        "baseline": LatentGenerator(replace(generator, causal=False)).eval(),
    }
