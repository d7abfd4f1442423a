"""Training loops of the frame codec and the teacher, with named presets, progress bars and resume.

Presets (:data:`PRESETS`): ``tiny`` tests the loops in CI (seconds, a throw-away data set
of 2 short episodes); ``cpu`` is what genxr ships (sizes and step counts in
docs/worldmodel.md, measured on the shared 2-core machine); ``gpu`` documents the scaled-up
recipe (bigger models and data, more steps; same code, the models move to ``cuda``).

A run directory ``out/<stage>/`` receives ``config.json`` + ``model.safetensors`` (see
:mod:`.checkpoint`) every ``save_every`` steps and at the end, plus the training state;
running the same command again resumes from the last save. Training a teacher needs the
codec (``out/codec``), the student needs both (:mod:`.distill`).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from diffusers.training_utils import EMAModel
from tqdm import tqdm

from genxr.components import flow_matching as fm
from genxr.components.worldmodel.checkpoint import (
    CheckpointError,
    config_differences,
    load_model,
    load_train_state,
    optimizer_tensors,
    restore_optimizer,
    save_model,
    save_train_state,
)
from genxr.components.worldmodel.codec import CODEC_PRESETS, FrameCodec, FrameCodecConfig
from genxr.components.worldmodel.conditioning import ConditioningConfig, Tracking
from genxr.components.worldmodel.data import images_of, load_episodes
from genxr.components.worldmodel.dit import DIT_PRESETS, VideoDiT, VideoDiTConfig
from genxr.components.worldmodel.reprojection import attach_prior, prior_relative


@dataclass(frozen=True)
class DataRecipe:
    """The simulator data set a preset trains on (``genxr sim dataset`` arguments) and the model frame rate."""

    episodes: int = 40
    frames: int = 360
    heldout_episodes: int = 6
    frame_stride: int = 3
    max_gap: int = 60
    resolution: int = 64


@dataclass(frozen=True)
class StageRecipe:
    """Optimisation of one stage: ``steps`` of ``batch`` clips (or frames for the codec) at ``lr``."""

    steps: int
    batch: int
    lr: float
    save_every: int = 100


@dataclass(frozen=True)
class Preset:
    """Everything one ``--preset`` fixes: data, model configs and per-stage recipes."""

    name: str
    data: DataRecipe
    codec: FrameCodecConfig
    dit: VideoDiTConfig
    teacher_training: StageRecipe
    ode_training: StageRecipe
    self_forcing: StageRecipe
    clip_frames: int = 7
    context_noise_max: float = 0.1
    ema_decay: float = 0.995
    teacher_steps: int = 32
    student_steps: int = 1
    sigma_shift: float = 3.0
    ode_pairs: int = 256
    critic_updates: int = 2
    codec_frames: int = 4000


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", DataRecipe(episodes=2, frames=48, heldout_episodes=1, max_gap=4), CODEC_PRESETS["tiny"],
                   DIT_PRESETS["tiny"], StageRecipe(6, 2, 1e-3, 3), StageRecipe(4, 2, 1e-3, 2),
                   StageRecipe(2, 2, 1e-4, 1), teacher_steps=4, ode_pairs=4, codec_frames=64),
    "cpu": Preset("cpu", DataRecipe(), CODEC_PRESETS["cpu"], DIT_PRESETS["cpu"], StageRecipe(4000, 12, 6e-4, 100),
                  StageRecipe(1000, 12, 3e-4, 100), StageRecipe(400, 4, 2e-5, 50)),
    "gpu": Preset("gpu", DataRecipe(episodes=2000, frames=360, heldout_episodes=45), CODEC_PRESETS["gpu"],
                  DIT_PRESETS["gpu"], StageRecipe(200_000, 64, 3e-4, 5000), StageRecipe(20_000, 64, 1e-4, 2000),
                  StageRecipe(5_000, 16, 2e-6, 500), ode_pairs=20_000, critic_updates=5, codec_frames=100_000),
}

HEAD_ONLY = ConditioningConfig(use_skeleton=False, use_joints=False)


def teacher_config(preset: Preset, head_only: bool = False) -> VideoDiTConfig:
    """The bidirectional teacher of ``preset`` (camera conditioning only with ``head_only``)."""
    conditioning = replace(preset.dit.conditioning, use_skeleton=False, use_joints=False) if head_only else \
        preset.dit.conditioning
    return replace(preset.dit, causal=False, conditioning=conditioning)


def ensure_data(preset: Preset, data: Path | None, out: Path) -> tuple[Path, Path]:
    """Train and held-out data set directories: ``data``/{train,heldout} if given, else written under ``out``/data
    as ``preset.data`` says (any preset with a :class:`DataRecipe` ``data``, also world model v2's)."""
    root = data if data is not None else out / "data"
    from genxr.components.sim.dataset import DatasetConfig, write_dataset

    d = preset.data
    for split, episodes in (("train", d.episodes), ("heldout", d.heldout_episodes)):
        if not (root / split / "manifest.json").is_file():
            write_dataset(root / split, DatasetConfig(episodes=episodes, frames=d.frames, split=split,
                                                      resolution=d.resolution))
    return root / "train", root / "heldout"


class TrainingRun:
    """Resumable state of one stage's run directory (model, optimizer, schedule, optional EMA)."""

    def __init__(self, directory: Path, preset: Preset, model: torch.nn.Module, recipe: StageRecipe,
                 ema_decay: float | None = None) -> None:
        self.directory, self.preset, self.model, self.recipe = directory, preset, model, recipe
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
        self.schedule = get_cosine_schedule_with_warmup(self.optimizer, min(100, recipe.steps // 10 + 1), recipe.steps)
        self.ema = None if ema_decay is None else EMAModel(model.parameters(), decay=ema_decay)
        self.step = 0
        self.started = time.monotonic()
        self.seconds_before = 0.0
        state = load_train_state(directory)
        if state is not None:
            meta, tensors = state
            if meta["preset"] != preset.name:
                raise CheckpointError(f"{directory}: holds a run of preset {meta['preset']!r}, not {preset.name!r}; "
                                      "choose another --out")
            have, _ = load_model(directory)
            diff = config_differences(have.config, model.config)
            if diff:
                raise CheckpointError(f"{directory}: config mismatch - " + "; ".join(diff))
            model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
            restore_optimizer(self.optimizer, tensors)
            if self.ema is not None:
                for index, shadow in enumerate(self.ema.shadow_params):
                    shadow.copy_(tensors[f"ema.{index}"])
                self.ema.optimization_step = meta["step"]
            self.step = meta["step"]
            self.seconds_before = meta["seconds"]
            with warnings.catch_warnings():  # replaying the schedule before any optimizer step is intended
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                for _ in range(self.step):
                    self.schedule.step()

    def update(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.schedule.step()
        if self.ema is not None:
            self.ema.step(self.model.parameters())
        self.step += 1

    @property
    def seconds(self) -> float:
        return self.seconds_before + time.monotonic() - self.started

    def save(self, summary: dict) -> None:
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()} | optimizer_tensors(self.optimizer)
        if self.ema is not None:
            tensors |= {f"ema.{i}": p for i, p in enumerate(self.ema.shadow_params)}
            exported = type(self.model)(self.model.config)
            exported.load_state_dict(self.model.state_dict())
            self.ema.copy_to(exported.parameters())
        else:
            exported = self.model
        full = {"preset": self.preset.name, "steps": self.step, "train_seconds": round(self.seconds, 1), **summary}
        save_model(self.directory, exported, full)
        save_train_state(self.directory, self.step, self.preset.name, tensors, {"seconds": self.seconds})


def train_codec(preset: Preset, train_dir: Path, out: Path, seed: int = 0) -> Path:
    """Fits the PCA frame codec on ``preset.codec_frames`` random training frames; returns its checkpoint directory."""
    started = time.monotonic()
    episodes = load_episodes(train_dir, ("rgb",))
    frames = episodes.arrays["rgb"].reshape(-1, *episodes.arrays["rgb"].shape[2:])
    rng = np.random.default_rng(seed)
    codec = FrameCodec(preset.codec)
    codec.fit(images_of(frames[rng.integers(len(frames), size=min(preset.codec_frames, len(frames)))]))
    with torch.no_grad():
        check = images_of(frames[rng.integers(len(frames), size=256)])
        mse = torch.mean((codec.decode(codec.encode(check)) - check) ** 2).item()
    summary = {"preset": preset.name, "fit_frames": preset.codec_frames, "train_seconds": round(time.monotonic() - started, 1),
               "reconstruction_psnr_db": round(float(-10 * np.log10(mse)), 2)}
    return save_model(out / "codec", codec, summary)


def encode_clip(codec: FrameCodec, images: torch.Tensor) -> torch.Tensor:
    """(B, F, 3, H, W) images -> (B, F, C, h, w) normalised latents (no gradient)."""
    with torch.no_grad():
        latents = codec.encode(images.flatten(0, 1))
    return latents.reshape(*images.shape[:2], *latents.shape[1:])


def training_clip(codec: FrameCodec, images: torch.Tensor, tracking: Tracking, config: VideoDiTConfig
                  ) -> tuple[torch.Tensor, Tracking]:
    """Clips (B, F, 3, H, W) whose first frame is the anchor -> their latents in the models' data space
    (:func:`.reprojection.prior_relative`) and ``tracking`` with the prior attached."""
    tracking, _ = attach_prior(codec, images[:, 0], tracking, config.conditioning)
    return prior_relative(encode_clip(codec, images), tracking.prior), tracking


def context_sigma(batch: int, frames: int, context_frames: int, noise_max: float, generator=None) -> torch.Tensor:
    """(B, F) per-frame noise levels: context frames U(0, noise_max) (augmentation), targets one logit-normal level per clip."""
    sigma = fm.sample_noise_levels((batch, 1), generator).expand(batch, frames).clone()
    sigma[:, :context_frames] = torch.rand(batch, context_frames, generator=generator) * noise_max
    return sigma


def teacher_loss(model: VideoDiT, latents: torch.Tensor, tracking: Tracking, noise_max: float) -> torch.Tensor:
    """Flow-matching loss on the target frames of clips (B, F, C, h, w) whose first frames are context."""
    b, f = latents.shape[:2]
    context = model.config.context_frames
    sigma = context_sigma(b, f, context, noise_max)
    noise = torch.randn_like(latents)
    velocity = model(fm.interpolate(latents, noise, sigma), sigma, tracking)
    weight = torch.ones(b, f, 1, 1, 1)
    weight[:, :context] = 0.0
    return fm.flow_matching_loss(velocity, latents, noise, weight)


def train_teacher(preset: Preset, train_dir: Path, out: Path, head_only: bool = False, seed: int = 0) -> Path:
    """Trains the bidirectional teacher (``head_only``: the camera-only ablation) with EMA."""
    torch.manual_seed(seed)
    codec, _ = load_model(out / "codec", preset.codec)
    episodes = load_episodes(train_dir)
    rng = np.random.default_rng(seed + (1 if head_only else 0))
    model = VideoDiT(teacher_config(preset, head_only))
    recipe = preset.teacher_training
    run = TrainingRun(out / ("teacher_head_only" if head_only else "teacher"), preset, model, recipe, preset.ema_decay)
    loss_value = float("nan")
    with tqdm(total=recipe.steps, initial=run.step, desc=run.directory.name, unit="step") as bar:
        while run.step < recipe.steps:
            images, tracking = episodes.batch(recipe.batch, preset.clip_frames, preset.data.frame_stride, rng,
                                              preset.data.max_gap)
            latents, tracking = training_clip(codec, images, tracking, model.config)
            loss = teacher_loss(model, latents, tracking, preset.context_noise_max)
            run.update(loss)
            loss_value = 0.98 * loss_value + 0.02 * loss.item() if run.step > 1 else loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if run.step % recipe.save_every == 0 or run.step == recipe.steps:
                run.save({"loss": loss_value, "head_only": head_only})
    return run.directory
