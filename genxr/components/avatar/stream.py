"""Streaming avatar: ``AvatarStream.reset(...)`` then ``.step(user_pose, audio_chunks)``
returns the next chunk of ``stride`` motion frames (4 frames = 133 ms at 30 fps).

State is bounded for arbitrarily long sessions: KV caches of plain tensors trimmed to
the transformers' windows, the last user position, and per-speaker audio kept only for
the frames not yet consumed (at most :data:`AUDIO_HORIZON_S`).

The stream follows the clock it is given: :meth:`AvatarStream.follow` (called by
:func:`serve_request` with each request's time) skips the frames the session clock has left
more than a chunk behind - a request cadence slower than the chunk rate, or a stream started
long before its first request - so the stream never falls behind its audio for good.

Each step: features of the chunk's frames (both speakers' audio, the user's head in the
avatar frame interpolated from the previous step's position, a tracked flag), then
``euler_steps`` Euler steps of the latent generator on one token with classifier-free
guidance on the gaze score (conditional and unconditional rows in one batch of 2; the
first step also writes the previous chunk's clean token to the cache at s = 0), one
VAE-decoder step, and the :class:`SeamFilter` over the decoded frames (on by default).

:class:`WindowBaseline` is the non-causal comparison of the same size: at each step it
regenerates the whole window of latents from noise with bidirectional attention and
decodes the whole window without a cache, then returns its last chunk.

Frames: inputs are in the session's reference space (OpenXR) and converted through the
stream's :class:`AgentPlacement`; :class:`MotionChunk` is in the avatar frame;
:func:`to_avatar_motion` converts it to an :class:`AvatarMotion` in the reference space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import resample_poly

from genxr.components import flow_matching as fm
from genxr.components.avatar import skeleton as sk
from genxr.components.avatar.features import (
    FPS,
    SAMPLE_RATE_HZ,
    SILENCE_LOG_ENERGY,
    speaker_features,
    split_motion,
    turn_about_stance,
    user_bearing,
    user_features,
)
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.generator import LatentGenerator
from genxr.components.avatar.vae import MotionVAE
from genxr.platform.messages import AudioChunk, AvatarMotion, AvatarRequest, Pose
from genxr.platform.units import NS_PER_S

AUDIO_HORIZON_S = 10.0
DEFAULT_USER_HEAD = np.array([0.0, 1.65, 1.5])
"""Where the user is assumed to be (avatar frame, metres) until tracking first reports them."""
DEFAULT_GUIDANCE_SCALE = 1.0
DEFAULT_GAZE_TARGET: float | None = 0.97
"""The eye-contact dial's default: CFG scale of the gaze score and the score steered toward
(None: the training mean). 0.97 was chosen for the shipped ``cpu`` checkpoint with
``genxr avatar dial-sweep`` on validation conversations (not the held-out ones): it gives
eye-contact statistics closest to the simulated humans' (docs/avatar.md, "Eye-contact default");
the training mean (0.965) gives too little eye contact. A retrained checkpoint needs its own sweep."""


@dataclass(frozen=True)
class MotionChunk:
    """``rotations_6d`` (S, 22, 6) float32 local rotations, ``root_translation`` (S, 3) float32
    metres, both in the avatar frame; frame 0 is at ``start_time_ns``, then 1/30 s apart."""

    rotations_6d: np.ndarray
    root_translation: np.ndarray
    start_time_ns: int


class _AudioTrack:
    """One speaker's 16 kHz samples addressed by absolute sample index; unwritten samples are silence."""

    def __init__(self) -> None:
        self.offset = 0
        self.samples = np.zeros(0, dtype=np.float32)
        self.previous_log_energy = SILENCE_LOG_ENERGY

    def write(self, first_sample: int, samples: np.ndarray) -> None:
        start = max(first_sample, self.offset)
        samples = samples[start - first_sample:]
        end = start + len(samples)
        if end - self.offset > int(AUDIO_HORIZON_S * SAMPLE_RATE_HZ):
            raise ValueError(f"audio reaches {(end - self.offset) / SAMPLE_RATE_HZ:.1f} s ahead of the stream; "
                             f"at most {AUDIO_HORIZON_S} s may be buffered")
        if end - self.offset > len(self.samples):
            self.samples = np.concatenate([self.samples, np.zeros(end - self.offset - len(self.samples), np.float32)])
        self.samples[start - self.offset:end - self.offset] = samples

    def features(self, first_frame: int, frames: int) -> np.ndarray:
        """(frames, 3) features; drops the samples they consumed."""
        first = first_frame * SAMPLE_RATE_HZ // FPS
        last = (first_frame + frames) * SAMPLE_RATE_HZ // FPS
        window = np.zeros(last - first, dtype=np.float32)
        have = self.samples[max(first - self.offset, 0):last - self.offset]
        window[:len(have)] = have
        out, self.previous_log_energy = speaker_features(window, first_frame, frames, self.previous_log_energy)
        self.samples = self.samples[max(last - self.offset, 0):]
        self.offset = last
        return out


def default_dial(guidance_scale: float | None, gaze_target: float | None, gaze_mean: float) -> tuple[float, float]:
    """(guidance scale, gaze target) with the defaults filled in; ``gaze_mean``: the training mean score."""
    if gaze_target is None:
        gaze_target = gaze_mean if DEFAULT_GAZE_TARGET is None else DEFAULT_GAZE_TARGET
    return float(DEFAULT_GUIDANCE_SCALE if guidance_scale is None else guidance_scale), float(gaze_target)


class SeamFilter:
    """Causal moving average over the last ``stride`` decoded frames of the raw motion features
    (135 per frame: 22 local 6D rotations, pelvis translation in metres; in the frame the VAE
    decodes to, e.g. the user-facing frame), carried across chunks (the last ``stride - 1`` input
    frames are kept; started at rest on the first frame).

    Why: the VAE decoder emits each chunk's ``stride`` frames from one latent, and its output
    jumps at chunk boundaries - the same with the encoder's own latents of ground-truth motion
    (measurements: docs/avatar.md, "Jitter: the decoder's chunk seams"). The artefact is
    periodic at the chunk rate ``30 / stride`` Hz (7.5 Hz); a ``stride``-tap box filter has its
    zeros exactly there and at the harmonics, turns a per-chunk step into a linear ramp, keeps
    84 % of a 2.5 Hz nod, and delays motion by ``(stride - 1) / 2`` frames (50 ms at stride 4). Rotations are
    re-orthonormalised afterwards (the 6D columns of nearby frames average to a near-rotation)."""

    def __init__(self, stride: int) -> None:
        self.width = stride
        self.history: np.ndarray | None = None

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (S, 135) float64 -> the filtered (S, 135).

        Hand-written rather than ``scipy.signal.lfilter`` with carried state: over 135 columns that
        runs one convolution per column in Python (``apply_along_axis``), a large share of a
        streaming step (docs/avatar.md, "Speed")."""
        if self.history is None:
            self.history = np.repeat(frames[:1], self.width - 1, axis=0)
        padded = np.concatenate([self.history, frames])
        self.history = padded[len(padded) - (self.width - 1):]
        return sliding_window_view(padded, self.width, axis=0).mean(-1)


class AvatarStream:
    """Causal streaming avatar over a trained ``vae`` and causal ``generator``. ``smooth_seams``:
    run the :class:`SeamFilter` over the decoded frames (default; False gives the raw decoder output)."""

    def __init__(self, vae: MotionVAE, generator: LatentGenerator, euler_steps: int = 4, shift: float = 1.0,
                 smooth_seams: bool = True) -> None:
        if not generator.config.causal:
            raise ValueError("AvatarStream needs a causal generator; use WindowBaseline for the non-causal one")
        self.vae, self.generator = vae.eval(), generator.eval()
        self.stride = vae.config.stride
        self.smooth_seams = smooth_seams
        self.sigmas = fm.euler_sigmas(euler_steps, shift).tolist()
        self.reset()

    def reset(self, start_time_ns: int = 0, seed: int = 0, guidance_scale: float | None = None,
              gaze_target: float | None = None, placement: AgentPlacement | None = None) -> None:
        """Starts a session: frame 0 at ``start_time_ns``. ``gaze_target`` in [0, 1] is the eye-contact
        score to steer toward, ``guidance_scale`` its CFG scale (defaults: :data:`DEFAULT_GAZE_TARGET`,
        :data:`DEFAULT_GUIDANCE_SCALE`)."""
        self.start_time_ns = start_time_ns
        self.placement = placement or AgentPlacement()
        self.guidance_scale, self.gaze_target = default_dial(guidance_scale, gaze_target, self._gaze_mean())
        self.noise = torch.Generator().manual_seed(seed)
        self.frame = 0
        """Frames generated so far (the model's own count: caches and chunk indices follow it)."""
        self.skipped_frames = 0
        """Frames skipped by :meth:`follow` to keep up with the session clock (never generated)."""
        self.audio = {"user": _AudioTrack(), "agent": _AudioTrack()}
        self.user_head: np.ndarray | None = None
        self.seam_filter = SeamFilter(self.stride) if self.smooth_seams else None
        self._reset_state()

    def _gaze_mean(self) -> float:
        """The training mean of the gaze score: the default eye-contact target."""
        return float(self.generator.gaze_mean)

    def _user_facing(self) -> bool:
        """Whether decoded frames are in the user-facing frame and must be turned back by the bearing
        of the user's head. A generator without the user input (the spatial ablation) gets no
        bearing: its frames are kept as decoded, i.e. facing where the user was assumed to be."""
        return self.vae.config.root_heading == "user" and self.generator.config.use_user_position

    def _reset_state(self) -> None:
        """The model's streaming state, empty: KV caches and the pending clean latent (subclasses
        that run the step elsewhere keep theirs in another form)."""
        self.generator_cache = None
        self.pending: tuple[torch.Tensor, torch.Tensor] | None = None
        self.decoder_cache = None

    def _write_audio(self, chunks: Sequence[AudioChunk]) -> None:
        for chunk in chunks:
            samples = np.asarray(chunk.samples, dtype=np.float32)
            if samples.ndim != 1:
                raise ValueError(f"audio chunk of {chunk.speaker} must be mono (n,), got shape {samples.shape}")
            if chunk.sample_rate_hz != SAMPLE_RATE_HZ:
                gcd = np.gcd(chunk.sample_rate_hz, SAMPLE_RATE_HZ)
                samples = resample_poly(samples, SAMPLE_RATE_HZ // gcd, chunk.sample_rate_hz // gcd).astype(np.float32)
            first = round((chunk.start_time_ns - self.start_time_ns) * SAMPLE_RATE_HZ / NS_PER_S)
            self.audio[chunk.speaker].write(first, samples)

    def _user_rows(self, user_pose: Pose | np.ndarray | None) -> np.ndarray:
        """(S, 9) user features for this chunk from a pose (or a (3,) reference-space position)."""
        position = None
        if user_pose is not None:
            raw = np.asarray(user_pose.position if isinstance(user_pose, Pose) else user_pose, dtype=np.float64)
            if raw.shape != (3,):
                raise ValueError(f"user position must have shape (3,), got {raw.shape}")
            position = self.placement.to_avatar(raw) if np.isfinite(raw).all() else None
        previous = DEFAULT_USER_HEAD if self.user_head is None else self.user_head
        tracked = position is not None
        current = position if tracked else previous
        if self.user_head is None:
            previous = current
        fractions = np.arange(1, self.stride + 1)[:, None] / self.stride
        path = np.concatenate([[previous], previous + (current - previous) * fractions])
        rows = user_features(path, np.full(self.stride + 1, tracked))[1:]
        self.user_head = current
        self.chunk_bearing = user_bearing(rows)
        return rows

    def _frame_features(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk]
                        ) -> tuple[np.ndarray, np.ndarray]:
        """This chunk's per-frame features: audio (S, 6) of both speakers and user (S, 9)."""
        self._write_audio(audio_chunks)
        audio = np.concatenate([self.audio[s].features(self.clock_frame, self.stride) for s in ("user", "agent")],
                               axis=1)
        return audio, self._user_rows(user_pose)

    def _conditions(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk]) -> torch.Tensor:
        """(2, 1, width) condition rows: gaze score kept, then dropped."""
        audio, user = self._frame_features(user_pose, audio_chunks)
        audio_t = torch.from_numpy(audio)[None].expand(2, -1, -1)
        user_t = torch.from_numpy(user)[None].expand(2, -1, -1)
        gaze = torch.full((2, 1), self.gaze_target)
        return self.generator.condition(audio_t, user_t, gaze, torch.tensor([True, False]))

    def _latent(self, condition: torch.Tensor) -> torch.Tensor:
        """One chunk's latent (1, 1, D). The previous chunk's clean latent is written to the cache in
        the same pass as this chunk's first Euler step (two new tokens, causal between them; the
        noisy one is dropped from the cache afterwards): one pass fewer per chunk, same attention
        pattern as training."""
        x = torch.randn((1, 1, self.generator.config.latent_dim), generator=self.noise)
        for index, (s, s_next) in enumerate(zip(self.sigmas[:-1], self.sigmas[1:])):
            if index == 0 and self.pending is not None:
                velocity, cache = self.generator.step_with_clean(self.pending[0], self.pending[1], x.expand(2, -1, -1), s,
                                                                 condition, self.generator_cache)
                self.generator_cache = cache
            else:
                velocity, _ = self.generator.step(x.expand(2, -1, -1), s, condition, self.generator_cache)
            x = fm.euler_step(x, fm.guided_velocity(velocity[1:], velocity[:1], self.guidance_scale), s, s_next)
        self.pending = (x.expand(2, -1, -1), condition)
        return x * self.generator.latent_std + self.generator.latent_mean

    def _chunk(self, features: torch.Tensor) -> MotionChunk:
        """Decoded raw features (S, 135) -> the chunk: seam-filtered (in the model's frame), turned from
        the user-facing frame to the avatar frame by each frame's bearing of the user, rotations
        re-orthonormalised."""
        frames = features.numpy().astype(np.float64)
        if self.seam_filter is not None:
            frames = self.seam_filter(frames)
        if self._user_facing():
            frames = turn_about_stance(frames, self.chunk_bearing)
        rotations, root = split_motion(frames)
        chunk = MotionChunk(sk.orthonormalize_6d(rotations).astype(np.float32),
                            root.astype(np.float32), self.start_time_ns + round(self.clock_frame * NS_PER_S / FPS))
        self.frame += self.stride
        return chunk

    @property
    def clock_frame(self) -> int:
        """Index on the session clock (30 fps from ``start_time_ns``) of the next chunk's first frame."""
        return self.frame + self.skipped_frames

    def follow(self, time_ns: int) -> int:
        """Catches up with the session clock at ``time_ns``; returns the frames skipped.

        The next chunk should be the last whole chunk before ``time_ns`` (its audio has arrived
        by then). When the stream is more than one chunk behind that, it jumps there: the
        skipped frames are never generated, their audio is dropped, and the model's caches
        carry the motion on. Ahead of the clock, or within one chunk, nothing changes.
        """
        newest_whole_chunk = (time_ns - self.start_time_ns) * FPS // NS_PER_S - self.stride
        behind = newest_whole_chunk - self.clock_frame
        if behind <= self.stride:
            return 0
        self.skipped_frames += behind
        return behind

    @torch.inference_mode()
    def step(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk] = ()) -> MotionChunk:
        """The next ``stride`` frames. ``user_pose``: the user's head in the reference space, or None /
        a NaN position while tracking is lost (the last position is held and flagged untracked).
        ``audio_chunks`` may cover any time span from the stream start on; other sample rates are
        resampled to 16 kHz, and frames without audio count as silence."""
        condition = self._conditions(user_pose, audio_chunks)
        frames, self.decoder_cache = self.vae.decode_step(self._latent(condition), self.decoder_cache)
        return self._chunk(frames[0])


class WindowBaseline(AvatarStream):
    """Non-causal baseline: regenerates the generator's whole window each step (no caches)."""

    def __init__(self, vae: MotionVAE, generator: LatentGenerator, euler_steps: int = 4, shift: float = 1.0,
                 smooth_seams: bool = True) -> None:
        if generator.config.causal:
            raise ValueError("WindowBaseline needs a non-causal generator")
        self.vae, self.generator = vae.eval(), generator.eval()
        self.stride = vae.config.stride
        self.smooth_seams = smooth_seams
        self.sigmas = fm.euler_sigmas(euler_steps, shift).tolist()
        self.window = generator.config.transformer.window
        self.reset()

    def _reset_state(self) -> None:
        self.conditions: list[torch.Tensor] = []

    @torch.inference_mode()
    def step(self, user_pose: Pose | np.ndarray | None, audio_chunks: Sequence[AudioChunk] = ()) -> MotionChunk:
        self.conditions = (self.conditions + [self._conditions(user_pose, audio_chunks)])[-self.window:]
        condition = torch.cat(self.conditions, 1)
        x = torch.randn((1, condition.shape[1], self.generator.config.latent_dim), generator=self.noise)
        for s, s_next in zip(self.sigmas[:-1], self.sigmas[1:]):
            velocity = self.generator.window_velocity(x.expand(2, -1, -1), s, condition)
            x = fm.euler_step(x, fm.guided_velocity(velocity[1:], velocity[:1], self.guidance_scale), s, s_next)
        latents = x * self.generator.latent_std + self.generator.latent_mean
        frames = self.vae.decode(latents)
        return self._chunk(frames[0, -self.stride:])


def to_avatar_motion(chunk: MotionChunk, placement: AgentPlacement, session_id: str, request_id: int) -> AvatarMotion:
    """The chunk as an :class:`AvatarMotion` in the reference space (root rotation and translation converted)."""
    rotations = sk.rot6d_to_matrix(chunk.rotations_6d.astype(np.float64))
    rotations[:, 0] = placement.root_rotation_to_reference(rotations[:, 0])
    return AvatarMotion(session_id=session_id, request_id=request_id, start_time_ns=chunk.start_time_ns, fps=FPS,
                        rotations_6d=sk.matrix_to_rot6d(rotations).astype(np.float32),
                        root_translation=placement.to_reference(chunk.root_translation).astype(np.float32))


def serve_request(stream: AvatarStream, request: AvatarRequest) -> AvatarMotion:
    """One bus request -> one step of ``stream`` (one stream per session; the caller keeps it),
    first caught up with the request's time (:meth:`AvatarStream.follow`).
    ``request.eye_contact`` sets the guidance scale of the gaze score when given."""
    if request.eye_contact is not None:
        stream.guidance_scale = request.eye_contact
    stream.follow(request.time_ns)
    audio = [chunk for chunk in (request.user_audio, request.agent_audio) if chunk is not None]
    chunk = stream.step(request.user_head, audio)
    return to_avatar_motion(chunk, stream.placement, request.session_id, request.request_id)
