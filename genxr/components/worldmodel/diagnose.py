"""Why a student scores what it scores: rollouts under chosen inference settings, with the
student's own context or the ground truth's, and how its predicted change agrees with the
true one.

The models predict latents *relative to the prior* (the anchor reprojected to each frame's
head pose, :func:`~.reprojection.prior_relative`), so a student that predicts zero change
shows the prior. :func:`change_agreement` compares the predicted change ``p`` with the true
change ``t`` (both (T, C, h, w) latents, prior subtracted):

* ``cosine``: per frame, cos(p, t); 0 means the prediction carries no information about
  the change;
* ``relative_error``: per frame, |p - t|^2 / |t|^2; above 1 the prediction is worse than
  predicting no change (the prior) at all;
* ``best_shrink``: the factor a minimising |a p - t|^2 over all frames, <p, t> / <p, p>.
  Near 0 the error-minimising output is the prior itself.

``teacher_forced=True`` writes the codec latents of the true frames into the KV cache after
each chunk instead of the student's own output: the gap between the two rollouts is the
error the student's own history adds (exposure bias); what is left is the error of one
chunk given perfect context. ``window_frames`` overrides the cache's rolling window for the
rollout (the sink stays). Measured results are in docs/worldmodel.md.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np
import torch

from genxr.components import flow_matching as fm
from genxr.components.worldmodel import metrics
from genxr.components.worldmodel.codec import FrameCodec
from genxr.components.worldmodel.conditioning import tracking_from_arrays
from genxr.components.worldmodel.data import images_of
from genxr.components.worldmodel.dit import VideoDiT
from genxr.components.worldmodel.reprojection import attach_prior, frames_from, prior_relative
from genxr.components.worldmodel.stream import generate_chunk, write_anchor


@dataclass(frozen=True)
class DiagnosisConfig:
    """Inference settings of a diagnostic rollout (see the module docstring)."""

    steps: int = 1
    sigma_shift: float = 3.0
    noise_scale: float = 0.0
    teacher_forced: bool = False
    window_frames: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps {self.steps} must be at least 1")
        if not 0.0 <= self.noise_scale <= 1.0:
            raise ValueError(f"noise_scale {self.noise_scale!r} must be in [0, 1]")
        if self.window_frames is not None and self.window_frames < 1:
            raise ValueError(f"window_frames {self.window_frames} must be at least 1 (or None: the student's own)")


@torch.no_grad()
def rollout_changes(student: VideoDiT, codec: FrameCodec, clip: dict[str, np.ndarray], config: DiagnosisConfig
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predicted and true changes (T, C, h, w) for one clip (arrays of T + 1 frames, the first the
    anchor), streamed chunk by chunk exactly as :class:`~.stream.WorldModelStream` does, and the
    prior's pixels (T, 3, H, W)."""
    if config.window_frames is not None:
        student = copy.deepcopy(student)
        student.config = replace(student.config, window_frames=config.window_frames)
    tracking = tracking_from_arrays(clip["head_pose"], clip["hand_positions"], clip["hand_flags"], clip["hand_active"])
    images = images_of(clip["rgb"])
    tracking, prior_pixels = attach_prior(codec, images[:1], tracking, student.config.conditioning)
    latents = prior_relative(codec.encode(images)[None], tracking.prior)  # (1, T + 1, C, h, w)
    anchor, true = latents[:, :1], latents[:, 1:]
    frames, chunk = true.shape[1], student.config.chunk_frames
    generator = torch.Generator().manual_seed(config.seed)
    sigmas = fm.euler_sigmas(config.steps, config.sigma_shift)
    cache = write_anchor(student, anchor, tracking.frames(0, 1))
    predicted = []
    for start in range(0, frames, chunk):
        stop = min(start + chunk, frames)
        chunk_tracking = tracking.frames(1 + start, 1 + stop)
        noise = torch.randn(true[:, start:stop].shape, generator=generator) * config.noise_scale
        x0, own_cache = generate_chunk(student, cache, chunk_tracking, sigmas, noise)
        predicted.append(x0)
        if config.teacher_forced:
            _, cache = student.step(true[:, start:stop], torch.zeros(1, stop - start), chunk_tracking, cache)
        else:
            cache = own_cache
    return torch.cat(predicted, 1)[0], true[0], prior_pixels[0, 1:]


def change_agreement(predicted: list[torch.Tensor], true: list[torch.Tensor]) -> dict[str, object]:
    """Agreement of predicted and true changes, each a list of (T, C, h, w) per rollout: per-frame mean
    ``cosine``, per-frame median ``relative_error`` and the overall ``best_shrink``."""
    p, t = torch.stack(predicted).flatten(2).double(), torch.stack(true).flatten(2).double()  # (R, T, D)
    cosine = torch.nn.functional.cosine_similarity(p, t, dim=2).mean(0)
    relative = ((p - t).pow(2).sum(2) / t.pow(2).sum(2).clamp_min(1e-12)).median(0).values
    return {"cosine": cosine.tolist(), "relative_error": relative.tolist(),
            "best_shrink": float((p * t).sum() / (p * p).sum().clamp_min(1e-12))}


def diagnose(student: VideoDiT, codec: FrameCodec, clips: list[dict[str, np.ndarray]], config: DiagnosisConfig
             ) -> dict[str, object]:
    """PSNR (dB) per frame and overall, SSIM, and :func:`change_agreement` of the student's rollouts of
    ``clips``; the codec reconstruction and the anchor repeated are scored on the same frames."""
    predicted, true, generated, truth, anchor_copy, codec_frames = [], [], [], [], [], []
    for clip in clips:
        change, true_change, prior_pixels = rollout_changes(student, codec, clip, config)
        images = images_of(clip["rgb"])
        with torch.no_grad():
            generated.append(frames_from(codec, change[None], prior_pixels[None])[0].permute(0, 2, 3, 1).numpy())
            codec_frames.append(codec.decode(codec.encode(images[1:])).permute(0, 2, 3, 1).numpy())
        predicted.append(change)
        true.append(true_change)
        truth.append(images[1:].permute(0, 2, 3, 1).numpy())
        anchor_copy.append(np.repeat(images[:1].permute(0, 2, 3, 1).numpy(), len(truth[-1]), 0))
    truth_a = np.stack(truth)

    def scores(frames: list[np.ndarray]) -> dict[str, object]:
        frames_a = np.stack(frames)
        by_frame = np.array([[metrics.psnr(frames_a[r, k], truth_a[r, k]) for k in range(truth_a.shape[1])]
                             for r in range(truth_a.shape[0])]).mean(0)
        return {"psnr": float(by_frame.mean()), "psnr_by_frame": by_frame.round(3).tolist(),
                "ssim": metrics.ssim(frames_a.reshape(-1, *frames_a.shape[2:]),
                                     truth_a.reshape(-1, *truth_a.shape[2:]))}

    return {"student": scores(generated) | change_agreement(predicted, true), "anchor_copy": scores(anchor_copy),
            "codec": scores(codec_frames), "rollouts": len(clips), "frames": int(truth_a.shape[1])}
