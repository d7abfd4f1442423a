"""The shared flow-matching core against closed-form formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from genxr.components import flow_matching as fm


def test_path_and_velocity_are_the_straight_line():
    x0, noise = torch.randn(3, 4, 5), torch.randn(3, 4, 5)
    s = torch.tensor([0.0, 0.3, 1.0])
    x_s = fm.interpolate(x0, noise, s)
    assert torch.allclose(x_s[0], x0[0]) and torch.allclose(x_s[2], noise[2])
    assert torch.allclose(x_s[1], 0.7 * x0[1] + 0.3 * noise[1])
    v = fm.velocity_target(x0, noise)
    assert torch.allclose(fm.predict_x0(x_s, v, s), x0, atol=1e-6)
    eps = 1e-3  # v is d x_s / d s
    assert torch.allclose((fm.interpolate(x0, noise, s + eps) - x_s) / eps, v, atol=1e-3)


def test_per_token_noise_levels_broadcast():
    x0, noise = torch.zeros(2, 3, 4), torch.ones(2, 3, 4)
    s = torch.tensor([[0.0, 0.5, 1.0], [0.25, 0.25, 0.25]])
    assert torch.allclose(fm.interpolate(x0, noise, s)[..., 0], s)


def test_loss_is_zero_for_the_true_velocity_and_masks_tokens():
    x0, noise = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert fm.flow_matching_loss(noise - x0, x0, noise) == 0.0
    wrong = noise - x0 + torch.tensor([0.0, 0.0, 2.0]).reshape(1, 3, 1)
    assert fm.flow_matching_loss(wrong, x0, noise) == pytest.approx(4.0 / 3.0)
    mask = torch.tensor([1.0, 1.0, 0.0]).reshape(1, 3, 1)
    assert fm.flow_matching_loss(wrong, x0, noise, weight=mask) == 0.0


def test_guidance_combination():
    v_u, v_c = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 1.0])
    assert torch.equal(fm.guided_velocity(v_u, v_c, 0.0), v_u)
    assert torch.equal(fm.guided_velocity(v_u, v_c, 1.0), v_c)
    assert torch.allclose(fm.guided_velocity(v_u, v_c, 3.0), torch.tensor([7.0, -1.0]))


def test_sigmas_uniform_and_shifted():
    assert torch.allclose(fm.euler_sigmas(4), torch.tensor([1.0, 0.75, 0.5, 0.25, 0.0]))
    s = np.array([1.0, 0.75, 0.5, 0.25])
    shifted = 3.0 * s / (1.0 + 2.0 * s)
    assert torch.allclose(fm.euler_sigmas(4, shift=3.0), torch.tensor([*shifted, 0.0], dtype=torch.float32))
    with pytest.raises(ValueError):
        fm.euler_sigmas(0)


def test_euler_step_matches_diffusers_step():
    scheduler = FlowMatchEulerDiscreteScheduler()
    sigmas = fm.euler_sigmas(3)
    scheduler.set_timesteps(sigmas=sigmas[:-1].tolist())
    x, v = torch.randn(2, 5), torch.randn(2, 5)
    for i, timestep in enumerate(scheduler.timesteps):
        expected = scheduler.step(v, timestep, x, return_dict=False)[0]
        x = fm.euler_step(x, v, float(sigmas[i]), float(sigmas[i + 1]))
        assert torch.allclose(x, expected, atol=1e-6)


def test_one_euler_step_is_exact_for_the_true_velocity_of_a_point_mass():
    x0 = torch.tensor([[2.0, -1.0]])
    noise = torch.randn(1, 2)
    # for data that is a single point, the optimal velocity at x_s is (x_s - x0) / s
    out = fm.sample(lambda x, s: (x - x0) / s, noise, fm.euler_sigmas(1))
    assert torch.allclose(out, x0, atol=1e-6)
    out = fm.sample(lambda x, s: (x - x0) / s, noise, fm.euler_sigmas(4, shift=2.0))
    assert torch.allclose(out, x0, atol=1e-6)


def test_noise_levels_are_in_the_open_interval_and_seeded():
    levels = fm.sample_noise_levels((1000,), torch.Generator().manual_seed(0))
    assert levels.min() > 0.0 and levels.max() < 1.0 and abs(float(levels.mean()) - 0.5) < 0.05
    assert torch.equal(levels, fm.sample_noise_levels((1000,), torch.Generator().manual_seed(0)))
