"""``genxr eval worldmodel``: held-out rollouts of the student and the teachers vs ground truth.

Each rollout starts at an observed anchor frame of a held-out episode (seeds and behaviour
mixtures never trained on, :data:`genxr.components.sim.dataset.HELDOUT_MIXTURES`) and
generates the next ``rollout_frames`` model frames from the tracking stream alone: the
student streams chunk by chunk (:class:`.stream.WorldModelStream`), the teachers sample
windows anchored on the same frame (:func:`.teacher.teacher_rollout`). Reported: PSNR/SSIM
per frame and their drift over the rollout, hand PSNR inside the ground-truth hand mask,
IoU of the hand region, whether the button is lit when the simulator says it is, for the
shipped student, its ODE-initialised stage, the hybrid and head-only teachers, and three
references: the codec's reconstruction (the ceiling), repeating the anchor, and the anchor
reprojected to each frame's reported head pose (:mod:`.reprojection`; what a model that
predicts no correction shows).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from genxr.components import flow_matching as fm
from genxr.components.sim.layout import BALL_ID, BOX_ID
from genxr.components.worldmodel import metrics
from genxr.components.worldmodel.checkpoint import load_model, read_config
from genxr.components.worldmodel.conditioning import ConditioningConfig, tracking_from_arrays
from genxr.components.worldmodel.data import EVALUATION_FIELDS, images_of, load_episodes
from genxr.components.worldmodel.pixel_stream import PixelWorldStream
from genxr.components.worldmodel.pixel_unet import PixelWorldModel
from genxr.components.worldmodel.reprojection import attach_prior, frames_from
from genxr.components.worldmodel.stream import WorldModelStream
from genxr.components.worldmodel.teacher import teacher_rollout

MODELS = ("student", "student_ode", "teacher", "teacher_head_only", "pixel", "pixel_head_only")
TRACKED_OBJECTS = {"box": BOX_ID, "ball": BALL_ID}
"""Objects whose generated position is followed from their colour (:func:`.metrics.object_centroids`)."""


@dataclass(frozen=True)
class EvalConfig:
    """Which held-out rollouts: ``rollout_frames`` model frames (every ``frame_stride`` sim frames) from each start."""

    rollout_frames: int = 64
    frame_stride: int = 3
    starts: tuple[int, ...] = (0, 165)
    episodes: int | None = None
    teacher_steps: int = 32
    student_steps: int = 1
    sigma_shift: float = 3.0
    student_noise_scale: float = 0.0
    pixel_steps: int = 1
    teacher_window: int = 6
    seed: int = 0


def rollout(models: dict, codec, clip: dict[str, np.ndarray], config: EvalConfig) -> dict[str, np.ndarray]:
    """Generated frames (T, H, W, 3) in [0, 1] of every model in ``models`` (plus the references) for one clip
    (arrays of T + 1 frames, the first the anchor)."""
    tracking = tracking_from_arrays(clip["head_pose"], clip["hand_positions"], clip["hand_flags"], clip["hand_active"])
    truth = images_of(clip["rgb"])
    anchor = codec.encode(truth[:1])[:, None]
    frames = truth.shape[0] - 1
    _, reprojected = attach_prior(codec, truth[:1], tracking.frames(1, frames + 1), ConditioningConfig())
    out = {"anchor_copy": np.repeat(clip["rgb"][:1].astype(np.float32) / 255.0, frames, 0),
           "codec": codec.decode(codec.encode(truth[1:])).permute(0, 2, 3, 1).numpy(),
           "reprojection": reprojected[0].permute(0, 2, 3, 1).numpy()}
    for name, model in models.items():
        if isinstance(model, PixelWorldModel):
            stream = PixelWorldStream(model, config.pixel_steps, config.seed, config.student_noise_scale)
            stream.reset(clip["rgb"][0], tracking.frames(0, 1))
            out[name] = stream.step(tracking.frames(1, frames + 1)).astype(np.float32) / 255.0
        elif model.config.causal:
            stream = WorldModelStream(model, codec, config.student_steps, config.sigma_shift, config.seed,
                                      config.student_noise_scale)
            stream.reset(clip["rgb"][0], tracking.frames(0, 1))
            chunks = [stream.step(tracking.frames(1 + s, min(1 + s + stream.chunk_frames, frames + 1)))
                      for s in range(0, frames, stream.chunk_frames)]
            out[name] = np.concatenate(chunks).astype(np.float32) / 255.0
        else:
            generator = torch.Generator().manual_seed(config.seed)
            sigmas = fm.euler_sigmas(config.teacher_steps, config.sigma_shift)
            anchored, prior_pixels = attach_prior(codec, truth[:1], tracking, model.config.conditioning)
            corrections = teacher_rollout(model, anchor, anchored, config.teacher_window, sigmas, generator)
            with torch.no_grad():
                out[name] = frames_from(codec, corrections, prior_pixels[:, 1:])[0].permute(0, 2, 3, 1).numpy()
    return out


def _object_error(frames: np.ndarray, object_mask: np.ndarray, anchors: np.ndarray, anchor_masks: np.ndarray
                  ) -> dict:
    """Mean pixel error (u, v distance) of the box's and ball's generated positions, read from their anchor
    colour, against the ground-truth masks, over frames where the truth shows them; and the fraction of
    those frames where the generated frame shows the colour at all (``found``). (R, T, ...) arrays."""
    errors, found, shown = [], 0, 0
    for r in range(frames.shape[0]):
        for object_id in TRACKED_OBJECTS.values():
            colour = metrics.object_colour(anchors[r], anchor_masks[r], object_id)
            if colour is None:
                continue
            truth = metrics.mask_centroids(object_mask[r], object_id)
            generated = metrics.object_centroids(frames[r], colour)
            visible = ~np.isnan(truth[:, 0])
            hit = visible & ~np.isnan(generated[:, 0])
            shown += int(visible.sum())
            found += int(hit.sum())
            errors.extend(np.linalg.norm(generated[hit] - truth[hit], axis=-1).tolist())
    return {"object_error_px": float(np.mean(errors)) if errors else float("nan"),
            "object_found": found / shown if shown else float("nan"), "object_frames": shown}


def _balanced(lit: np.ndarray, lit_truth: np.ndarray, frames: np.ndarray) -> float:
    """Balanced accuracy (mean of the lit and unlit recalls) of per-frame ``lit`` over ``frames`` (bool masks)."""
    on, off = frames & lit_truth, frames & ~lit_truth
    return float(np.mean([lit[on].mean() if on.any() else np.nan, (~lit[off]).mean() if off.any() else np.nan]))


def _summarise(generated: dict[str, list[np.ndarray]], truth: np.ndarray, hand_mask: np.ndarray,
               object_mask: np.ndarray, lit_truth: np.ndarray, anchors: np.ndarray, anchor_masks: np.ndarray
               ) -> dict:
    """Metrics per model over all rollouts ((R, T, H, W, 3) arrays), and of the detectors on the truth
    itself (``ground_truth``: the ceiling of hand IoU, button accuracy and object error)."""
    result: dict[str, dict] = {}
    gt_hands = hand_mask > 0
    for name, frames in (generated | {"ground_truth": list(truth)}).items():
        frames = np.stack(frames)
        per_frame = np.array([[metrics.psnr(frames[r, t], truth[r, t]) for t in range(truth.shape[1])]
                              for r in range(truth.shape[0])])
        lit, visible = metrics.button_lit(frames.reshape(-1, *frames.shape[2:]), object_mask.reshape(-1, *object_mask.shape[2:]))
        lit_gt = lit_truth.reshape(-1)
        correct = (lit == lit_gt)[visible]
        press = np.repeat(lit_truth.any(1), lit_truth.shape[1])  # frames of rollouts in which the button lights
        result[name] = {
            "psnr": float(per_frame.mean()), "ssim": metrics.ssim(frames.reshape(-1, *frames.shape[2:]),
                                                                  truth.reshape(-1, *truth.shape[2:])),
            "psnr_by_frame": per_frame.mean(0).round(3).tolist(),
            "hand_psnr": metrics.psnr(frames, truth, gt_hands),
            "hand_iou": metrics.iou(metrics.hand_pixels(frames), gt_hands),
            "button_state_accuracy": float(correct.mean()) if correct.size else float("nan"),
            "button_balanced_accuracy": _balanced(lit, lit_gt, visible),
            "button_balanced_accuracy_press": _balanced(lit, lit_gt, visible & press),
            "button_lit_share_press": float(lit_gt[visible & press].mean()) if (visible & press).any() else float("nan"),
            **_object_error(frames, object_mask, anchors, anchor_masks),
        }
    return result


def _pixel_keys(per_model: dict) -> dict:
    """World model v2's headline numbers (None where it was not evaluated): PSNR, SSIM and their drift
    (frame 8 vs the last), hand IoU and PSNR vs its head-only ablation, button and object tracking."""
    mine, head_only = per_model.get("pixel"), per_model.get("pixel_head_only", {})
    if mine is None:
        return {}
    by_frame = mine["psnr_by_frame"]
    return {"pixel_psnr": mine["psnr"], "pixel_ssim": mine["ssim"], "pixel_hand_iou": mine["hand_iou"],
            "pixel_psnr_frame8": by_frame[min(7, len(by_frame) - 1)], "pixel_psnr_last_frame": by_frame[-1],
            "pixel_hand_psnr": mine["hand_psnr"], "pixel_head_only_hand_psnr": head_only.get("hand_psnr"),
            "pixel_button_balanced_accuracy": mine["button_balanced_accuracy_press"],
            "pixel_button_lit_share": mine["button_lit_share_press"],
            "pixel_object_error_px": mine["object_error_px"], "pixel_object_found": mine["object_found"]}


def evaluate(checkpoints: dict[str, Path], codec_dir: Path, heldout: Path, config: EvalConfig, out: Path | None = None
             ) -> dict:
    """Runs the rollouts and returns the JSON-able result; with ``out``, also writes the JSON, the drift
    plot (``worldmodel_drift.png``), a contact sheet and a side-by-side video next to it."""
    torch.manual_seed(config.seed)
    codec, _ = load_model(codec_dir)
    models = {name: load_model(path)[0] for name, path in checkpoints.items()}
    episodes = load_episodes(heldout, EVALUATION_FIELDS, config.episodes)
    span = config.rollout_frames * config.frame_stride + 1
    generated: dict[str, list[np.ndarray]] = {}
    truth, hands, objects, lit, anchors, anchor_masks = [], [], [], [], [], []
    for episode in range(episodes.count):
        for start in config.starts:
            if start + span > episodes.frames:
                raise ValueError(f"rollout from frame {start} needs {span} frames, episodes have {episodes.frames}")
            clip = episodes.clip(episode, start, config.rollout_frames + 1, config.frame_stride)
            for name, frames in rollout(models, codec, clip, config).items():
                generated.setdefault(name, []).append(frames)
            truth.append(clip["rgb"][1:].astype(np.float32) / 255.0)
            hands.append(clip["hand_mask"][1:])
            objects.append(clip["object_mask"][1:])
            lit.append(clip["object_state"][1:, 1] > 0.5)
            anchors.append(clip["rgb"][0].astype(np.float32) / 255.0)
            anchor_masks.append(clip["object_mask"][0])
    truth_a, lit_a = np.stack(truth), np.stack(lit)
    per_model = _summarise(generated, truth_a, np.stack(hands), np.stack(objects), lit_a, np.stack(anchors),
                           np.stack(anchor_masks))
    get = lambda model, key: per_model.get(model, {}).get(key)
    result = {
        "student_psnr": get("student", "psnr"), "teacher_psnr": get("teacher", "psnr"),
        "student_ssim": get("student", "ssim"), "teacher_ssim": get("teacher", "ssim"),
        "hand_psnr_hybrid": get("teacher", "hand_psnr"), "hand_psnr_head_only": get("teacher_head_only", "hand_psnr"),
        "student_hand_psnr": get("student", "hand_psnr"), "hand_iou": get("student", "hand_iou"),
        "button_state_accuracy": get("student", "button_state_accuracy"),
        "button_balanced_accuracy": get("student", "button_balanced_accuracy"),
        "student_ode_psnr": get("student_ode", "psnr"), "codec_psnr": get("codec", "psnr"),
        "anchor_copy_psnr": get("anchor_copy", "psnr"), "reprojection_psnr": get("reprojection", "psnr"),
        "reprojection_ssim": get("reprojection", "ssim"),
        "reprojection_hand_iou": get("reprojection", "hand_iou"), "hand_iou_ceiling": get("ground_truth", "hand_iou"),
        "object_error_px_ceiling": get("ground_truth", "object_error_px"),
        **_pixel_keys(per_model),
        "rollouts": len(truth), "rollout_frames": config.rollout_frames,
        "lit_frames": int(lit_a.sum()), "frames": int(lit_a.size),
        "config": asdict(config), "per_model": per_model,
        "checkpoints": {name: read_config(path)["summary"] for name, path in checkpoints.items()},
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "worldmodel_eval.json").write_text(json.dumps(result, indent=2) + "\n")
        from genxr.components.worldmodel.figures import (
            contact_sheet,
            drift_plot,
            side_by_side_video,
        )

        drift_plot({k: v for k, v in per_model.items() if k != "ground_truth"}, out / "worldmodel_drift.png")
        shown = ("reprojection", "pixel", "pixel_head_only", "student", "teacher", "teacher_head_only")
        shown_rollout = int(np.argmax(lit_a.sum(1)))  # a rollout in which the button lights, if any does
        rows = {"ground truth": truth_a[shown_rollout]} | {name: generated[name][shown_rollout] for name in shown
                                                           if name in generated}
        contact_sheet(rows, out / "worldmodel_rollout.png")
        side_by_side_video(rows, out / "worldmodel_side_by_side.mp4")
    return result
