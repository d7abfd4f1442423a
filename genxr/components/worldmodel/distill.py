"""Distilling the teacher into the chunk-causal few-step student.

Stage 1, ODE initialisation (CausVid): the student (the teacher's weights, causal mask)
starts from the teacher. ``ode_pairs`` teacher trajectories are sampled on training clips
(:func:`.teacher.sample_window`, a grid through the student's noise levels); the student
learns to map the state at each of its levels to the teacher's clean result, chunk by chunk
against a cache of the anchor and the teacher's clean earlier chunks, exactly as it streams.

Stage 2, Self-Forcing with DMD: the student rolls out its own chunks with its own cache
(:func:`.stream.generate_chunk`, gradient through one random denoising step per chunk).
Its clean outputs are re-noised to a random level; the frozen teacher ("real") and a
trainable critic ("fake", initialised from the teacher, fitted by flow matching to the
student's outputs, ``critic_updates`` updates per generator update) predict x0, and the
generator follows ``(x0_fake - x0_real) / mean|x0 - x0_real|`` (distribution matching
distillation, Yin et al. 2024; Self-Forcing, Huang et al. 2025).
"""

from __future__ import annotations

import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genxr.components import flow_matching as fm
from genxr.components.worldmodel.checkpoint import load_model
from genxr.components.worldmodel.conditioning import Tracking
from genxr.components.worldmodel.data import load_episodes
from genxr.components.worldmodel.dit import VideoDiT
from genxr.components.worldmodel.reprojection import attach_prior
from genxr.components.worldmodel.stream import generate_chunk, write_anchor
from genxr.components.worldmodel.teacher import sample_window, trajectory_sigmas
from genxr.components.worldmodel.train import Preset, TrainingRun, encode_clip, teacher_config, training_clip


def student_config(preset: Preset, head_only: bool = False):
    """The teacher's config with the chunk-causal mask (camera conditioning only with ``head_only``)."""
    return replace(teacher_config(preset, head_only), causal=True)


def chunk_slices(frames: int, chunk: int) -> list[slice]:
    """Slices of the generated frames (after the anchor) in chunks of ``chunk`` frames."""
    return [slice(start, min(start + chunk, frames)) for start in range(0, frames, chunk)]


def _anchored(tracking: Tracking, window: slice) -> Tracking:
    """The tracking of generated frames ``window`` (indices after the anchor)."""
    return tracking.frames(1 + window.start, 1 + window.stop)


def ode_pairs(preset: Preset, teacher: VideoDiT, codec, episodes, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """``preset.ode_pairs`` teacher trajectories: anchor latents, tracking and prior, states at the student levels, x0."""
    student_sigmas = fm.euler_sigmas(preset.student_steps, preset.sigma_shift)
    grid = trajectory_sigmas(preset.teacher_steps, student_sigmas)
    batches: dict[str, list[torch.Tensor]] = {}
    batch = 8
    for _ in tqdm(range(0, preset.ode_pairs, batch), desc="ode pairs", unit="batch"):
        images, tracking = episodes.batch(batch, preset.clip_frames, preset.data.frame_stride, rng, preset.data.max_gap)
        latents, tracking = training_clip(codec, images, tracking, teacher.config)
        noise = torch.randn_like(latents[:, 1:])
        x0, states = sample_window(teacher, latents[:, :1], tracking, noise, grid, student_sigmas[:-1])
        for name, value in (("anchor", latents[:, :1]), ("states", torch.stack(states, 1)), ("x0", x0),
                            ("head_pose", tracking.head_pose), ("hand_positions", tracking.hand_positions),
                            ("joint_valid", tracking.joint_valid), ("reference", tracking.reference),
                            ("prior", tracking.prior)):
            batches.setdefault(name, []).append(value)
    return {name: torch.cat(values)[: preset.ode_pairs] for name, values in batches.items()}


def ode_loss(student: VideoDiT, pairs: dict[str, torch.Tensor], index: torch.Tensor, sigmas: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """MSE between the student's x0 from a random student level and the teacher's x0, chunk by chunk."""
    tracking = Tracking(pairs["head_pose"][index], pairs["hand_positions"][index], pairs["joint_valid"][index],
                        pairs["reference"][index], pairs["prior"][index])
    x0 = pairs["x0"][index]
    level = int(torch.randint(len(sigmas) - 1, (1,), generator=generator))
    states = pairs["states"][index, level]
    cache = write_anchor_grad(student, pairs["anchor"][index], tracking.frames(0, 1))
    losses = []
    b = x0.shape[0]
    for window in chunk_slices(x0.shape[1], student.config.chunk_frames):
        part = _anchored(tracking, window)
        sigma = torch.full((b, window.stop - window.start), float(sigmas[level]))
        velocity, _ = student.step(states[:, window], sigma, part, cache)
        losses.append(((fm.predict_x0(states[:, window], velocity, sigma) - x0[:, window]) ** 2).mean())
        _, cache = student.step(x0[:, window], torch.zeros_like(sigma), part, cache)
    return torch.stack(losses).mean()


def write_anchor_grad(model: VideoDiT, latents: torch.Tensor, tracking: Tracking):
    """:func:`.stream.write_anchor` keeping the graph (the anchor's keys/values are learned too)."""
    _, cache = model.step(latents, torch.zeros(latents.shape[:2]), tracking, None)
    return cache


def self_forcing_rollout(student: VideoDiT, anchor: torch.Tensor, tracking: Tracking, frames: int,
                         sigmas: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, frames, C, h, w) student outputs of a rollout on its own cache, one graph step per chunk."""
    c = student.config
    cache = write_anchor(student, anchor, tracking.frames(0, 1))
    outputs = []
    for window in chunk_slices(frames, c.chunk_frames):
        noise = torch.randn(anchor.shape[0], window.stop - window.start, c.latent_channels, c.latent_size,
                            c.latent_size, generator=generator)
        grad_step = int(torch.randint(len(sigmas) - 1, (1,), generator=generator))
        x0, cache = generate_chunk(student, cache, _anchored(tracking, window), sigmas, noise, grad_step)
        outputs.append(x0)
    return torch.cat(outputs, 1)


def _x0_of(model: VideoDiT, anchor: torch.Tensor, x0: torch.Tensor, tracking: Tracking, s: torch.Tensor,
           noise: torch.Tensor) -> torch.Tensor:
    """``model``'s clean prediction of ``x0`` noised to per-clip level ``s`` (B,), anchored."""
    b, w = x0.shape[:2]
    sigma = torch.cat([torch.zeros(b, 1), s[:, None].expand(b, w)], 1)
    x_s = fm.interpolate(x0, noise, s)
    velocity = model(torch.cat([anchor, x_s], 1), sigma, tracking)[:, 1:]
    return fm.predict_x0(x_s, velocity, s)


def dmd_losses(student_x0: torch.Tensor, anchor: torch.Tensor, tracking: Tracking, teacher: VideoDiT,
               critic: VideoDiT) -> torch.Tensor:
    """The generator's DMD loss for student outputs (B, W, C, h, w)."""
    b = student_x0.shape[0]
    s = torch.rand(b) * 0.96 + 0.02
    noise = torch.randn_like(student_x0)
    with torch.no_grad():
        real = _x0_of(teacher, anchor, student_x0, tracking, s, noise)
        fake = _x0_of(critic, anchor, student_x0, tracking, s, noise)
        normaliser = (student_x0 - real).abs().mean(dim=(1, 2, 3, 4), keepdim=True).clamp_min(1e-6)
        gradient = (fake - real) / normaliser
    return 0.5 * ((student_x0 - (student_x0 - gradient).detach()) ** 2).mean()


def critic_loss(critic: VideoDiT, student_x0: torch.Tensor, anchor: torch.Tensor, tracking: Tracking) -> torch.Tensor:
    """Flow matching of the critic on the (detached) student outputs, anchored like the teacher."""
    b, w = student_x0.shape[:2]
    s = fm.sample_noise_levels((b,))
    noise = torch.randn_like(student_x0)
    sigma = torch.cat([torch.zeros(b, 1), s[:, None].expand(b, w)], 1)
    velocity = critic(torch.cat([anchor, fm.interpolate(student_x0, noise, s)], 1), sigma, tracking)[:, 1:]
    return fm.flow_matching_loss(velocity, student_x0, noise)


def train_student(preset: Preset, train_dir: Path, out: Path, seed: int = 0, head_only: bool = False) -> Path:
    """ODE initialisation then Self-Forcing/DMD; checkpoints ``out/student_ode`` and ``out/student``
    (``head_only``: the camera-only ablation, distilled from ``out/teacher_head_only`` into
    ``out/student_head_only_ode`` and ``out/student_head_only``)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    name = "student_head_only" if head_only else "student"
    codec, _ = load_model(out / "codec", preset.codec)
    teacher, _ = load_model(out / ("teacher_head_only" if head_only else "teacher"), teacher_config(preset, head_only))
    teacher.requires_grad_(False)
    episodes = load_episodes(train_dir)
    rng = np.random.default_rng(seed + 2)
    sigmas = fm.euler_sigmas(preset.student_steps, preset.sigma_shift)

    student = VideoDiT(student_config(preset, head_only))
    student.load_state_dict(teacher.state_dict())
    recipe = preset.ode_training
    run = TrainingRun(out / f"{name}_ode", preset, student, recipe)
    if run.step < recipe.steps:
        started = time.monotonic()
        pairs = ode_pairs(preset, teacher, codec, episodes, rng)
        pair_seconds = time.monotonic() - started
        loss_value = float("nan")
        with tqdm(total=recipe.steps, initial=run.step, desc="student ode", unit="step") as bar:
            while run.step < recipe.steps:
                index = torch.randint(len(pairs["x0"]), (recipe.batch,), generator=generator)
                loss = ode_loss(student, pairs, index, sigmas, generator)
                run.update(loss)
                loss_value = 0.95 * loss_value + 0.05 * loss.item() if run.step > 1 else loss.item()
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
                if run.step % recipe.save_every == 0 or run.step == recipe.steps:
                    run.save({"stage": "ode", "loss": loss_value, "ode_pairs": preset.ode_pairs,
                              "pair_seconds": round(pair_seconds, 1)})
    student, _ = load_model(out / f"{name}_ode", student_config(preset, head_only))

    critic = copy.deepcopy(teacher).requires_grad_(True).train()
    critic_optimizer = torch.optim.AdamW(critic.parameters(), lr=preset.self_forcing.lr * 5, weight_decay=0.0)
    recipe = preset.self_forcing
    run = TrainingRun(out / name, preset, student.train(), recipe)
    frames = preset.clip_frames - 1
    generator_value = critic_value = float("nan")
    with tqdm(total=recipe.steps, initial=run.step, desc="self forcing", unit="step") as bar:
        while run.step < recipe.steps:
            images, tracking = episodes.batch(recipe.batch, preset.clip_frames, preset.data.frame_stride, rng,
                                              preset.data.max_gap)
            anchor = encode_clip(codec, images[:, :1])
            tracking, _ = attach_prior(codec, images[:, 0], tracking, student.config.conditioning)
            for _ in range(preset.critic_updates):
                with torch.no_grad():
                    produced = self_forcing_rollout(student, anchor, tracking, frames, sigmas, generator)
                loss = critic_loss(critic, produced, anchor, tracking)
                critic_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
                critic_optimizer.step()
                critic_value = loss.item()
            produced = self_forcing_rollout(student, anchor, tracking, frames, sigmas, generator)
            loss = dmd_losses(produced, anchor, tracking, teacher, critic)
            run.update(loss)
            generator_value = loss.item()
            bar.update(1)
            bar.set_postfix(dmd=f"{generator_value:.4f}", critic=f"{critic_value:.4f}")
            if run.step % recipe.save_every == 0 or run.step == recipe.steps:
                run.save({"stage": "self_forcing_dmd", "head_only": head_only, "dmd_loss": generator_value,
                          "critic_loss": critic_value,
                          "critic_updates": preset.critic_updates})
    return run.directory
