"""The latent generator's training pass: noise augmentation of the context tokens."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from genxr.components.avatar.features import AUDIO_DIM, USER_DIM
from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator


def _inputs(batch: int, tokens: int, stride: int):
    frames = tokens * stride
    return (torch.randn(batch, frames, AUDIO_DIM), torch.randn(batch, frames, USER_DIM), torch.rand(batch, tokens))


@pytest.mark.parametrize("context_noise", [0.0, 0.2])
def test_context_tokens_are_noised_up_to_the_configured_level_and_told_it(monkeypatch, context_noise):
    torch.manual_seed(0)
    model = LatentGenerator(replace(GENERATOR_PRESETS["tiny"], context_noise=context_noise))
    seen = {}

    def spy(x0, x_s, s, condition, s_context=None):
        seen.update(x0=x0, s_context=s_context)
        return torch.zeros_like(x_s)

    monkeypatch.setattr(model, "forward_sequence", spy)
    latents = torch.randn(3, 8, model.config.latent_dim)
    model.loss(latents, _inputs(3, 8, model.config.stride), torch.Generator().manual_seed(1))
    if context_noise == 0.0:
        assert seen["s_context"] is None and torch.equal(seen["x0"], latents)
        return
    levels = seen["s_context"]
    assert levels.shape == (3, 8) and float(levels.min()) >= 0.0 and float(levels.max()) <= context_noise
    assert float(levels.std()) > 0.0  # one level per token
    # each context token lies on the flow path from its latent at its own level
    residual = seen["x0"] - (1.0 - levels[..., None]) * latents
    assert not torch.allclose(seen["x0"], latents)
    assert torch.all(residual.abs() <= levels[..., None] * 6.0)


def test_the_context_level_reaches_the_model():
    torch.manual_seed(0)
    model = LatentGenerator(GENERATOR_PRESETS["tiny"]).eval()
    audio, user, gaze = _inputs(1, 6, model.config.stride)
    condition = model.condition(audio, user, gaze, torch.tensor([True]))
    x0, x_s = torch.randn(1, 6, model.config.latent_dim), torch.randn(1, 6, model.config.latent_dim)
    s = torch.full((1, 6), 0.5)
    with torch.no_grad():
        clean = model.forward_sequence(x0, x_s, s, condition)
        told = model.forward_sequence(x0, x_s, s, condition, torch.full((1, 6), 0.15))
        zero = model.forward_sequence(x0, x_s, s, condition, torch.zeros(1, 6))
    assert torch.equal(clean, zero) and not torch.allclose(clean, told)
