"""Video diffusion transformer over latent clips: the teacher (bidirectional) and the student
(chunk-causal, streaming with a KV cache) are this one model family.

Tokens: a frame's latents (C, h, w) - with the reprojected anchor's latents
(``tracking.prior``, :mod:`.reprojection`) and the encoded hand skeleton concatenated on
channels - are cut into ``patch`` x ``patch`` squares, N = (h / patch)^2 tokens per frame;
a clip is (B, F, N, width). Each frame has its own flow-matching noise level ``sigma``
(B, F) in [0, 1] (0 = clean context, 1 = pure noise), embedded with diffusers'
``Timesteps`` + ``TimestepEmbedding`` and applied by adaLN-zero modulation per frame.
(diffusers' ``AdaLayerNormZero`` modulates a whole sequence with one embedding, so the
per-frame modulation is written here.) Position: a learned spatial embedding per token
and rotary embeddings over the frame index (diffusers' ``get_1d_rotary_pos_embed`` /
``apply_rotary_emb``) on queries and keys. Feed-forward: diffusers' ``FeedForward``.

Attention: ``causal=False`` lets every token see the whole clip (teacher). ``causal=True``
groups frames into chunks - the first ``context_frames`` frames are chunk 0, then every
``chunk_frames`` frames - and a token sees its own chunk and earlier ones (student).

Streaming (:meth:`VideoDiT.step`): a :class:`KVCache` holds, per layer, the keys (before the
rotary embedding) and values of earlier frames as plain tensors (B, heads, L, head_dim). A
step rotates the cached keys by their slot order (frame 0 ... frame L/N - 1) and the
chunk's keys by the following frame positions, so positions never grow past
``sink_frames + window_frames + chunk_frames`` however long the session runs; the cache
keeps the first ``sink_frames`` frames and the newest ``window_frames`` frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.models.attention import FeedForward
from diffusers.models.embeddings import (
    TimestepEmbedding,
    Timesteps,
    apply_rotary_emb,
    get_1d_rotary_pos_embed,
)
from pydantic import ConfigDict, NonNegativeInt, PositiveInt
from pydantic.dataclasses import dataclass as pydantic_dataclass
from torch import nn
from torch.nn import functional as F

from genxr.components.worldmodel.conditioning import (
    ConditionEncoder,
    ConditioningConfig,
    Tracking,
)


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class VideoDiTConfig:
    """Sizes, attention pattern and cache policy (frames are model frames, see :mod:`.data`); validated,
    also the sizes no weight shape shows (heads, frame counts), so a checkpoint that loads can run."""

    latent_channels: PositiveInt = 16
    latent_size: PositiveInt = 8
    patch: PositiveInt = 2
    width: PositiveInt = 128
    depth: PositiveInt = 4
    heads: PositiveInt = 4
    causal: bool = False
    context_frames: NonNegativeInt = 1
    chunk_frames: PositiveInt = 2
    sink_frames: NonNegativeInt = 1
    window_frames: NonNegativeInt = 6
    conditioning: ConditioningConfig = field(default_factory=ConditioningConfig)

    def __post_init__(self) -> None:
        if self.latent_size % self.patch:
            raise ValueError(f"latent_size {self.latent_size} must be a multiple of patch {self.patch}")
        if self.width % self.heads or (self.width // self.heads) % 2:
            raise ValueError(f"width {self.width} must be heads {self.heads} times an even head size (rotary)")
        resolution, size = self.conditioning.skeleton_resolution, self.latent_size
        if self.conditioning.use_skeleton and (resolution % size or (resolution // size) & (resolution // size - 1)):
            raise ValueError(f"conditioning.skeleton_resolution {resolution} must be latent_size {size} "
                             "times a power of two")

    @property
    def tokens_per_frame(self) -> int:
        return (self.latent_size // self.patch) ** 2


DIT_PRESETS: dict[str, VideoDiTConfig] = {
    "tiny": VideoDiTConfig(latent_channels=8, width=32, depth=2, heads=2,
                           conditioning=ConditioningConfig(rays_per_token=2, skeleton_channels=4)),
    "cpu": VideoDiTConfig(),
    "gpu": VideoDiTConfig(latent_channels=32, width=384, depth=12, heads=6, patch=1),
}


@dataclass
class KVCache:
    """Per-layer keys (un-rotated) and values (B, heads, L, head_dim) of ``frames`` cached frames."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    frames: int

    def trimmed(self, sink: int, window: int, tokens_per_frame: int) -> KVCache:
        """The first ``sink`` and the last ``window`` frames (no copy when within budget)."""
        if self.frames <= sink + window:
            return self
        head, tail = sink * tokens_per_frame, window * tokens_per_frame

        def trim(t: torch.Tensor) -> torch.Tensor:
            return torch.cat([t[:, :, :head], t[:, :, t.shape[2] - tail:]], 2)  # not -tail: -0 keeps all

        return KVCache([trim(k) for k in self.keys], [trim(v) for v in self.values], sink + window)


def rotary(frame_positions: torch.Tensor, tokens_per_frame: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) each (S, head_dim) for tokens of the given frame positions (N tokens per frame)."""
    positions = frame_positions.repeat_interleave(tokens_per_frame).float()
    return get_1d_rotary_pos_embed(head_dim, positions, use_real=True, repeat_interleave_real=True)


def chunk_ids(frames: int, context_frames: int, chunk_frames: int) -> torch.Tensor:
    """(frames,) chunk index of each frame: context frames are chunk 0, then ``chunk_frames`` per chunk."""
    index = torch.arange(frames)
    return torch.where(index < context_frames, 0, 1 + (index - context_frames) // chunk_frames)


class Block(nn.Module):
    """adaLN-zero (per frame) -> attention with frame RoPE -> adaLN-zero -> feed-forward."""

    def __init__(self, config: VideoDiTConfig) -> None:
        super().__init__()
        self.heads = config.heads
        self.norm1 = nn.LayerNorm(config.width, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(config.width, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(config.width, 3 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.ff = FeedForward(config.width, mult=4, activation_fn="gelu-approximate")
        self.modulation = nn.Linear(config.width, 6 * config.width)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, rope_q: tuple, rope_k: tuple, mask: torch.Tensor | None,
                past: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x`` (B, F, N, width), ``emb`` (B, F, width); attends to ``past`` (un-rotated keys, values) then
        to itself. Returns the output and this call's un-rotated keys and values (B, heads, F * N, head_dim)."""
        b, f, n, width = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(emb))[:, :, None].chunk(6, -1)
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.qkv(h).view(b, f * n, 3, self.heads, width // self.heads).permute(2, 0, 3, 1, 4)
        keys, values = (k, v) if past is None else (torch.cat([past[0], k], 2), torch.cat([past[1], v], 2))
        attended = F.scaled_dot_product_attention(apply_rotary_emb(q, rope_q), apply_rotary_emb(keys, rope_k), values,
                                                  attn_mask=mask)
        x = x + gate1 * self.out(attended.transpose(1, 2).reshape(b, f, n, width))
        x = x + gate2 * self.ff(self.norm2(x) * (1 + scale2) + shift2)
        return x, k, v


class VideoDiT(nn.Module):
    """Predicts the flow-matching velocity (B, F, C, h, w) of noisy latents under the conditioning."""

    def __init__(self, config: VideoDiTConfig) -> None:
        super().__init__()
        if config.latent_size % config.patch or config.width % config.heads:
            raise ValueError("latent_size must be divisible by patch and width by heads")
        self.config = config
        grid = config.latent_size // config.patch
        self.condition = ConditionEncoder(config.conditioning, config.width, grid, config.latent_size)
        prior = config.latent_channels if config.conditioning.reprojection else 0
        token_in = (config.latent_channels + prior + self.condition.extra_channels) * config.patch ** 2
        self.embed = nn.Linear(token_in, config.width)
        self.position = nn.Parameter(torch.randn(grid * grid, config.width) * 0.02)
        self.time_proj = Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embed = TimestepEmbedding(256, config.width)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.depth))
        self.norm_out = nn.LayerNorm(config.width, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Linear(config.width, 2 * config.width)
        self.unembed = nn.Linear(config.width, config.latent_channels * config.patch ** 2)
        for layer in (self.modulation_out, self.unembed):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _tokens(self, latents: torch.Tensor, sigma: torch.Tensor, tracking: Tracking) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        parts = [latents]
        if c.conditioning.reprojection:
            if tracking.prior is None or tracking.prior.shape != latents.shape:
                got = None if tracking.prior is None else tuple(tracking.prior.shape)
                raise ValueError(f"tracking.prior {got} must be the reprojected anchor's latents, shaped like the "
                                 f"latents {tuple(latents.shape)} (see reprojection.attach_prior)")
            parts.append(tracking.prior)
        skeleton = self.condition.skeleton_latents(tracking)
        if skeleton is not None:
            parts.append(skeleton)
        x = torch.cat(parts, 2) if len(parts) > 1 else latents
        b, f, ch, h, w = x.shape
        p = c.patch
        x = x.reshape(b, f, ch, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6).reshape(b, f, -1, ch * p * p)
        x = self.embed(x) + self.position
        bias = self.condition.token_bias(tracking)
        if bias is not None:
            x = x + bias
        emb = self.time_embed(self.time_proj(sigma.reshape(-1) * 1000.0).to(x.dtype)).reshape(b, f, -1)
        return x, emb

    def _output(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        c = self.config
        shift, scale = self.modulation_out(F.silu(emb))[:, :, None].chunk(2, -1)
        x = self.unembed(self.norm_out(x) * (1 + scale) + shift)
        b, f = x.shape[:2]
        g, p = c.latent_size // c.patch, c.patch
        x = x.reshape(b, f, g, g, c.latent_channels, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(b, f, c.latent_channels, c.latent_size, c.latent_size)

    def attention_mask(self, frames: int) -> torch.Tensor | None:
        """(F * N, F * N) boolean mask (True = may attend): None (all) unless causal."""
        if not self.config.causal:
            return None
        chunk = chunk_ids(frames, self.config.context_frames, self.config.chunk_frames)
        allowed = chunk[:, None] >= chunk[None, :]
        n = self.config.tokens_per_frame
        return allowed.repeat_interleave(n, 0).repeat_interleave(n, 1)

    def forward(self, latents: torch.Tensor, sigma: torch.Tensor, tracking: Tracking) -> torch.Tensor:
        """Whole clip: ``latents`` (B, F, C, h, w), ``sigma`` (B, F), ``tracking`` of F frames -> velocity."""
        x, emb = self._tokens(latents, sigma, tracking)
        frames = latents.shape[1]
        rope = rotary(torch.arange(frames), self.config.tokens_per_frame, self.config.width // self.config.heads)
        mask = self.attention_mask(frames)
        for block in self.blocks:
            x, _, _ = block(x, emb, rope, rope, mask)
        return self._output(x, emb)

    def step(self, latents: torch.Tensor, sigma: torch.Tensor, tracking: Tracking, cache: KVCache | None,
             pending: int = 0) -> tuple[torch.Tensor, KVCache]:
        """Streaming: one chunk ``latents`` (B, f, C, h, w) at ``sigma`` (B, f) attends to ``cache`` and
        bidirectionally to itself. Returns the velocity and the cache with this chunk appended, trimmed
        to the sink + window frames (pass the old cache again to discard the append).

        ``pending`` > 0 fuses two calls into one forward: the first ``pending`` frames are the previous
        chunk's clean output (sigma 0) to be written to the cache, the rest the next chunk's first
        denoising step. The result equals ``step`` on the clean frames followed by ``step`` of the rest
        against the cache that returned (checked by a test): the clean frames see the cache as it was,
        the new frames see it as the trimmed one would be - the oldest window frames masked out and the
        sink attended through a copy rotated to the position it would hold. Returns the velocity of the
        new frames only and the cache with only the clean frames appended."""
        c = self.config
        n = c.tokens_per_frame
        head_dim = c.width // c.heads
        x, emb = self._tokens(latents, sigma, tracking)
        cached = 0 if cache is None else cache.frames
        f = latents.shape[1]
        if not 0 <= pending < f:
            raise ValueError(f"pending {pending} must be in [0, {f}) frames of the {f} given")
        grown = cached + pending
        dropped = grown - min(grown, c.sink_frames + c.window_frames) if pending else 0
        sink = c.sink_frames if dropped else 0  # frames of the sink copy the new frames attend to instead
        key_positions = torch.cat([torch.arange(dropped, dropped + sink), torch.arange(cached + f)])
        rope_q = rotary(torch.arange(cached, cached + f), n, head_dim)
        rope_k = rotary(key_positions, n, head_dim)
        mask = None
        if pending:  # built in numpy: a constant of the exported graph (ONNX Runtime has no boolean Where)
            frame_of_key = np.concatenate([np.full(sink, -1), np.arange(cached + f)])  # -1: the sink copy
            clean_sees = (frame_of_key >= 0) & (frame_of_key < grown)
            new_sees = ~((frame_of_key >= 0) & (frame_of_key < c.sink_frames + dropped)) if dropped else \
                np.ones_like(clean_sees)
            sees = np.where((np.arange(f) >= pending)[:, None], new_sees[None, :], clean_sees[None, :])
            mask = torch.from_numpy(np.repeat(np.repeat(sees, n, 0), n, 1))
        keys, values = [], []
        for index, block in enumerate(self.blocks):
            past = None if cache is None else (cache.keys[index], cache.values[index])
            attended = past
            if past is not None and sink:
                attended = tuple(torch.cat([t[:, :, : sink * n], t], 2) for t in past)
            x, k, v = block(x, emb, rope_q, rope_k, mask, attended)
            if pending:
                k, v = k[:, :, : pending * n], v[:, :, : pending * n]
            keys.append(k if past is None else torch.cat([past[0], k], 2))
            values.append(v if past is None else torch.cat([past[1], v], 2))
        grown_cache = KVCache(keys, values, cached + (pending or f))
        return (self._output(x[:, pending:], emb[:, pending:]),
                grown_cache.trimmed(c.sink_frames, c.window_frames, c.tokens_per_frame))
