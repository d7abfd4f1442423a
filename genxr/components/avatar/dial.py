"""Choosing the eye-contact dial's default on validation conversations, never on held-out ones.

Validation conversations are simulator seeds ``(seed, conversations + i)`` of the training
preset: the training data set's seed, past the indices it trained on, so they are neither
trained on nor the held-out set (``EVAL_SEED``) that ``genxr eval avatar`` reports. For each
dial setting (guidance scale, gaze target) the causal stream runs over them exactly as in the
evaluation, and the gaze and facing errors are scored the way the targets are: the gap to the
ground truth's mean in units of the ground truth's own standard deviation (target: <= 0.2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genxr.components.avatar import metrics
from genxr.components.avatar.checkpoint import load_checkpoint
from genxr.components.avatar.evaluate import _summary, stream_conversation
from genxr.components.avatar.stream import AvatarStream
from genxr.components.avatar.train import TRAINING_PRESETS
from genxr.components.sim.conversation.dataset import Conversation, simulate_conversation

SPREAD_FRACTION = 0.2
"""The target: |model - ground truth| <= 0.2 x the ground truth's standard deviation."""


def validation_conversations(count: int, seconds: float, preset: str = "cpu") -> list[Conversation]:
    """``count`` conversations of ``seconds`` from the training seed past the preset's training indices."""
    config = TRAINING_PRESETS[preset]
    return [simulate_conversation(config.seed, config.conversations + i, seconds) for i in range(count)]


def parse_settings(text: str) -> list[tuple[float, float | None]]:
    """``"1:mean,0.5:1"`` -> [(1.0, None), (0.5, 1.0)]: guidance scale, gaze target (``mean``: the training mean)."""
    settings = []
    for item in text.split(","):
        scale, _, target = item.partition(":")
        try:
            settings.append((float(scale), None if target.strip() in ("", "mean") else float(target)))
        except ValueError:
            raise ValueError(f"dial setting {item!r}: expected SCALE:TARGET, e.g. 0.5:1 or 1:mean") from None
        if settings[-1][1] is not None and not 0.0 <= settings[-1][1] <= 1.0:
            raise ValueError(f"dial setting {item!r}: the gaze target must be in [0, 1]")
    return settings


def dial_sweep(checkpoint: Path, settings: list[tuple[float, float | None]], conversations: int = 6,
               seconds: float = 30.0) -> dict:
    """Metrics per dial setting on validation conversations, with the gaze/facing gaps in GT std units."""
    models, _ = load_checkpoint(checkpoint)
    talks = validation_conversations(conversations, seconds)
    truth = [(t.rotations_6d, t.root_translation) for t in talks]
    reference_pose = np.concatenate([metrics.pose_features(r, t) for r, t in truth])
    gt = _summary(truth, talks, reference_pose)
    stream = AvatarStream(models["vae"], models["generator"])
    rows = []
    for scale, target in settings:
        target = float(models["generator"].gaze_mean) if target is None else target
        summary = _summary([stream_conversation(stream, t, i, guidance_scale=scale, gaze_target=target)
                            for i, t in enumerate(talks)], talks, reference_pose)
        gaps = {f"{name}_gap_in_gt_std": abs(summary[f"{name}_error_deg"] - gt[f"{name}_error_deg"]) / gt[f"{name}_error_deg_std"]
                for name in ("gaze", "facing")}
        rows.append({"guidance_scale": scale, "gaze_target": target,
                     **gaps, "both_within_target": all(g <= SPREAD_FRACTION for g in gaps.values()),
                     **{k: v for k, v in summary.items() if k != "walking_facing_error_deg"}})
    return {"checkpoint": str(checkpoint), "split": "validation", "conversations": conversations, "seconds": seconds,
            "ground_truth": {k: v for k, v in gt.items() if k != "walking_facing_error_deg"}, "settings": rows}
