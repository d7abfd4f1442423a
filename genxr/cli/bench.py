"""``genxr bench ...``: each benchmark prints one JSON object on stdout, measured against a
baseline from the same run (:mod:`genxr.evaluation.benchmarks`)."""

from __future__ import annotations

from typing import Annotated

import typer

from genxr.cli.output import JsonFlag, console, fail, print_json

bench_app = typer.Typer(help="Benchmarks. Each prints one JSON object on stdout.", no_args_is_help=True)


@bench_app.command("bus")
def bench_bus(
    n: Annotated[int, typer.Option(min=1, help="repetitions per measurement")] = 2000,
    as_json: JsonFlag = False,
) -> None:
    """Cost of an in-process publish, request and msgpack round trip of a two-handed TrackingFrame."""
    from genxr.evaluation.benchmarks.bus import run

    print_json(run(n), as_json)


@bench_app.command("fold")
def bench_fold(
    ratio: Annotated[float, typer.Option(help="fraction of channels removed per group")] = 0.5,
    repeats: Annotated[int, typer.Option(min=1, help="timed runs; the best is reported")] = 2,
    as_json: JsonFlag = False,
) -> None:
    """Seconds to fold vs Torch-Pruning's pruning of CIFAR ResNet18, and the parameter/latency reduction."""
    from genxr.evaluation.benchmarks.fold import run

    print_json(run(ratio=ratio, repeats=repeats), as_json)


@bench_app.command("fold-pretrained")
def bench_fold_pretrained(
    ratios: Annotated[str, typer.Option(help="comma-separated fractions of channels/heads removed per group")] = "0.3,0.5",
    models: Annotated[str, typer.Option(help="comma-separated subset of all-MiniLM-L6-v2,paraphrase-MiniLM-L3-v2")] = "",
    sentences: Annotated[int, typer.Option(min=2, max=50, help="benchmark sentences used (25 paraphrase pairs)")] = 50,
    seeds: Annotated[str, typer.Option(help="comma-separated k-means seeds fold runs with (means reported)")] = "0,1,2",
    as_json: JsonFlag = False,
) -> None:
    """Fold (data-free repair) vs L2 pruning on pretrained sentence encoders shipped in PyPI packages:
    embedding cosine to the original, params/MACs and wall time per model and ratio."""
    from transformers.utils import logging

    from genxr.evaluation.benchmarks.fold_pretrained import MODELS, ModelUnavailable, run

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        ratio_values = tuple(float(r) for r in ratios.split(","))
        chosen = tuple(models.split(",")) if models else MODELS
        result = run(ratio_values, chosen, sentences, seeds=tuple(int(x) for x in seeds.split(",")))
    except (ModelUnavailable, ValueError) as err:
        fail(f"{err}")
    print_json(result, as_json)


@bench_app.command("frameloop")
def bench_frameloop(
    seconds: Annotated[float, typer.Option(min=0.5, help="length of the session and of the baseline run")] = 10.0,
    rate_hz: Annotated[float, typer.Option(min=1, max=240, help="display rate")] = 90.0,
    resolution: Annotated[int, typer.Option(min=16, max=2048, help="display width = height, pixels")] = 256,
    as_json: JsonFlag = False,
) -> None:
    """End-to-end session timing (frame time, misses, compositor, motion-to-photon, content latency)
    against the same loop without a model, measured in the same run."""
    from genxr.evaluation.benchmarks.frameloop import run

    print_json(run(seconds, rate_hz, resolution), as_json)


@bench_app.command("hud")
def bench_hud(
    frames: Annotated[int, typer.Option(min=2, help="display frames (90 Hz display time)")] = 900,
    resolution: Annotated[int, typer.Option(min=16, max=2048, help="display width = height, pixels")] = 256,
    preview: Annotated[bool, typer.Option("--preview", help="also the preview window (needs a display; xvfb-run -a)")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Per-frame cost of the latency HUD (and the preview window) against the compositor's, same run."""
    from genxr.evaluation.benchmarks.hud import run

    print_json(run(frames, resolution, preview), as_json)


@bench_app.command("sim")
def bench_sim(
    frames: Annotated[int, typer.Option(min=1, help="frames per render measurement")] = 128,
    as_json: JsonFlag = False,
) -> None:
    """Simulator throughput: renderer frames/s at 64x64 (batched, single) and 256x256, TrackingFrames/s."""
    from genxr.evaluation.benchmarks.sim import run

    print_json(run(frames), as_json)


@bench_app.command("avatar")
def bench_avatar(
    preset: Annotated[str, typer.Option(help="shipped checkpoint to run")] = "cpu",
    seconds: Annotated[float, typer.Option(min=1.0, help="seconds of motion streamed per measurement")] = 20.0,
    threads: Annotated[int, typer.Option(min=1, help="torch intra-op threads (1: faster at these sizes, robust on a shared machine)")] = 1,
    engine: Annotated[str, typer.Option(help="torch or onnxruntime: the engine of the top-level keys (both are measured)")] = "torch",
    as_json: JsonFlag = False,
) -> None:
    """Streamed avatar motion frames per second against the non-causal window baseline on the same engine, same run."""
    from genxr.evaluation.benchmarks.avatar import engines_headed_by, run

    try:
        engines = engines_headed_by(engine)
    except ValueError as err:
        fail(str(err))
    print_json(run(preset, seconds, threads, engines), as_json)


@bench_app.command("worldmodel")
def bench_worldmodel(
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads (1 is fastest on the shared 2-core machine)")] = 1,
    chunks: Annotated[int, typer.Option(min=1, help="student chunks timed (after 8 warm-up chunks)")] = 48,
    as_json: JsonFlag = False,
) -> None:
    """Student frames/s and per-chunk latency at 64x64 vs the many-step teacher, same run."""
    from genxr.evaluation.benchmarks.worldmodel import run

    print_json(run(threads=threads, chunks=chunks), as_json)


@bench_app.command("serve")
def bench_serve(
    n: Annotated[int, typer.Option(min=1, help="requests per latency measurement")] = 200,
    as_json: JsonFlag = False,
) -> None:
    """Ray Serve round trip vs a bare handle and the in-process bus, and throughput with 1/2/4 sessions."""
    import contextlib
    import sys

    from genxr.evaluation.benchmarks.serve import run

    # Ray's driver prints its replicas' errors (e.g. the controller killed at shutdown) to
    # stdout from a background thread; stdout must carry the JSON only.
    with contextlib.redirect_stdout(sys.stderr):
        result = run(n)
    print_json(result, as_json)


@bench_app.command("compress")
def bench_compress(
    ratio: Annotated[float, typer.Option(help="fraction of channels removed per group, folded and pruned alike")] = 0.3,
    chunks: Annotated[int, typer.Option(help="chunk steps timed per variant and engine (median reported)")] = 100,
    rollout_frames: Annotated[int, typer.Option(help="generated frames (30 Hz) per held-out rollout")] = 64,
    episodes: Annotated[int, typer.Option(help="held-out episodes, one rollout each")] = 4,
    as_json: JsonFlag = False,
) -> None:
    """World-model student unfolded vs folded vs pruned: chunk-step latency (ORT, torch) and held-out PSNR/SSIM."""
    from genxr.evaluation.benchmarks.compress import run

    try:
        result = run(ratio, chunks, rollout_frames, episodes, console=console)
    except ValueError as err:
        fail(f"{err}")
    print_json(result, as_json)


@bench_app.command("stereo")
def bench_stereo(
    frames: Annotated[int, typer.Option(min=2, help="display frames, mono and stereo interleaved")] = 300,
    resolution: Annotated[int, typer.Option(min=16, max=2048, help="per-eye width = height, pixels")] = 256,
    gl: Annotated[bool, typer.Option("--gl", help="also the swapchain upload of both eyes (GL through EGL)")] = False,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Headset path per frame: stereo compositor (two asymmetric views) and upload vs the mono compositor, same run."""
    from genxr.evaluation.benchmarks.stereo import run

    print_json(run(frames, resolution, gl, threads), as_json)


@bench_app.command("compositor")
def bench_compositor(
    frames: Annotated[int, typer.Option(min=2, help="stereo frames per compositor and size, interleaved")] = 60,
    size: Annotated[list[str] | None, typer.Option(help="256, 1024 or headset (2064x2208); repeat for several")] = None,
    as_json: JsonFlag = False,
) -> None:
    """CPU vs GL compositor per eye (world timewarp + avatar into the swapchain texture) at 256^2, 1024^2, headset."""
    from genxr.evaluation.benchmarks.compositor import SIZES, run

    try:
        result = run(frames, tuple(size) if size else tuple(SIZES))
    except ValueError as err:
        fail(f"{err}")
    print_json(result, as_json)


@bench_app.command("recorder")
def bench_recorder(
    seconds: Annotated[float, typer.Option(min=0.1, help="session seconds to record")] = 10.0,
    resolution: Annotated[int, typer.Option(min=16, max=1024, help="image width = height, pixels")] = 64,
    as_json: JsonFlag = False,
) -> None:
    """Crash-safe recorder throughput at 90 Hz (both hands + an image per frame) and fsync ms per session second."""
    from genxr.evaluation.benchmarks.recorder import run

    print_json(run(seconds=seconds, resolution=resolution), as_json)


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[float, typer.Option(min=0.01, help="length of the one session, minutes")] = 10.0,
    out: Annotated[str | None, typer.Option(help="session folder to keep (default: a temporary one, removed)")] = None,
    rate_hz: Annotated[float, typer.Option(min=1, max=240, help="display rate")] = 90.0,
    resolution: Annotated[int, typer.Option(min=16, max=2048, help="display width = height, pixels")] = 256,
    as_json: JsonFlag = False,
) -> None:
    """One long end-to-end session: RSS and its slope, deadline misses, world/avatar rates and failures per minute."""
    from pathlib import Path

    from genxr.evaluation.benchmarks.soak import run
    from genxr.xr_runtime.session import SessionError

    try:
        result = run(minutes, Path(out) if out is not None else None, rate_hz, resolution,
                     progress=lambda line: console.print(line, markup=False, highlight=False))
    except (SessionError, ValueError) as err:
        fail(f"{err}")
    print_json(result, as_json)
