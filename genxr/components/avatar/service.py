"""The avatar in the session: its service, and the conversation's audio on the session clock.

:class:`AvatarService` answers the bus's :class:`~genxr.platform.messages.AvatarRequest`
with :class:`~genxr.platform.messages.AvatarMotion` from a streaming
:class:`~genxr.components.avatar.stream.AvatarStream` (one per service instance = one per
session), loaded from the avatar's shipped checkpoint. The stream's frame 0 is the
session's start on the genxr clock; each request advances it by one chunk (``stride``
frames at 30 fps), so the loop asks at ``30 / stride`` Hz (:attr:`AvatarService.rate_hz`).

:class:`ConversationAudio` is the session's script when no microphone is attached: the
conversation simulator's user and agent speech tracks, handed out as
:class:`~genxr.platform.messages.AudioChunk`s for any span of session time, so both
speakers reach the avatar in chunks on the same clock as the tracking.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genxr.platform.messages import AudioChunk, AvatarMotion, AvatarRequest
from genxr.platform.units import NS_PER_S

GENERATORS = ("generator", "generator_no_user")
"""The avatar checkpoint's streaming generators: the main one, and the spatial ablation trained without
the user's position (``session.avatar_spatial = false``: it does not turn to or look at the user)."""


def check_generator(generator: str) -> str:
    """``generator`` if it is one of :data:`GENERATORS`, else ValueError naming it."""
    if generator not in GENERATORS:
        raise ValueError(f"avatar generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    return generator


class AvatarUnavailableError(RuntimeError):
    """No usable avatar checkpoint (missing, or refused by its loader); the message says why and what to do."""


class AvatarService:
    """Callable avatar service of one session (see module docstring)."""

    def __init__(self, start_time_ns: int, checkpoint: Path | None = None, seed: int = 0,
                 guidance_scale: float = 1.0, generator: str = "generator") -> None:
        from genxr.components.avatar.checkpoint import CheckpointError, load_checkpoint, shipped_checkpoint
        from genxr.components.avatar.stream import AvatarStream

        directory = Path(checkpoint) if checkpoint is not None else shipped_checkpoint()
        if not (directory / "config.json").is_file():
            raise AvatarUnavailableError(f"no avatar checkpoint at {directory}: train one with "
                                         "`genxr train avatar --preset cpu`")
        try:
            models, _ = load_checkpoint(directory)
        except CheckpointError as err:
            raise AvatarUnavailableError(str(err)) from err
        self.generator, self.guidance_scale = check_generator(generator), float(guidance_scale)
        self.model_base = "avatar-stream" if generator == "generator" else "avatar-stream-no-user"
        self.stream = AvatarStream(models["vae"], models[generator])
        self.stream.reset(start_time_ns=start_time_ns, seed=seed, guidance_scale=guidance_scale)
        self.rate_hz = 30.0 / self.stream.stride

    def __call__(self, request: AvatarRequest) -> AvatarMotion:
        from genxr.components.avatar.stream import serve_request

        return serve_request(self.stream, request)


class ConversationAudio:
    """Both speakers' speech of a simulated conversation, addressed by session time (ns)."""

    def __init__(self, start_time_ns: int, seed: int = 0, seconds: float = 60.0) -> None:
        from genxr.components.sim.conversation.audio import SAMPLE_RATE_HZ
        from genxr.components.sim.conversation.dataset import simulate_conversation

        conversation = simulate_conversation(seed, 0, seconds)
        self.start_time_ns = start_time_ns
        self.sample_rate_hz = SAMPLE_RATE_HZ
        self.tracks = {"user": conversation.user_audio, "agent": conversation.agent_audio}

    def chunks(self, start_ns: int, end_ns: int) -> list[AudioChunk]:
        """Both speakers' samples in [start_ns, end_ns) (the script loops); empty if the span is empty."""
        first = max(0, round((start_ns - self.start_time_ns) * self.sample_rate_hz / NS_PER_S))
        last = max(0, round((end_ns - self.start_time_ns) * self.sample_rate_hz / NS_PER_S))
        if last <= first:
            return []
        out = []
        for speaker, track in self.tracks.items():
            indices = np.arange(first, last) % track.shape[0]
            out.append(AudioChunk(speaker=speaker, sample_rate_hz=self.sample_rate_hz,
                                  start_time_ns=self.start_time_ns + round(first * NS_PER_S / self.sample_rate_hz),
                                  samples=np.clip(track[indices], -1.0, 1.0).astype(np.float32)))
        return out
