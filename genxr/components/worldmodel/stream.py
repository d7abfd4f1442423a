"""Streaming generation with the chunk-causal student: :class:`WorldModelStream`.

One :meth:`WorldModelStream.step` per chunk of ``chunk_frames`` model frames: the chunk
starts as noise, is denoised in ``steps`` Euler steps of the flow ODE (1-4; each a forward
of the chunk's tokens against the KV cache, the cache left untouched), and the clean output
is run once more at noise level 0 to append its keys/values to the cache. That cache write
happens in the same forward as the *next* chunk's first step (:func:`stream_chunk`; the
result is the same as writing it first, tested), so a chunk costs ``steps`` forwards, not
``steps + 1``. Generated latents are corrections to the anchor image reprojected to
each frame's head pose (:mod:`.reprojection`); the decoded correction is added to the
reprojected pixels. The cache is plain tensors (:class:`~.dit.KVCache`) holding the anchor
frame (the ``sink``, the image the stream was reset with) and the newest ``window_frames``
frames, so memory is bounded however long a session runs.

The chunk's starting noise is a standard normal draw times ``noise_scale`` (the sampling
temperature, 1 = the distribution the model was trained on). The default is 0: every chunk
starts from the mean of that noise, which makes the stream a deterministic function of the
anchor and the tracking. It stays the default because against one ground truth the
conditional mean minimises the expected squared error (how it was chosen: docs/worldmodel.md,
"Before the reprojection prior").

:func:`generate_chunk` is the same procedure with the write right after the chunk, for a
batch, with the option of keeping the autograd graph of one chosen step (Self-Forcing
training, :mod:`.distill`).
"""

from __future__ import annotations

import numpy as np
import torch

from genxr.components import flow_matching as fm
from genxr.components.worldmodel.codec import FrameCodec
from genxr.components.worldmodel.conditioning import Tracking, tracking_from_messages
from genxr.components.worldmodel.dit import KVCache, VideoDiT
from genxr.components.worldmodel.reprojection import attach_prior, frames_from
from genxr.platform.messages import TrackingFrame


def _denoise(model: VideoDiT, cache: KVCache, tracking: Tracking, sigmas: torch.Tensor, noise: torch.Tensor,
             grad_step: int | None = None, pending: tuple[torch.Tensor, Tracking] | None = None
             ) -> tuple[torch.Tensor, KVCache]:
    """The Euler loop of one chunk: clean latents and ``cache``, with ``pending`` (the previous chunk's
    clean latents (B, p, C, h, w) and their tracking) written in the first forward if given."""
    x = noise
    b, f = noise.shape[:2]
    last = len(sigmas) - 2 if grad_step is None else grad_step
    for index in range(last + 1):
        s, s_next = float(sigmas[index]), float(sigmas[index + 1])
        sigma = torch.full((b, f), s)
        with torch.set_grad_enabled(grad_step is not None and index == grad_step and torch.is_grad_enabled()):
            if index == 0 and pending is not None:
                clean, clean_tracking = pending
                p = clean.shape[1]
                velocity, cache = model.step(torch.cat([clean, x], 1), torch.cat([torch.zeros(b, p), sigma], 1),
                                             clean_tracking.then(tracking), cache, pending=p)
            else:
                velocity, _ = model.step(x, sigma, tracking, cache)
            x0 = fm.predict_x0(x, velocity, sigma)
        if index < last:
            x = fm.euler_step(x, velocity, s, s_next).detach()
    return x0, cache


def generate_chunk(model: VideoDiT, cache: KVCache, tracking: Tracking, sigmas: torch.Tensor, noise: torch.Tensor,
                   grad_step: int | None = None) -> tuple[torch.Tensor, KVCache]:
    """Denoises one chunk (B, f, C, h, w) from ``noise`` along ``sigmas`` (steps + 1, from 1 to 0)
    attending to ``cache``; returns the clean latents and the cache with them appended.

    ``grad_step`` (Self-Forcing): stop at that step index, keeping its graph, and return its x0
    prediction as the chunk's output; every other forward runs without gradient, the cache
    write included (on the detached output)."""
    x0, cache = _denoise(model, cache, tracking, sigmas, noise, grad_step)
    with torch.no_grad():
        _, cache = model.step(x0.detach(), torch.zeros(x0.shape[:2]), tracking, cache)
    return x0, cache


def stream_chunk(model: VideoDiT, cache: KVCache, pending: tuple[torch.Tensor, Tracking] | None, tracking: Tracking,
                 sigmas: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, KVCache]:
    """:func:`generate_chunk` for streaming, one forward fewer: the previous chunk's clean output
    ``pending`` (latents (B, p, C, h, w) and their tracking) is written to the cache in the same
    forward as this chunk's first denoising step (:meth:`VideoDiT.step` with ``pending``), which
    gives the same result as writing it first. Returns this chunk's clean latents (the caller's next
    ``pending``) and the cache with ``pending`` written: ``steps`` forwards per chunk, not ``steps + 1``."""
    return _denoise(model, cache, tracking, sigmas, noise, pending=pending)


def write_anchor(model: VideoDiT, latents: torch.Tensor, tracking: Tracking) -> KVCache:
    """The cache of the anchor frame(s) (B, a, C, h, w), clean, as the stream's first entries."""
    with torch.no_grad():
        _, cache = model.step(latents, torch.zeros(latents.shape[:2]), tracking, None)
    return cache


class WorldModelStream:
    """Frames from tracking, chunk by chunk, with the student (see the module docstring).

    ``reset(anchor_image, anchor_tracking)`` starts a stream from one observed frame (H, W, 3)
    uint8 and the tracking at that frame (its head pose becomes the reference of the ray
    maps); ``step(tracking_frames)`` takes ``chunk_frames`` tracking frames (one per model
    frame, a list of ``TrackingFrame`` or a batch-1 :class:`Tracking`) and returns that many
    frames (f, H, W, 3) uint8. ``noise_scale`` in [0, 1] multiplies each chunk's starting noise
    (see the module docstring for why the default is 0).
    """

    def __init__(self, student: VideoDiT, codec: FrameCodec, steps: int = 1, shift: float = 3.0, seed: int = 0,
                 noise_scale: float = 0.0) -> None:
        if not 0.0 <= noise_scale <= 1.0:
            raise ValueError(f"noise_scale {noise_scale!r} must be in [0, 1] (1 = trained noise, 0 = deterministic)")
        if not student.config.causal:
            raise ValueError("WorldModelStream needs a chunk-causal (causal=True) student")
        if codec.config.latent_channels != student.config.latent_channels:
            raise ValueError(f"codec latent_channels {codec.config.latent_channels} != student latent_channels "
                             f"{student.config.latent_channels}")
        self.student, self.codec = student.eval(), codec.eval()
        self.sigmas = fm.euler_sigmas(steps, shift)
        self.noise_scale = noise_scale
        self.generator = torch.Generator().manual_seed(seed)
        self.cache: KVCache | None = None
        self.pending: tuple[torch.Tensor, Tracking] | None = None
        self.reference: torch.Tensor | None = None
        self.anchor_image: torch.Tensor | None = None
        self.frames_generated = 0

    @property
    def chunk_frames(self) -> int:
        return self.student.config.chunk_frames

    def _tracking(self, frames: list[TrackingFrame] | Tracking) -> tuple[Tracking, torch.Tensor]:
        """The frames' tracking against the stream's reference, with the prior attached, and the prior's pixels."""
        if isinstance(frames, Tracking):
            tracking = Tracking(frames.head_pose, frames.hand_positions, frames.joint_valid, self.reference)
        else:
            tracking = tracking_from_messages(list(frames), self.reference)
        return attach_prior(self.codec, self.anchor_image, tracking, self.student.config.conditioning)

    @torch.no_grad()
    def reset(self, anchor_image: np.ndarray, anchor_tracking: TrackingFrame | Tracking) -> None:
        """Starts over from ``anchor_image`` (H, W, 3) uint8 seen at ``anchor_tracking`` (one frame)."""
        if isinstance(anchor_tracking, Tracking):
            self.reference = anchor_tracking.head_pose[:, 0].clone()
            anchor_tracking = anchor_tracking.frames(0, 1)
        else:
            head = anchor_tracking.head
            self.reference = torch.tensor([[*head.position, *head.orientation]], dtype=torch.float32)
            anchor_tracking = [anchor_tracking]
        self.anchor_image = torch.from_numpy(np.array(anchor_image, dtype=np.float32)).permute(2, 0, 1)[None] / 255.0
        tracking, _ = self._tracking(anchor_tracking)
        latents = self.codec.encode(self.anchor_image)[:, None]
        self.cache = write_anchor(self.student, latents, tracking)
        self.pending = None
        self.frames_generated = 0

    @torch.no_grad()
    def step(self, tracking_frames: list[TrackingFrame] | Tracking) -> np.ndarray:
        """Generates the next chunk: (f, H, W, 3) uint8, f = number of tracking frames given."""
        if self.cache is None:
            raise RuntimeError("call reset(anchor_image, anchor_tracking) before step()")
        tracking, prior_pixels = self._tracking(tracking_frames)
        c = self.student.config
        f = tracking.head_pose.shape[1]
        shape = (1, f, c.latent_channels, c.latent_size, c.latent_size)
        noise = torch.randn(shape, generator=self.generator) * self.noise_scale
        x0, self.cache = stream_chunk(self.student, self.cache, self.pending, tracking, self.sigmas, noise)
        self.pending = (x0, tracking)
        self.frames_generated += f
        images = frames_from(self.codec, x0, prior_pixels)[0]
        return (images.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).numpy()
