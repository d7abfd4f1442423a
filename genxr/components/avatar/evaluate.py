"""``genxr eval avatar``: the shipped checkpoint streamed over held-out conversations.

Held-out conversations are simulator seeds ``(EVAL_SEED, i)``, never used in training.
Every model runs through the streaming API (:class:`AvatarStream`) exactly as deployed:
one 4-frame step at a time, audio as :class:`AudioChunk` messages, the user's head as a
:class:`Pose` in the reference space. Metrics are defined in
:mod:`genxr.components.avatar.metrics`; the mean-pose baseline is the training data's
mean feature vector held still. Optional outputs: the eye-contact dial plot, the facing
error distribution while the user walks, and a GIF of the skeleton with the user marker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genxr.components.avatar import metrics
from genxr.components.avatar import skeleton as sk
from genxr.components.avatar.checkpoint import load_checkpoint
from genxr.components.avatar.features import SAMPLE_RATE_HZ, audio_features, split_motion
from genxr.components.avatar.frames import AgentPlacement
from genxr.components.avatar.stream import AvatarStream
from genxr.components.avatar.train import EVAL_SEED
from genxr.components.sim.conversation.dataset import Conversation, simulate_conversation
from genxr.platform.messages import AudioChunk, Pose
from genxr.platform.stats import percentiles
from genxr.platform.units import NS_PER_S


@dataclass(frozen=True)
class EvalConfig:
    """``conversations`` held-out conversations of ``seconds``; the dial steers toward ``dial_target``;
    ``smooth_seams``: the streams' :class:`~genxr.components.avatar.stream.SeamFilter` (False: the
    raw decoder output, as before the filter)."""

    conversations: int = 8
    seconds: float = 30.0
    guidance_scales: tuple[float, ...] = (0.0, 0.125, 0.25, 0.375, 0.5)
    dial_target: float = 1.0
    smooth_seams: bool = True


def stream_conversation(stream: AvatarStream, talk: Conversation, seed: int, **reset_kwargs: float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Motion (T', 22, 6) and root (T', 3), avatar frame, for a whole conversation (T' = whole chunks)."""
    placement = AgentPlacement()
    stream.reset(seed=seed, placement=placement, **reset_kwargs)
    user_reference = placement.to_reference(talk.user_head)
    rotations, roots = [], []
    s = stream.stride
    for k in range(talk.frames // s):
        first, last = k * s * SAMPLE_RATE_HZ // 30, (k + 1) * s * SAMPLE_RATE_HZ // 30
        audio = [AudioChunk(speaker=name, start_time_ns=round(first * NS_PER_S / SAMPLE_RATE_HZ), sample_rate_hz=SAMPLE_RATE_HZ,
                            samples=track[first:last]) for name, track in (("user", talk.user_audio), ("agent", talk.agent_audio))]
        chunk = stream.step(Pose(position=tuple(user_reference[(k + 1) * s - 1])), audio)
        rotations.append(chunk.rotations_6d)
        roots.append(chunk.root_translation)
    return np.concatenate(rotations), np.concatenate(roots)


def _summary(motion: list[tuple[np.ndarray, np.ndarray]], talks: list[Conversation], reference_pose: np.ndarray
             ) -> dict:
    poses = [metrics.pose_features(r, t) for r, t in motion]
    gaze, facing, walking_facing, beats, motion_beat_count = [], [], [], [], 0
    for (r, t), pose, talk in zip(motion, poses, talks):
        n = len(r)
        g, f = metrics.gaze_and_facing_deg(r, t, talk.user_head[:n])
        gaze.append(g)
        facing.append(f)
        walking_facing.append(f[talk.user_walking[:n]])
        onsets = audio_features(talk.user_audio, talk.agent_audio, n)[:, 4]
        motion_beats = metrics.motion_beats(pose)
        motion_beat_count += len(motion_beats)
        beats.append(metrics.beat_consistency(metrics.audio_beats(onsets), motion_beats))
    pose_all = np.concatenate(poses)
    velocity = np.concatenate([np.diff(p, axis=0) * 30.0 for p in poses])
    reference_velocity = np.diff(reference_pose, axis=0) * 30.0
    gaze_all, facing_all, walking_all = np.concatenate(gaze), np.concatenate(facing), np.concatenate(walking_facing)
    return {
        "fd_g": metrics.frechet_distance(pose_all, reference_pose),
        "fd_k": metrics.frechet_distance(velocity, reference_velocity),
        "div_g": metrics.diversity(pose_all),
        "gaze_error_deg": float(gaze_all.mean()),
        "gaze_error_deg_std": float(gaze_all.std()),
        "eye_contact_ratio": float((gaze_all < metrics.EYE_CONTACT_DEG).mean()),
        "facing_error_deg": float(facing_all.mean()),
        "facing_error_deg_std": float(facing_all.std()),
        "walking_facing_error_deg": dict(zip(("p50", "p90", "p99", "max"), percentiles(walking_all, (50, 90, 99, 100)))),
        "beat_consistency": float(np.mean(beats)),
        "upper_body_speed_by_chunk_phase": np.mean([metrics.speed_by_chunk_phase(p) for p in poses], axis=0).tolist(),
        "motion_beats_per_s": motion_beat_count / (len(pose_all) / 30.0),
    }


def evaluate(checkpoint: Path, config: EvalConfig = EvalConfig(), plots: Path | None = None) -> dict:
    """All metrics as one JSON-able dict; writes plots and the clip into ``plots`` when given."""
    models, _ = load_checkpoint(checkpoint)
    talks = [simulate_conversation(EVAL_SEED, i, config.seconds) for i in range(config.conversations)]
    truth = [(t.rotations_6d, t.root_translation) for t in talks]
    reference_pose = np.concatenate([metrics.pose_features(r, t) for r, t in truth])
    stream = AvatarStream(models["vae"], models["generator"], smooth_seams=config.smooth_seams)
    default = [stream_conversation(stream, t, i) for i, t in enumerate(talks)]
    result = {"checkpoint": str(checkpoint), "conversations": config.conversations, "seconds": config.seconds,
              "smooth_seams": config.smooth_seams,
              "default_dial": {"guidance_scale": stream.guidance_scale, "gaze_target": stream.gaze_target},
              "frames": int(sum(len(r) for r, _ in default))}
    result.update(_summary(default, talks, reference_pose))
    result["ground_truth"] = _summary(truth, talks, reference_pose)
    mean_features = models["vae"].motion_mean.numpy().astype(np.float64)
    mean_rotations, mean_root = split_motion(np.tile(mean_features, (talks[0].frames, 1)))
    mean_rotations = sk.matrix_to_rot6d(sk.rot6d_to_matrix(mean_rotations))
    result["mean_pose_baseline"] = _summary([(mean_rotations, mean_root)] * len(talks), talks, reference_pose)
    dial = [[stream_conversation(stream, t, i, guidance_scale=w, gaze_target=config.dial_target)
             for i, t in enumerate(talks)] for w in config.guidance_scales]
    dial_summaries = [_summary(d, talks, reference_pose) for d in dial]
    result["dial_target"] = config.dial_target
    result["guidance_scales"] = list(config.guidance_scales)
    result["eye_contact_ratio_by_scale"] = [d["eye_contact_ratio"] for d in dial_summaries]
    result["gaze_error_deg_by_scale"] = [d["gaze_error_deg"] for d in dial_summaries]
    result["dial_monotonic"] = bool(np.all(np.diff(result["eye_contact_ratio_by_scale"]) > 0))
    ablation = None
    if "generator_no_user" in models:
        stream = AvatarStream(models["vae"], models["generator_no_user"], smooth_seams=config.smooth_seams)
        ablation = [stream_conversation(stream, t, i) for i, t in enumerate(talks)]
        result["no_user_position"] = _summary(ablation, talks, reference_pose)
    gt = result["ground_truth"]
    result["targets"] = {
        "gaze_error_deg_le_30": result["gaze_error_deg"] <= 30.0,
        "facing_error_deg_le_30": result["facing_error_deg"] <= 30.0,
        "gaze_error_within_20pct_of_gt_spread": abs(result["gaze_error_deg"] - gt["gaze_error_deg"]) <= 0.2 * gt["gaze_error_deg_std"],
        "facing_error_within_20pct_of_gt_spread": abs(result["facing_error_deg"] - gt["facing_error_deg"]) <= 0.2 * gt["facing_error_deg_std"],
        "fd_g_below_mean_pose": result["fd_g"] < result["mean_pose_baseline"]["fd_g"],
        "fd_k_below_mean_pose": result["fd_k"] < result["mean_pose_baseline"]["fd_k"],
        "dial_monotonic_over_4_or_more_scales": result["dial_monotonic"] and len(config.guidance_scales) >= 4,
    }
    if "no_user_position" in result:
        result["targets"]["no_user_position_faces_worse"] = (
            result["no_user_position"]["facing_error_deg"] > result["facing_error_deg"])
    if plots is not None:
        from genxr.components.avatar.render import plot_dial, plot_walking_facing, render_clip

        plots.mkdir(parents=True, exist_ok=True)
        plot_dial(result, plots / "avatar_dial.png")
        plot_walking_facing(default, ablation, truth, talks, plots / "avatar_facing.png")
        render_clip(default[0], truth[0], talks[0], plots / "avatar_clip.gif")
    return result


def evaluate_with_threads(checkpoint: Path, config: EvalConfig, plots: Path | None, threads: int) -> dict:
    torch.set_num_threads(threads)
    return evaluate(checkpoint, config, plots)
