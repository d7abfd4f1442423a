"""World model v2: a DIAMOND-style denoiser in pixel space, conditioned where the hands live.

One model generates the next 64x64 frame from the frames before it (autoregressive, one
frame per step), as DIAMOND (Alonso et al. 2024) does for Atari: a 2D U-Net (diffusers'
``UNet2DModel``) in pixel space, EDM preconditioning (diffusers' ``EDMEulerScheduler``
formulas), 1-3 Euler steps at inference. Everything it is given is an image at the
generated resolution, concatenated on the input channels (in this order):

* the noisy frame (3, EDM-scaled), x in [-1, 1];
* the anchor frame (the observed frame the stream started from) reprojected to the new
  head pose (3; :mod:`.reprojection`): the room, with no drift however long the rollout;
* the last ``context_frames`` generated frames, each reprojected to the new head pose
  (3 each): what changed since the anchor (the button lit, the ball carried);
* the hand skeleton of the new frame, per hand: its bones (1 where a bone is) and their
  inverse depth (1 / m, the nearest bone wins a pixel) (4; :func:`draw_skeleton_depth`);
* the previous frame's skeleton, bones only (2): where the hands were, to be erased.

The model generates the frame as a *correction to the reprojected anchor* (the geometric prior of
:mod:`.reprojection`): its data space is frame - prior, so predicting zero shows the prior, and
what it must learn is what geometry cannot give - hands, the button, moved objects, parallax.
(Generating whole frames, the network first had to learn to copy the prior: 400 steps in, its
first frame scored 26 dB where the prior alone scores 33; docs/worldmodel.md, "World model v2".)

The 3D joints in the camera frame with their validity flags (2 x 26 x 4 numbers) go
through an MLP and are added to the noise-level embedding, so they act through the
U-Net's adaptive group norm (``resnet_time_scale_shift="scale_shift"``), as DIAMOND
conditions on actions. The head-only ablation switches the skeleton and joints off.

Why a new model beside :mod:`.dit`: 16 tokens of 16x16 pixels through a 16-component PCA
codec cannot place a hand a few pixels wide (docs/worldmodel.md, "World model v2").
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
from diffusers import EDMEulerScheduler, UNet2DModel
from pydantic import ConfigDict, Field, NonNegativeFloat, PositiveFloat, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn

from genxr.components.worldmodel.conditioning import BONES, JOINTS, Tracking, camera_frame_joints

HAND_CHANNELS = 4
"""Skeleton channels of the new frame: bones (left, right) then inverse depth (left, right)."""
PREVIOUS_HAND_CHANNELS = 2
JOINT_FEATURES = 2 * JOINTS * 4
NOISE_EMBEDDING_SCALE = 1000.0
"""EDM's c_noise = log(sigma) / 4 (about -1.6..0.4) times this, so diffusers' sinusoidal embedding,
made for timesteps 0..1000, resolves it."""
MIN_DEPTH_M = 0.05


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class PixelWorldConfig:
    """Sizes, conditioning paths and the EDM noise schedule (validated). ``sigma_data`` is the spread of
    the corrections (frame - prior, [-1, 1] units: 0.097 measured on training batches), and the
    training noise levels are DIAMOND's log-normal moved down by the same factor (median 0.3)."""

    resolution: PositiveInt = 64
    block_channels: tuple[PositiveInt, ...] = (32, 64, 64, 64)
    layers_per_block: PositiveInt = 1
    norm_groups: PositiveInt = 16
    context_frames: PositiveInt = 2
    use_skeleton: bool = True
    use_joints: bool = True
    vertical_fov_deg: Annotated[float, Field(gt=0.0, lt=180.0)] = 80.0
    plane_depth_m: PositiveFloat = 2.0
    skeleton_samples_per_bone: PositiveInt = 12
    sigma_data: PositiveFloat = 0.1
    sigma_min: PositiveFloat = 0.002
    sigma_max: PositiveFloat = 2.0
    rho: PositiveFloat = 7.0
    train_log_sigma_mean: float = -1.2
    train_log_sigma_std: PositiveFloat = 1.2
    context_noise_max: NonNegativeFloat = 0.1

    def __post_init__(self) -> None:
        levels = len(self.block_channels)
        if self.resolution % 2 ** (levels - 1):
            raise ValueError(f"resolution {self.resolution} must be divisible by 2^{levels - 1} "
                             f"({levels} block_channels levels)")
        bad = [c for c in self.block_channels if c % self.norm_groups]
        if bad:
            raise ValueError(f"block_channels {bad} must be multiples of norm_groups {self.norm_groups}")

    @property
    def in_channels(self) -> int:
        hands = (HAND_CHANNELS + PREVIOUS_HAND_CHANNELS) if self.use_skeleton else 0
        return 3 + 3 + 3 * self.context_frames + hands

    @property
    def embedding_dim(self) -> int:
        """diffusers' time-embedding width: 4 x the first block's channels."""
        return 4 * self.block_channels[0]


def draw_skeleton_depth(tracking: Tracking, resolution: int, vertical_fov_deg: float, samples_per_bone: int
                        ) -> torch.Tensor:
    """(B, F, 4, R, R): per hand, bones (1 where a valid bone projects) and their inverse depth in 1/m
    (the nearest bone wins a pixel), drawn with the reported head pose in the user's view.
    ``samples_per_bone`` points along each bone are splatted to their nearest pixel (a scatter)."""
    joints = camera_frame_joints(tracking)  # (B, F, 2, 26, 3), OpenXR view space
    depth = -joints[..., 2]
    focal = (resolution / 2) / math.tan(math.radians(vertical_fov_deg) / 2)
    safe = depth.clamp_min(MIN_DEPTH_M)
    uv = torch.stack([resolution / 2 + focal * joints[..., 0] / safe, resolution / 2 - focal * joints[..., 1] / safe],
                     -1)
    ok = (tracking.joint_valid > 0) & (depth > MIN_DEPTH_M)
    parent, child = (torch.tensor(index) for index in zip(*BONES))
    t = torch.linspace(0.0, 1.0, samples_per_bone)[:, None]
    a, b = uv[..., parent, None, :], uv[..., child, None, :]  # (B, F, 2, 25, 1, 2)
    points = (a + t * (b - a)).floor().long()
    inverse = 1.0 / (safe[..., parent, None] + t[:, 0] * (safe[..., child, None] - safe[..., parent, None]))
    inside = ((points >= 0) & (points < resolution)).all(-1) & (ok[..., parent] & ok[..., child])[..., None]
    batch, frames = uv.shape[:2]
    planes = batch * frames * 2
    plane = torch.arange(planes).reshape(batch, frames, 2, 1, 1).expand_as(inside)
    pixel = plane * resolution * resolution + points[..., 1] * resolution + points[..., 0]
    bones = torch.zeros(planes * resolution * resolution)
    bones[pixel[inside]] = 1.0
    near = torch.zeros(planes * resolution * resolution).scatter_reduce(0, pixel[inside], inverse[inside], "amax")
    shape = (batch, frames, 2, resolution, resolution)
    return torch.cat([bones.reshape(shape), near.reshape(shape)], 2)


class PixelWorldModel(nn.Module):
    """The EDM denoiser D(x; sigma, conditioning) around a diffusers ``UNet2DModel``.

    :meth:`denoise` takes the noisy frame ``x`` (B, 3, H, W) in [-1, 1] units, ``sigma`` (B,),
    the conditioning images ``condition`` (B, in_channels - 3, H, W) and the joint features
    ``joints`` (B, 208) (ignored with the joints path off), and returns the denoised frame
    (B, 3, H, W) in [-1, 1] units.
    """

    def __init__(self, config: PixelWorldConfig) -> None:
        super().__init__()
        self.config = config
        levels = len(config.block_channels)
        self.unet = UNet2DModel(
            sample_size=config.resolution, in_channels=config.in_channels, out_channels=3,
            block_out_channels=config.block_channels, layers_per_block=config.layers_per_block,
            down_block_types=("DownBlock2D",) * levels, up_block_types=("UpBlock2D",) * levels,
            norm_num_groups=config.norm_groups, attention_head_dim=config.block_channels[-1] // 2,
            resnet_time_scale_shift="scale_shift", class_embed_type="identity" if config.use_joints else None)
        if config.use_joints:
            width = config.embedding_dim
            self.joints = nn.Sequential(nn.Linear(JOINT_FEATURES, width), nn.SiLU(), nn.Linear(width, width))
        self.edm = EDMEulerScheduler(sigma_min=config.sigma_min, sigma_max=config.sigma_max,
                                     sigma_data=config.sigma_data, rho=config.rho, prediction_type="epsilon")

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, condition: torch.Tensor, joints: torch.Tensor | None
                ) -> torch.Tensor:
        s = sigma.reshape(-1, 1, 1, 1)
        c_noise = self.edm.precondition_noise(sigma) * NOISE_EMBEDDING_SCALE
        inputs = torch.cat([self.edm.precondition_inputs(x, s), condition], 1)
        labels = self.joints(joints) if self.config.use_joints else None
        output = self.unet(inputs, c_noise, class_labels=labels).sample
        return self.edm.precondition_outputs(x, output, s)

    def loss_weight(self, sigma: torch.Tensor) -> torch.Tensor:
        """EDM's lambda(sigma) = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2, (B,)."""
        d = self.config.sigma_data
        return (sigma ** 2 + d ** 2) / (sigma * d) ** 2

    def sample_training_sigma(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) log-normal training noise levels (EDM / DIAMOND), clamped to [sigma_min, sigma_max]."""
        c = self.config
        log_sigma = torch.randn(batch, generator=generator) * c.train_log_sigma_std + c.train_log_sigma_mean
        return log_sigma.exp().clamp(c.sigma_min, c.sigma_max)

    def sigmas(self, steps: int) -> torch.Tensor:
        """(steps + 1,) Karras sampling noise levels from sigma_max down to 0."""
        ramp = torch.linspace(0.0, 1.0, steps, dtype=torch.float64)
        return torch.cat([self.edm._compute_karras_sigmas(ramp), torch.zeros(1, dtype=torch.float64)]).float()

    @torch.no_grad()
    def sample(self, condition: torch.Tensor, joints: torch.Tensor | None, steps: int,
               noise: torch.Tensor) -> torch.Tensor:
        """A frame (B, 3, H, W) in [-1, 1] units by ``steps`` Euler steps of the EDM ODE from ``noise``
        (B, 3, H, W; standard normal, or zeros for the deterministic stream) scaled to sigma_max."""
        sigmas = self.sigmas(steps)
        x = noise * sigmas[0]
        batch = x.shape[0]
        for s, s_next in zip(sigmas[:-1], sigmas[1:]):
            denoised = self.denoise(x, torch.full((batch,), float(s)), condition, joints)
            x = denoised if s_next == 0 else x + (x - denoised) / s * (s_next - s)
        return x
