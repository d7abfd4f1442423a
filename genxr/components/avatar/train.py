"""``genxr train avatar``: simulate conversations, train the motion VAE, then the latent
generators (main, spatial ablation without the user input, non-causal baseline), and
save one checkpoint.

Training conversations are seeds ``(seed, 0 .. n-1)`` of the simulator; evaluation uses
``EVAL_SEED`` so held-out conversations never overlap. Optimiser AdamW with diffusers'
cosine schedule with warm-up; the generators are read from diffusers' ``EMAModel``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from genxr.components.avatar.features import (
    audio_features,
    gaze_score,
    motion_features,
    turn_about_stance,
    user_bearing,
    user_features,
)
from genxr.components.avatar.generator import GENERATOR_PRESETS, LatentGenerator
from genxr.components.avatar.vae import VAE_PRESETS, MotionVAE
from genxr.components.sim.conversation.dataset import simulate_conversation

EVAL_SEED = 1_000_003


@dataclass(frozen=True)
class TrainingConfig:
    """Data (``conversations`` of ``seconds``), steps per stage, batch and crop sizes."""

    preset: str
    conversations: int
    seconds: float
    vae_steps: int
    generator_steps: int
    batch_size: int
    vae_crop_chunks: int = 16
    generator_crop_chunks: int = 24
    learning_rate: float = 1e-3
    seed: int = 0
    tracking_loss_prob: float = 0.15


TRAINING_PRESETS: dict[str, TrainingConfig] = {
    "tiny": TrainingConfig("tiny", conversations=4, seconds=12.0, vae_steps=3, generator_steps=3, batch_size=4,
                           vae_crop_chunks=8, generator_crop_chunks=8),
    "cpu": TrainingConfig("cpu", conversations=96, seconds=40.0, vae_steps=1800, generator_steps=4000, batch_size=32),
    "gpu": TrainingConfig("gpu", conversations=2000, seconds=60.0, vae_steps=40_000, generator_steps=80_000,
                          batch_size=128, learning_rate=5e-4),
}


@dataclass(frozen=True)
class ConversationFeatures:
    """Model inputs of one conversation at 30 fps: ``motion`` (T, 135), ``audio`` (T, 6),
    ``user`` (T, 9), ``gaze`` (T,) score (see :mod:`genxr.components.avatar.features`)."""

    motion: np.ndarray
    audio: np.ndarray
    user: np.ndarray
    gaze: np.ndarray


def conversation_features(seed: int, index: int, seconds: float, root_heading: str = "user") -> ConversationFeatures:
    """Features of simulated conversation ``(seed, index)``; ``motion`` in the frame ``root_heading``
    names (see :class:`~genxr.components.avatar.vae.MotionVAEConfig`); the gaze score is computed on
    the motion in the avatar frame."""
    talk = simulate_conversation(seed, index, seconds)
    motion = motion_features(talk.rotations_6d, talk.root_translation)
    user = user_features(talk.user_head)
    return ConversationFeatures(
        motion=turn_about_stance(motion, -user_bearing(user)) if root_heading == "user" else motion,
        audio=audio_features(talk.user_audio, talk.agent_audio, talk.frames),
        user=user,
        gaze=gaze_score(talk.rotations_6d, talk.root_translation, talk.user_head),
    )


def _lose_tracking(user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Copy of ``user`` (T, 9) with a random span held at its first row, velocity 0, flag 0."""
    user = user.copy()
    start = int(rng.integers(0, len(user) - 1))
    stop = min(len(user), start + int(rng.integers(8, 90)))
    user[start:stop] = user[start]
    user[start:stop, 6:] = 0.0
    return user


def _optimise(model: torch.nn.Module, steps: int, learning_rate: float, loss_fn: Callable[[], torch.Tensor],
              description: str, ema: EMAModel | None = None) -> list[float]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = get_cosine_schedule_with_warmup(optimiser, max(1, steps // 20), steps)
    losses = []
    model.train()
    with tqdm(range(steps), desc=description, unit="step", leave=False) as bar:
        for step in bar:
            loss = loss_fn()
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            if ema is not None:
                ema.step(model.parameters())
            losses.append(loss.item())
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    if ema is not None:
        ema.copy_to(model.parameters())
    return losses


def train_vae(vae: MotionVAE, data: list[ConversationFeatures], config: TrainingConfig,
              rng: np.random.Generator) -> list[float]:
    motion = np.concatenate([c.motion for c in data])
    vae.motion_mean.copy_(torch.from_numpy(motion.mean(0)))
    vae.motion_std.copy_(torch.from_numpy(np.maximum(motion.std(0), 1e-2)))
    crop = config.vae_crop_chunks * vae.config.stride
    generator = torch.Generator().manual_seed(config.seed)

    def batch_loss() -> torch.Tensor:
        batch = []
        for c in rng.integers(0, len(data), config.batch_size):
            start = int(rng.integers(0, len(data[c].motion) - crop + 1))
            batch.append(data[c].motion[start:start + crop])
        loss, _ = vae.loss(torch.from_numpy(np.stack(batch)), generator)
        return loss

    return _optimise(vae, config.vae_steps, config.learning_rate, batch_loss, "vae")


@torch.no_grad()
def encode_latents(vae: MotionVAE, data: list[ConversationFeatures]) -> list[np.ndarray]:
    """Posterior means (K, latent_dim) of each conversation, K = T // stride."""
    vae.eval()
    return [vae.encode(torch.from_numpy(c.motion)[None])[0][0].numpy() for c in data]


def train_generator(model: LatentGenerator, data: list[ConversationFeatures], latents: list[np.ndarray],
                    config: TrainingConfig, rng: np.random.Generator) -> list[float]:
    stacked = np.concatenate(latents)
    model.latent_mean.copy_(torch.from_numpy(stacked.mean(0)))
    model.latent_std.copy_(torch.from_numpy(np.maximum(stacked.std(0), 1e-3)))
    gaze = np.concatenate([c.gaze for c in data])
    model.gaze_mean.fill_(float(gaze.mean()))
    model.gaze_std.fill_(float(max(gaze.std(), 1e-3)))
    stride, tokens = model.config.stride, config.generator_crop_chunks
    generator = torch.Generator().manual_seed(config.seed + 1)

    def batch_loss() -> torch.Tensor:
        z, audio, user, score = [], [], [], []
        for c in rng.integers(0, len(data), config.batch_size):
            k0 = int(rng.integers(0, len(latents[c]) - tokens + 1))
            frames = slice(k0 * stride, (k0 + tokens) * stride)
            z.append(latents[c][k0:k0 + tokens])
            audio.append(data[c].audio[frames])
            u = data[c].user[frames]
            user.append(_lose_tracking(u, rng) if rng.random() < config.tracking_loss_prob else u)
            score.append(data[c].gaze[frames].reshape(tokens, stride).mean(1))
        z_t = (torch.from_numpy(np.stack(z)) - model.latent_mean) / model.latent_std
        inputs = tuple(torch.from_numpy(np.stack(x)) for x in (audio, user, score))
        return model.loss(z_t, inputs, generator)

    ema = EMAModel(model.parameters(), decay=0.995)
    return _optimise(model, config.generator_steps, config.learning_rate, batch_loss, "generator", ema)


def train_avatar(config: TrainingConfig, progress: Callable[[str], None] = lambda _: None
                 ) -> tuple[dict[str, torch.nn.Module], dict]:
    """Trains all models of ``config.preset``; returns them and a JSON-able summary."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    vae = MotionVAE(VAE_PRESETS[config.preset])
    progress(f"simulating {config.conversations} conversations of {config.seconds:.0f} s")
    data = [conversation_features(config.seed, i, config.seconds, vae.config.root_heading)
            for i in tqdm(range(config.conversations), desc="simulate", unit="conv", leave=False)]
    progress("training the motion VAE")
    vae_losses = train_vae(vae, data, config, rng)
    latents = encode_latents(vae, data)
    base = replace(GENERATOR_PRESETS[config.preset], latent_dim=vae.config.latent_dim, stride=vae.config.stride)
    models: dict[str, torch.nn.Module] = {"vae": vae.eval()}
    summary: dict = {"training": asdict(config), "final_loss": {"vae": float(np.mean(vae_losses[-50:]))}}
    for name, generator_config in (("generator", base), ("generator_no_user", replace(base, use_user_position=False)),
                                   ("baseline", replace(base, causal=False))):
        progress(f"training {name}")
        model = LatentGenerator(generator_config)
        losses = train_generator(model, data, latents, config, rng)
        models[name] = model.eval()
        summary["final_loss"][name] = float(np.mean(losses[-50:]))
    return models, summary
