"""Training of world model v2 (:mod:`.pixel_unet`): ``genxr train worldmodel-pixel``.

EDM denoising loss (Karras et al. 2022) on the next frame, teacher-forced with noise on the
context frames (DIAMOND, GameNGen), each pixel's squared error weighted up on the hands
(where they are and where they just were) and on the button, box and ball
(:func:`.pixel_data.training_batch`): a hand is a few percent of the frame and an
unweighted loss can ignore it. A quarter of each batch (``event_fraction``) has its target
among the frames where the button is lit or an object moves (:func:`.pixel_data.event_frames`):
2% of training frames show the button lit, too few for a model to learn it from uniform
draws (DIAMOND's users report the same for rare actions). A quarter (``deterministic_fraction``)
is at the largest noise level with the input the deterministic one-step stream gives (zeros),
so the path every session frame takes is trained as such. Presets (:data:`PIXEL_PRESETS`): ``tiny`` tests the loop in
CI; ``cpu`` is what genxr ships (measured in docs/worldmodel.md, "World model v2"); ``gpu``
scales resolution to 128x128 and the U-Net up for a machine with a GPU (the same command
with ``--preset gpu``; the model moves to ``cuda`` when one is there).

The run directory (``out/pixel`` or ``out/pixel_head_only``) is resumable like the other
stages (:class:`.train.TrainingRun`): the same command continues from the last save.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from genxr.components.worldmodel.data import load_episodes
from genxr.components.worldmodel.pixel_data import PIXEL_FIELDS, PixelBatch, event_frames, training_batch
from genxr.components.worldmodel.pixel_unet import PixelWorldConfig, PixelWorldModel
from genxr.components.worldmodel.train import DataRecipe, StageRecipe, TrainingRun


@dataclass(frozen=True)
class PixelPreset:
    """Data, model and optimisation of one ``--preset`` of world model v2."""

    name: str
    data: DataRecipe
    model: PixelWorldConfig
    training: StageRecipe
    hand_weight: float = 4.0
    object_weight: float = 4.0
    event_fraction: float = 0.25
    deterministic_fraction: float = 0.25
    ema_decay: float = 0.999


PIXEL_PRESETS: dict[str, PixelPreset] = {
    "tiny": PixelPreset("tiny", DataRecipe(episodes=2, frames=48, heldout_episodes=1, max_gap=4),
                        PixelWorldConfig(block_channels=(16, 16), norm_groups=8), StageRecipe(4, 2, 1e-3, 2)),
    "cpu": PixelPreset("cpu", DataRecipe(episodes=80, max_gap=8), PixelWorldConfig(), StageRecipe(1800, 16, 3e-4, 100)),
    "gpu": PixelPreset("gpu", DataRecipe(episodes=2000, frames=360, heldout_episodes=45, max_gap=8, resolution=128),
                       PixelWorldConfig(resolution=128, block_channels=(64, 128, 128, 256), layers_per_block=2,
                                        norm_groups=32), StageRecipe(200_000, 32, 1e-4, 5000)),
}


def model_config(preset: PixelPreset, head_only: bool = False) -> PixelWorldConfig:
    """The preset's model, or its head-only ablation (no skeleton, no joints: the head pose acts only
    through the reprojection of the anchor and the context frames)."""
    return replace(preset.model, use_skeleton=False, use_joints=False) if head_only else preset.model


def denoising_loss(model: PixelWorldModel, batch: PixelBatch, generator: torch.Generator | None = None,
                   deterministic_fraction: float = 0.0) -> torch.Tensor:
    """EDM-weighted, pixel-weighted squared error of the denoised target at a random noise level; a share
    ``deterministic_fraction`` of the examples is at sigma_max with zero noise, the input the deterministic
    one-step stream gives the model (``noise_scale=0``, :mod:`.pixel_stream`), so that path is trained as such."""
    b = batch.target.shape[0]
    sigma = model.sample_training_sigma(b, generator).to(batch.target.device)
    noise = torch.randn(batch.target.shape, generator=generator).to(batch.target.device)
    deterministic = (torch.rand(b, generator=generator) < deterministic_fraction).to(batch.target.device)
    sigma = torch.where(deterministic, torch.full_like(sigma, model.config.sigma_max), sigma)
    keep = (~deterministic).float().reshape(-1, 1, 1, 1)
    noisy = (batch.target + noise * sigma.reshape(-1, 1, 1, 1)) * keep  # deterministic: the stream's input, 0
    denoised = model.denoise(noisy, sigma, batch.condition, batch.joints)
    error = model.loss_weight(sigma).reshape(-1, 1, 1, 1) * batch.weight * (denoised - batch.target) ** 2
    return error.sum() / (batch.weight.sum() * 3)


def train_pixel(preset: PixelPreset, train_dir: Path, out: Path, head_only: bool = False, seed: int = 0) -> Path:
    """Trains world model v2 (or its head-only ablation) with EMA; returns the run directory."""
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    episodes = load_episodes(train_dir, PIXEL_FIELDS)
    if episodes.arrays["rgb"].shape[2] != preset.model.resolution:
        raise ValueError(f"data set {train_dir} is {episodes.arrays['rgb'].shape[2]} px, preset {preset.name!r} "
                         f"trains at {preset.model.resolution} px")
    events = event_frames(episodes)
    rng = np.random.default_rng(seed + (1 if head_only else 0))
    generator = torch.Generator().manual_seed(seed)
    model = PixelWorldModel(model_config(preset, head_only))
    recipe = preset.training
    run = TrainingRun(out / ("pixel_head_only" if head_only else "pixel"), preset, model, recipe, preset.ema_decay)
    model.to(device)
    if run.ema is not None:
        run.ema.to(device)
    loss_value = float("nan")
    with tqdm(total=recipe.steps, initial=run.step, desc=run.directory.name, unit="step") as bar:
        while run.step < recipe.steps:
            batch = training_batch(episodes, model.config, recipe.batch, preset.data.frame_stride,
                                   preset.data.max_gap, rng, preset.hand_weight, preset.object_weight, events,
                                   preset.event_fraction)
            batch = PixelBatch(*(t.to(device) for t in (batch.target, batch.condition, batch.joints, batch.weight)))
            loss = denoising_loss(model, batch, generator, preset.deterministic_fraction)
            run.update(loss)
            loss_value = 0.98 * loss_value + 0.02 * loss.item() if run.step > 1 else loss.item()
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
            if run.step % recipe.save_every == 0 or run.step == recipe.steps:
                model.cpu()
                run.save({"loss": loss_value, "head_only": head_only})
                model.to(device)
    return run.directory
