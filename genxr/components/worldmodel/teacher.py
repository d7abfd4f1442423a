"""Many-step sampling with the bidirectional teacher: windows, trajectories and long rollouts.

Latents of generated frames are corrections to the reprojected anchor
(:func:`.reprojection.prior_relative`; ``tracking.prior`` must be attached). The teacher denoises a window of frames after a clean anchor frame (noise level 0, the
observed image the stream starts from; the window may start any number of frames after
it, as in training with ``max_gap``). Sampling integrates the flow ODE with
:func:`genxr.components.flow_matching.euler_step` from noise level 1 to 0 over a grid
given by :func:`trajectory_sigmas`, which contains the student's few-step grid, so the
teacher's trajectory passes exactly through the states the student starts its steps from.
"""

from __future__ import annotations

from itertools import pairwise

import torch

from genxr.components import flow_matching as fm
from genxr.components.worldmodel.conditioning import Tracking
from genxr.components.worldmodel.dit import VideoDiT


def trajectory_sigmas(teacher_steps: int, student_sigmas: torch.Tensor) -> torch.Tensor:
    """(teacher_steps + 1,) noise levels from 1 to 0: each student interval split uniformly into an equal share."""
    intervals = len(student_sigmas) - 1
    per = max(teacher_steps // intervals, 1)
    parts = [torch.linspace(float(a), float(b), per + 1)[:-1] for a, b in pairwise(student_sigmas)]
    return torch.cat(parts + [torch.zeros(1)])


@torch.no_grad()
def sample_window(teacher: VideoDiT, anchor: torch.Tensor, tracking: Tracking, noise: torch.Tensor,
                  sigmas: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Clean latents (B, W, C, h, w) of the window after ``anchor`` (B, 1, C, h, w); ``tracking`` covers
    the anchor and the window (W + 1 frames). Also returns the states at the noise levels ``keep``
    (each a level on the ``sigmas`` grid), in ``keep`` order."""
    b, w = noise.shape[:2]
    x = noise
    kept = []
    wanted = [] if keep is None else [float(k) for k in keep]
    for s, s_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        if any(abs(s - k) < 1e-6 for k in wanted):
            kept.append(x.clone())
        sigma = torch.cat([torch.zeros(b, 1), torch.full((b, w), s)], 1)
        velocity = teacher(torch.cat([anchor, x], 1), sigma, tracking)[:, 1:]
        x = fm.euler_step(x, velocity, s, s_next)
    return x, kept


@torch.no_grad()
def teacher_rollout(teacher: VideoDiT, anchor: torch.Tensor, tracking: Tracking, window: int, sigmas: torch.Tensor,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Latents (B, T, C, h, w) of the T frames after ``anchor`` ((B, 1, C, h, w); ``tracking`` has T + 1
    frames, reference = anchor, prior attached), generated ``window`` frames at a time, each window anchored on the
    observed frame (the teacher has no cache; windows further out use the anchor gap seen in training)."""
    total = tracking.head_pose.shape[1] - 1
    c = teacher.config
    out = []
    for start in range(0, total, window):
        stop = min(start + window, total)
        part = tracking.select([0, *range(1 + start, 1 + stop)])
        noise = torch.randn(anchor.shape[0], stop - start, c.latent_channels, c.latent_size, c.latent_size,
                            generator=generator)
        x, _ = sample_window(teacher, anchor, part, noise, sigmas)
        out.append(x)
    return torch.cat(out, 1)
