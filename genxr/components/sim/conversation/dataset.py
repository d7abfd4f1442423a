"""Whole conversations and the on-disk data set (``genxr avatar dataset``).

A data set directory holds safetensors shards of up to ``shard_size`` conversations,
tensor names ``"<index:05d>/<field>"``, and ``manifest.json`` (format, seed, seconds,
sample rate, fps, shard files with their sha256 and conversation indices). Every file is
written to a temporary name and renamed into place; the manifest is written last, so a
directory with a manifest is complete. Conversation ``i`` of seed ``s`` is simulated from
``numpy.random.SeedSequence([s, i])`` and does not depend on the other conversations.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save

from genxr.components.avatar import skeleton as sk
from genxr.components.sim.conversation.agent import simulate_agent
from genxr.components.sim.conversation.audio import SAMPLE_RATE_HZ, synthesize_speech
from genxr.components.sim.conversation.turns import simulate_turns
from genxr.components.sim.conversation.user import FPS, simulate_user

FORMAT = "genxr-conversations-v1"


@dataclass(frozen=True)
class Conversation:
    """One simulated dyadic conversation, avatar frame, ``T`` frames at :data:`FPS`.

    ``rotations_6d`` (T, 22, 6) float32 agent local rotations; ``root_translation`` (T, 3)
    float32 metres (agent pelvis); ``user_head`` (T, 3) float32 metres; ``user_walking``,
    ``user_speaking``, ``agent_speaking``, ``agent_eye_contact`` (T,) bool;
    ``user_audio``, ``agent_audio`` (S,) float32 at :data:`SAMPLE_RATE_HZ`;
    ``agent_syllables`` (m,) float64 seconds: onsets of the agent's syllables.
    """

    rotations_6d: np.ndarray
    root_translation: np.ndarray
    user_head: np.ndarray
    user_walking: np.ndarray
    user_speaking: np.ndarray
    agent_speaking: np.ndarray
    agent_eye_contact: np.ndarray
    user_audio: np.ndarray
    agent_audio: np.ndarray
    agent_syllables: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.rotations_6d.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        """Field name -> array (bools as uint8) for serialisation."""
        return {name: (value.astype(np.uint8) if value.dtype == bool else value)
                for name, value in self.__dict__.items()}


def simulate_conversation(seed: int, index: int, seconds: float) -> Conversation:
    """Conversation ``index`` of data set ``seed``, ``seconds`` long (whole frames at 30 fps)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence([seed, index]).spawn(5)]
    frames = round(seconds * FPS)
    duration = frames / FPS
    tracks = simulate_turns(streams[0], duration)
    user_head, walking = simulate_user(streams[1], frames)
    motion = simulate_agent(streams[2], user_head, tracks)
    t = np.arange(frames) / FPS
    return Conversation(
        rotations_6d=sk.matrix_to_rot6d(motion.local_rotations).astype(np.float32),
        root_translation=motion.root_translation.astype(np.float32),
        user_head=user_head.astype(np.float32),
        user_walking=walking,
        user_speaking=tracks["user"].active(t),
        agent_speaking=tracks["agent"].active(t),
        agent_eye_contact=motion.eye_contact,
        user_audio=synthesize_speech(streams[3], tracks["user"], duration),
        agent_audio=synthesize_speech(streams[4], tracks["agent"], duration),
        agent_syllables=tracks["agent"].syllables.astype(np.float64),
    )


def _write_atomic(path: Path, payload: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(payload)
    os.replace(temporary, path)


def write_dataset(out: Path, conversations: int, seconds: float, seed: int = 0, shard_size: int = 16,
                  progress: Callable[[int], None] | None = None) -> dict:
    """Simulates ``conversations`` conversations into ``out``; returns the manifest.

    ``progress(n)`` is called with the number of conversations finished after each one.
    """
    if conversations < 1 or shard_size < 1:
        raise ValueError(f"conversations and shard_size must be >= 1, got {conversations}, {shard_size}")
    out.mkdir(parents=True, exist_ok=True)
    shards = []
    for first in range(0, conversations, shard_size):
        indices = list(range(first, min(first + shard_size, conversations)))
        tensors = {}
        for index in indices:
            for name, value in simulate_conversation(seed, index, seconds).arrays().items():
                tensors[f"{index:05d}/{name}"] = np.ascontiguousarray(value)
            if progress is not None:
                progress(index + 1)
        payload = save(tensors, metadata={"format": FORMAT})
        name = f"shard-{len(shards):05d}.safetensors"
        _write_atomic(out / name, payload)
        shards.append({"file": name, "sha256": hashlib.sha256(payload).hexdigest(), "conversations": indices})
    manifest = {"format": FORMAT, "seed": seed, "conversations": conversations, "seconds": seconds,
                "fps": FPS, "sample_rate_hz": SAMPLE_RATE_HZ, "frame": "avatar frame: metres, +Y up, agent at origin facing +Z",
                "shards": shards}
    _write_atomic(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest
