"""Rectified-flow (flow matching) core shared by the avatar and the world model.

Model-agnostic: tensors ``x`` are any shape ``(B, ...)`` (motion latents, video latents);
``s`` is the noise level in [0, 1] per sample ``(B,)`` or per token ``(B, N)`` (then it
broadcasts over the remaining trailing dims).

Convention (diffusers' ``FlowMatchEulerDiscreteScheduler``, torchcfm's
``ConditionalFlowMatcher`` with sigma = 0):

* path ``x_s = (1 - s) x0 + s noise`` (s = 0 data, s = 1 noise);
* velocity target ``v = d x_s / d s = noise - x0``; hence ``x0 = x_s - s v``;
* classifier-free guidance ``v = v_uncond + w (v_cond - v_uncond)`` (w = 1: conditional,
  w = 0: unconditional);
* sampling integrates from s = 1 to s = 0 with explicit Euler steps
  ``x <- x + (s_next - s) v`` over :func:`euler_sigmas`.

The sigma grid comes from diffusers' scheduler (its ``shift`` warps it toward high noise).
Its ``step`` is not used: it keeps a step index inside the scheduler instance, which a
streaming caller running many interleaved loops (one per chunk, cache writes in between)
cannot share; ``scale_noise`` looks noise levels up in its discrete grid, whereas training
samples s continuously. torchcfm itself is not a dependency (it would pull in
torchdyn / pot for three lines of algebra).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler


def _expand(s: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return s.reshape(*s.shape, *([1] * (like.dim() - s.dim())))


def interpolate(x0: torch.Tensor, noise: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``x_s = (1 - s) x0 + s noise``; ``s`` (B,) or (B, N) broadcasts over trailing dims."""
    s = _expand(s, x0)
    return (1.0 - s) * x0 + s * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """``noise - x0``: the constant velocity of the straight path from data to noise."""
    return noise - x0


def predict_x0(x_s: torch.Tensor, velocity: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """The data point the velocity points back to: ``x_s - s v``."""
    return x_s - _expand(s, x_s) * velocity


def sample_noise_levels(shape: tuple[int, ...], generator: torch.Generator | None = None,
                        logit_normal_std: float = 1.0) -> torch.Tensor:
    """Training noise levels in (0, 1), logit-normal (SD3; ``logit_normal_std = 0`` gives 0.5)."""
    return torch.sigmoid(torch.randn(shape, generator=generator) * logit_normal_std)


def flow_matching_loss(velocity: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor,
                       weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error between the predicted ``velocity`` and ``noise - x0``.

    ``weight`` (broadcastable to x0, e.g. a (B, N, 1) token mask) averages only where it is non-zero.
    """
    error = (velocity - velocity_target(x0, noise)) ** 2
    if weight is None:
        return error.mean()
    weight = weight.expand_as(error)
    return (error * weight).sum() / weight.sum().clamp_min(1e-12)


def guided_velocity(v_uncond: torch.Tensor, v_cond: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``v_uncond + scale (v_cond - v_uncond)``."""
    return v_uncond + scale * (v_cond - v_uncond)


def euler_sigmas(steps: int, shift: float = 1.0) -> torch.Tensor:
    """(steps + 1,) float32 noise levels from 1 down to 0: a uniform grid warped by ``shift``
    (``shift s / (1 + (shift - 1) s)``) through diffusers' scheduler."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    scheduler = FlowMatchEulerDiscreteScheduler(shift=shift)
    scheduler.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:-1].tolist())
    return scheduler.sigmas.to(torch.float32)


def euler_step(x: torch.Tensor, velocity: torch.Tensor, s: float, s_next: float) -> torch.Tensor:
    """One explicit Euler step of the flow ODE from noise level ``s`` to ``s_next``."""
    return x + (s_next - s) * velocity


def sample(velocity_fn: Callable[[torch.Tensor, float], torch.Tensor], noise: torch.Tensor,
           sigmas: torch.Tensor) -> torch.Tensor:
    """Integrates ``dx/ds = velocity_fn(x, s)`` from ``noise`` at ``sigmas[0]`` to ``sigmas[-1]``."""
    x = noise
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        x = euler_step(x, velocity_fn(x, s), s, s_next)
    return x
