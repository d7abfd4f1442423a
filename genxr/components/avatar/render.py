"""Plots and a skeleton clip for ``genxr eval avatar`` (matplotlib, GIF through Pillow).

The clip shows the avatar frame from above (x right, z toward the viewer's up) and from
the side (z right, y up): generated skeleton in blue, ground truth in grey, the user's
head as a red dot and the generated head's forward ray in orange.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter

from genxr.components.avatar import metrics
from genxr.components.avatar import skeleton as sk
from genxr.components.sim.conversation.dataset import Conversation

Motion = tuple[np.ndarray, np.ndarray]


def plot_dial(result: dict, path: Path) -> None:
    """Eye-contact ratio against the guidance scale, with the ground truth's ratio."""
    figure, axis = plt.subplots(figsize=(4.5, 3.2), dpi=110)
    label = f"model (gaze target {result.get('dial_target', 1.0):g})"
    axis.plot(result["guidance_scales"], result["eye_contact_ratio_by_scale"], "o-", label=label)
    axis.axhline(result["ground_truth"]["eye_contact_ratio"], color="grey", ls="--", label="ground truth")
    axis.axhline(result["eye_contact_ratio"], color="C1", ls=":", label="model, default")
    axis.set_xlabel("guidance scale w")
    axis.set_ylabel(f"eye-contact ratio (gaze < {metrics.EYE_CONTACT_DEG:.0f} deg)")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def plot_walking_facing(model: list[Motion], ablation: list[Motion] | None, truth: list[Motion],
                        talks: list[Conversation], path: Path) -> None:
    """Cumulative distribution of the facing error on frames where the user walks."""
    figure, axis = plt.subplots(figsize=(4.5, 3.2), dpi=110)
    runs = [("model", model), ("ground truth", truth)] + ([("no user position", ablation)] if ablation else [])
    for label, motion in runs:
        errors = np.concatenate([metrics.gaze_and_facing_deg(r, t, talk.user_head[:len(r)])[1][talk.user_walking[:len(r)]]
                                 for (r, t), talk in zip(motion, talks)])
        axis.plot(np.sort(errors), np.linspace(0, 1, len(errors)), label=label)
    axis.set_xlabel("facing error while the user walks (deg)")
    axis.set_ylabel("fraction of frames")
    axis.set_xlim(0, 180)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _bones(positions: np.ndarray, axes: tuple[int, int]) -> list[tuple[list[float], list[float]]]:
    return [([positions[j, axes[0]], positions[p, axes[0]]], [positions[j, axes[1]], positions[p, axes[1]]])
            for j, p in enumerate(sk.PARENTS) if p >= 0]


def render_clip(model: Motion, truth: Motion, talk: Conversation, path: Path, seconds: float = 8.0,
                fps: int = 15) -> None:
    """GIF of the first ``seconds`` of a conversation, every other frame (15 fps)."""
    frames = min(int(seconds * 30), len(model[0]))
    generated, generated_rot = sk.forward_kinematics_6d(model[0][:frames].astype(np.float64), model[1][:frames])
    real, _ = sk.forward_kinematics_6d(truth[0][:frames].astype(np.float64), truth[1][:frames])
    gaze_tip = generated[:, sk.JOINT["head"]] + 0.6 * sk.head_forward(generated_rot)
    figure, (top, side) = plt.subplots(1, 2, figsize=(7.0, 3.4), dpi=80)
    views = ((top, (0, 2), (-3.2, 3.2), (-3.2, 3.2), "top (x, z)"), (side, (2, 1), (-3.2, 3.2), (0.0, 2.2), "side (z, y)"))

    def draw(i: int) -> None:
        t = 2 * i
        for axis, dims, xlim, ylim, title in views:
            axis.clear()
            axis.set_xlim(*xlim)
            axis.set_ylim(*ylim)
            axis.set_aspect("equal")
            axis.set_title(f"{title}  t={t / 30:.1f}s", fontsize=8)
            axis.tick_params(labelsize=6)
            for xs, ys in _bones(real[t], dims):
                axis.plot(xs, ys, color="0.7", lw=1)
            for xs, ys in _bones(generated[t], dims):
                axis.plot(xs, ys, color="C0", lw=1.5)
            head = generated[t, sk.JOINT["head"]]
            axis.plot([head[dims[0]], gaze_tip[t, dims[0]]], [head[dims[1]], gaze_tip[t, dims[1]]], color="C1", lw=1)
            axis.plot(talk.user_head[t, dims[0]], talk.user_head[t, dims[1]], "o", color="red", ms=6)
            speaking = "agent speaks" if talk.agent_speaking[t] else ("user speaks" if talk.user_speaking[t] else "")
            axis.text(xlim[0] + 0.1, ylim[0] + 0.1, speaking, fontsize=7)

    animation = FuncAnimation(figure, draw, frames=frames // 2)
    animation.save(path, writer=PillowWriter(fps=fps))
    plt.close(figure)
