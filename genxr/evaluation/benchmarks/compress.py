"""``genxr bench compress``: the world-model student unfolded vs folded vs pruned at one ratio.

One run, three variants of the shipped student: ``unfolded`` (as shipped), ``folded`` and
``pruned`` (L2 group magnitude, the same groups) with ``ratio`` of the channels of every
compressed group removed (:func:`genxr.deploy.export.compressed.compress_student`). For each:

* ``params`` and ``macs`` (Torch-Pruning's count for one chunk forward) and the
  reduction against unfolded;
* latency of one steady-state chunk step - a ``chunk_frames`` chunk against a full KV
  cache, the unit :mod:`genxr.deploy.export.student` exports; a generated chunk costs ``steps + 1``
  (3) of them plus decoding - in ONNX Runtime (one intra-op thread, no spinning) and in
  eager torch (``torch.set_num_threads(1)``): the median (and the 25th/75th percentiles,
  to show the noise) of ``chunks`` timed steps after 5 warm-up steps. The variants are timed round-robin, step by step, so a change of load on a
  shared machine falls on all three alike; ``*_speedup_vs_unfolded`` = unfolded time /
  variant time, measured in this run;
* the ONNX Runtime parity (max abs error over a 4-chunk rollout, the export's own check);
* the model's own quality (:mod:`genxr.components.worldmodel.evaluate`): PSNR (dB) and SSIM
  of the generated frames against the simulator's ground truth over short held-out
  rollouts - ``episodes`` fresh held-out episodes, one rollout of ``rollout_frames`` model
  frames (30 Hz) from the first frame of each, the same episodes and the same stream noise
  seed for all three - and the drop against unfolded. Two references from the same
  rollouts: repeating the anchor frame and the codec's reconstruction (the ceiling).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.progress import Progress

from genxr.platform.stats import percentiles
from genxr.platform.units import MS_PER_S

VARIANTS = ("unfolded", "folded", "pruned")


def _check(ratio: float, chunks: int, rollout_frames: int, episodes: int) -> None:
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"--ratio {ratio} must be in (0, 1): the fraction of channels removed per group")
    for name, value, low in (("--chunks", chunks, 1), ("--rollout-frames", rollout_frames, 2), ("--episodes", episodes, 1)):
        if value < low:
            raise ValueError(f"{name} {value} must be at least {low}")


def _time_round_robin(engines: dict[str, object], feeds: dict[str, dict], runs: int) -> dict[str, list[float]]:
    """25th, 50th and 75th percentile milliseconds per ``engines`` entry: 5 warm-up calls each, then
    ``runs`` rounds of one call each."""
    for name, engine in engines.items():
        for _ in range(5):
            engine.run(feeds[name])
    samples: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(runs):
        for name, engine in engines.items():
            start = time.perf_counter()
            engine.run(feeds[name])
            samples[name].append(time.perf_counter() - start)
    return {name: percentiles(values, (25, 50, 75), scale=MS_PER_S) for name, values in samples.items()}


def quality(students: dict[str, object], rollout_frames: int, episodes: int, data_dir: Path) -> dict[str, dict]:
    """PSNR/SSIM of each student's held-out rollouts vs ground truth, plus the anchor-copy and codec
    references, over ``episodes`` held-out episodes (one rollout of ``rollout_frames`` frames from frame 0)."""
    from genxr.components.sim.dataset import DatasetConfig, write_dataset
    from genxr.components.worldmodel import metrics
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
    from genxr.components.worldmodel.data import EVALUATION_FIELDS, load_episodes
    from genxr.components.worldmodel.evaluate import EvalConfig, rollout

    config = EvalConfig(rollout_frames=rollout_frames, starts=(0,), episodes=episodes)
    write_dataset(data_dir, DatasetConfig(episodes=episodes, frames=rollout_frames * config.frame_stride + 1,
                                          split="heldout"), progress=False)
    held_out = load_episodes(data_dir, EVALUATION_FIELDS, episodes)
    codec, _ = load_model(CHECKPOINT_ROOT / "codec")
    generated: dict[str, list[np.ndarray]] = {}
    truth = []
    torch.manual_seed(config.seed)
    for episode in range(held_out.count):
        clip = held_out.clip(episode, 0, rollout_frames + 1, config.frame_stride)
        for name, frames in rollout(students, codec, clip, config).items():
            generated.setdefault(name, []).append(frames)
        truth.append(clip["rgb"][1:].astype(np.float32) / 255.0)
    truth_frames = np.concatenate(truth)
    return {name: {"psnr": metrics.psnr(np.concatenate(frames), truth_frames),
                   "ssim": metrics.ssim(np.concatenate(frames), truth_frames)} for name, frames in generated.items()}


def run(ratio: float = 0.3, chunks: int = 100, rollout_frames: int = 64, episodes: int = 4, seed: int = 1,
        console: Console | None = None) -> dict:
    """The comparison described in the module docstring, as a JSON-able dict (progress on ``console``,
    default stderr)."""
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
    from genxr.deploy.export.compressed import compress_student
    from genxr.deploy.export.student import export_step

    _check(ratio, chunks, rollout_frames, episodes)
    console = console or Console(stderr=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="genxr-bench-compress-") as tmp, Progress(console=console) as progress:
            task = progress.add_task("compress", total=4 + len(VARIANTS))
            shipped, _ = load_model(CHECKPOINT_ROOT / "student")
            students, reports = {"unfolded": shipped}, {}
            for name, method in (("folded", "fold"), ("pruned", "prune")):
                progress.update(task, description=f"{method} at {ratio}")
                try:
                    students[name], reports[name] = compress_student(shipped, ratio, method)
                except ValueError as err:
                    raise ValueError(f"--ratio {ratio}: {err}") from err
                progress.advance(task)
            steps = {}
            for name, student in students.items():
                progress.update(task, description=f"export {name} (streams, ONNX, parity)")
                steps[name] = export_step(Path(tmp) / f"{name}.onnx", seed, student)
                progress.advance(task)
            progress.update(task, description=f"time {chunks} chunk steps x 3 variants")
            feeds = {name: step.feeds for name, step in steps.items()}
            ort_ms = _time_round_robin({n: s.exported for n, s in steps.items()}, feeds, chunks)
            torch_ms = _time_round_robin({n: s.reference for n, s in steps.items()}, feeds, chunks)
            progress.advance(task)
            progress.update(task, description=f"held-out rollouts ({episodes} x {rollout_frames} frames)")
            quality_started = time.perf_counter()
            scores = quality(students, rollout_frames, episodes, Path(tmp) / "heldout")
            quality_s = time.perf_counter() - quality_started
            progress.advance(task)
    finally:
        torch.set_num_threads(threads)
    base_params = sum(p.numel() for p in shipped.parameters())
    base_macs = reports["folded"].macs_before
    variants = {}
    for name in VARIANTS:
        params = sum(p.numel() for p in students[name].parameters())
        macs = reports[name].macs_after if name in reports else base_macs
        variants[name] = {
            "params": params, "param_reduction": 1.0 - params / base_params,
            "macs": macs, "mac_reduction": 1.0 - macs / base_macs,
            "ort_ms_per_chunk_step": float(ort_ms[name][1]), "torch_ms_per_chunk_step": float(torch_ms[name][1]),
            "ort_ms_p25_p75": [float(ort_ms[name][0]), float(ort_ms[name][2])],
            "torch_ms_p25_p75": [float(torch_ms[name][0]), float(torch_ms[name][2])],
            "ort_speedup_vs_unfolded": float(ort_ms["unfolded"][1] / ort_ms[name][1]),
            "torch_speedup_vs_unfolded": float(torch_ms["unfolded"][1] / torch_ms[name][1]),
            "parity_max_abs_error": max(steps[name].parity_max_abs_error_per_chunk),
            "psnr": scores[name]["psnr"], "ssim": scores[name]["ssim"],
            "psnr_drop_db": scores["unfolded"]["psnr"] - scores[name]["psnr"],
            "ssim_drop": scores["unfolded"]["ssim"] - scores[name]["ssim"],
        }
        if name in reports:
            variants[name]["groups"] = {g.name: [g.before, g.after] for g in reports[name].groups}
    flat = {f"{name}_{key}": variants[name][key] for name in ("folded", "pruned")
            for key in ("param_reduction", "ort_speedup_vs_unfolded", "torch_speedup_vs_unfolded", "psnr_drop_db",
                        "ssim_drop")}
    return {"ratio": ratio, "chunks_timed": chunks, "threads": 1, "rollout_frames": rollout_frames,
            "episodes": episodes, **flat, "variants": variants,
            "references": {"anchor_copy_psnr": scores["anchor_copy"]["psnr"], "codec_psnr": scores["codec"]["psnr"]},
            "quality_s": quality_s, "total_s": time.perf_counter() - started}
