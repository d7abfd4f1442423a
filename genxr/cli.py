"""The ``genxr`` command line (typer + rich).

Each area adds its own commands here; heavy imports (torch, ray) happen inside the
command functions so that ``genxr --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    name="genxr",
    help="genxr: interactive XR research platform - tracking, generated worlds, avatars, folding, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
bench_app = typer.Typer(help="Benchmarks. Each prints one JSON object on stdout.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
train_app = typer.Typer(help="Train models: genxr train <model> --preset tiny|cpu|gpu.", no_args_is_help=True)
app.add_typer(train_app, name="train")
eval_app = typer.Typer(help="Evaluate models on held-out data. Each prints one JSON object on stdout.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
from genxr.components.avatar.cli import avatar_app, evaluate as eval_avatar, train as train_avatar  # noqa: E402  (no torch at import)

app.add_typer(avatar_app, name="avatar")
train_app.command("avatar")(train_avatar)
eval_app.command("avatar")(eval_avatar)
from genxr.compression.cli import compress_app, fold_command, prune_command  # noqa: E402  (no torch at import)

app.add_typer(compress_app, name="compress")
app.command("fold")(fold_command)
app.command("prune")(prune_command)
from genxr.components.sim.cli import app as sim_app  # noqa: E402  (no torch at import)

app.add_typer(sim_app, name="sim")
from genxr.components.worldmodel.cli import train_codec as train_worldmodel_codec  # noqa: E402  (no torch at import)
from genxr.components.worldmodel.cli import train_student as train_worldmodel_student  # noqa: E402
from genxr.components.worldmodel.cli import train_teacher as train_worldmodel_teacher  # noqa: E402

train_app.command("worldmodel-codec")(train_worldmodel_codec)
train_app.command("worldmodel-teacher")(train_worldmodel_teacher)
train_app.command("worldmodel-student")(train_worldmodel_student)
from genxr.components.worldmodel.cli import evaluate as eval_worldmodel  # noqa: E402

eval_app.command("worldmodel")(eval_worldmodel)
from genxr.evaluation.cli import dashboard_command, lsl_command, study_app  # noqa: E402  (no torch at import)

app.add_typer(study_app, name="study")
app.command("dashboard")(dashboard_command)
app.command("lsl")(lsl_command)

console = Console(stderr=True)


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of a table")] = False,
) -> None:
    """Report what this machine can run: Python, torch, ONNX Runtime, GPU/TensorRT, OpenXR, Ray."""
    from genxr.platform.doctor import as_json as checks_json
    from genxr.platform.doctor import run_checks

    checks = run_checks()
    if as_json:
        typer.echo(checks_json(checks))
        return
    table = Table(title="genxr doctor")
    for column in ("check", "status", "detail", "what to do"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[yellow]no[/]", check.detail, check.hint)
    Console().print(table)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option(help="directory to write <Message>.schema.json files into")] = None,
) -> None:
    """Write the JSON Schema of every bus message (for Unity, C++ or web clients)."""
    from genxr.platform.messages import MESSAGE_TYPES

    schemas = {name: cls.model_json_schema(mode="serialization") for name, cls in MESSAGE_TYPES.items()}
    if out is None:
        typer.echo(json.dumps(schemas, indent=2))
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, body in schemas.items():
            (out / f"{name}.schema.json").write_text(json.dumps(body, indent=2) + "\n")
    except OSError as err:
        console.print(f"[red]cannot write schemas to {out}: {err}[/]")
        raise typer.Exit(1) from None
    console.print(f"wrote {len(schemas)} schemas to {out}/")


@app.command()
def demo(
    source: Annotated[str | None, typer.Option(help="tracking source: sim, openxr or replay")] = None,
    replay: Annotated[Path | None, typer.Option(help="recording folder to replay (with --source replay)")] = None,
    backend: Annotated[str | None, typer.Option(help="bus backend: inproc or ray")] = None,
    world: Annotated[str | None, typer.Option(help="world service: auto, student or ground_truth")] = None,
    seconds: Annotated[float | None, typer.Option(min=0.1, help="session length (default: the preset's)")] = None,
    out: Annotated[Path | None, typer.Option(help="session folder (default: <output_dir>/demo)")] = None,
    preset: Annotated[str, typer.Option(help="configuration preset")] = "default",
    config: Annotated[Path | None, typer.Option(help="YAML file layered over the preset")] = None,
    hud: Annotated[bool, typer.Option("--hud", help="draw the latency HUD into every display frame")] = False,
    preview: Annotated[bool, typer.Option("--preview", help="show the display frames in a window (needs a display)")] = False,
) -> None:
    """Run the end-to-end session on the embedded default: simulated user, in-process services."""
    from genxr.demo import run_demo
    from genxr.platform.config import ConfigError, load_config

    session: dict = {}
    if source is not None:
        session["source"] = source
    if replay is not None:
        session["replay_path"] = replay
    if world is not None:
        session["world"] = world
    display = {key: True for key, on in (("hud", hud), ("preview", preview)) if on}
    try:
        cfg = load_config(preset, config, **({"session": session} if session else {}),
                          **({"bus": {"backend": backend}} if backend else {}), **({"display": display} if display else {}))
    except ConfigError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    raise typer.Exit(run_demo(cfg, console, out=out, seconds=seconds))


@bench_app.command("bus")
def bench_bus(
    n: Annotated[int, typer.Option(min=1, help="repetitions per measurement")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Cost of an in-process publish, request and msgpack round trip of a two-handed TrackingFrame."""
    from genxr.evaluation.benchmarks.bus import run

    print_json(run(n), as_json)


@bench_app.command("fold")
def bench_fold(
    ratio: Annotated[float, typer.Option(help="fraction of channels removed per group")] = 0.5,
    repeats: Annotated[int, typer.Option(min=1, help="timed runs; the best is reported")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Seconds to fold vs Torch-Pruning's pruning of CIFAR ResNet18, and the parameter/latency reduction."""
    from genxr.evaluation.benchmarks.fold import run

    print_json(run(ratio=ratio, repeats=repeats), as_json)


@bench_app.command("frameloop")
def bench_frameloop(
    seconds: Annotated[float, typer.Option(min=0.5, help="length of the session and of the baseline run")] = 10.0,
    rate_hz: Annotated[float, typer.Option(min=1, max=240, help="display rate")] = 90.0,
    resolution: Annotated[int, typer.Option(min=16, max=2048, help="display width = height, pixels")] = 256,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Per-frame cost of the latency HUD (and the preview window) against the compositor's, same run."""
    from genxr.evaluation.benchmarks.hud import run

    print_json(run(frames, resolution, preview), as_json)


@bench_app.command("sim")
def bench_sim(
    frames: Annotated[int, typer.Option(min=1, help="frames per render measurement")] = 128,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Streamed avatar motion frames per second against the non-causal window baseline on the same engine, same run."""
    from genxr.evaluation.benchmarks.avatar import engines_headed_by, run

    try:
        engines = engines_headed_by(engine)
    except ValueError as err:
        typer.echo(str(err), err=True)
        raise typer.Exit(2) from None
    print_json(run(preset, seconds, threads, engines), as_json)


@bench_app.command("worldmodel")
def bench_worldmodel(
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads (1 is fastest on the shared 2-core machine)")] = 1,
    chunks: Annotated[int, typer.Option(min=1, help="student chunks timed (after 8 warm-up chunks)")] = 48,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Student frames/s and per-chunk latency at 64x64 vs the many-step teacher, same run."""
    from genxr.evaluation.benchmarks.worldmodel import run

    print_json(run(threads=threads, chunks=chunks), as_json)


@bench_app.command("serve")
def bench_serve(
    n: Annotated[int, typer.Option(min=1, help="requests per latency measurement")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
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
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """World-model student unfolded vs folded vs pruned: chunk-step latency (ORT, torch) and held-out PSNR/SSIM."""
    from genxr.evaluation.benchmarks.compress import run

    try:
        result = run(ratio, chunks, rollout_frames, episodes, console=console)
    except ValueError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    print_json(result, as_json)


@bench_app.command("stereo")
def bench_stereo(
    frames: Annotated[int, typer.Option(min=2, help="display frames, mono and stereo interleaved")] = 300,
    resolution: Annotated[int, typer.Option(min=16, max=2048, help="per-eye width = height, pixels")] = 256,
    gl: Annotated[bool, typer.Option("--gl", help="also the swapchain upload of both eyes (GL through EGL)")] = False,
    threads: Annotated[int, typer.Option(min=1, help="torch threads")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Headset path per frame: stereo compositor (two asymmetric views) and upload vs the mono compositor, same run."""
    from genxr.evaluation.benchmarks.stereo import run

    print_json(run(frames, resolution, gl, threads), as_json)


export_app = typer.Typer(help="Export models for deployment engines.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx(
    model: Annotated[str, typer.Option(help="what to export: student (the world model's chunk step), decoder (its "
                                       "frame decoder) or avatar (the avatar's chunk step)")] = "student",
    out: Annotated[Path | None, typer.Option(help="ONNX file to write (a .json report goes beside it); default "
                                             "runs/export/<student_step|frame_decoder|avatar_step>.onnx")] = None,
    fold: Annotated[float | None, typer.Option("--fold", metavar="RATIO", help="fold this fraction of the channels "
                                               "of every group (0 <= RATIO < 1) before export")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="with --fold: L2-prune at that ratio instead (baseline)")] = False,
) -> None:
    """Export a model step to ONNX with its streaming state as plain tensors, and check parity with torch."""
    files = {"student": "student_step.onnx", "decoder": "frame_decoder.onnx", "avatar": "avatar_step.onnx"}
    if model not in files:
        console.print(f"[red]--model {model!r} is not exportable; choose one of {', '.join(files)}[/]")
        raise typer.Exit(2)
    out = out or Path("runs/export") / files[model]
    if model != "student":
        if fold is not None or prune:
            console.print(f"[red]--fold/--prune apply to the student only, not to --model {model}[/]")
            raise typer.Exit(2)
        from genxr.deploy.export_avatar import export_and_summarise

        try:
            console.print(export_and_summarise(model, out))
        except OSError as err:
            console.print(f"[red]{err}[/]")
            raise typer.Exit(2) from None
        return
    from genxr.deploy.compress import export_compressed_student
    from genxr.deploy.export import export_student_step

    if prune and fold is None:
        console.print("[red]--prune needs --fold RATIO (the fraction of channels to prune)[/]")
        raise typer.Exit(2)
    try:
        report = export_student_step(out) if fold is None else export_compressed_student(out, fold, "prune" if prune else "fold")
    except (ValueError, RuntimeError) as err:
        console.print(f"[red]--fold {fold}: {err}[/]")
        raise typer.Exit(2) from None
    console.print(f"wrote {out}; parity vs torch over {len(report['parity_max_abs_error_per_chunk'])} chunks: "
                  f"max abs error {max(report['parity_max_abs_error_per_chunk']):.2e}")
    if "compression" in report:
        console.print(f"{report['compression']['method']} {fold}: parameters {report['compression']['params_before']} -> "
                      f"{report['compression']['params_after']}, MACs -{report['compression']['mac_reduction']:.1%}")


@app.command("serve")
def serve_models(
    address: Annotated[str | None, typer.Option(help="join this Ray cluster (ray start --head) instead of starting one")] = None,
    seconds: Annotated[float | None, typer.Option(min=0.1, help="stop after this long (default: until Ctrl-C)")] = None,
    world: Annotated[str, typer.Option(help="world model: student (what sessions use), ground_truth or echo")] = "student",
    engine: Annotated[str | None, typer.Option(help="engine of the student and the avatar: torch, onnxruntime or "
                                                    "tensorrt (default: onnxruntime where installed)")] = None,
) -> None:
    """Serve genxr's world model and avatar with Ray Serve (a local instance on 127.0.0.1, or a cluster)."""
    import time

    import ray
    from ray import serve

    from genxr.deploy.serve import APP_NAME, connect, describe_deployments, serve_options

    try:
        options = serve_options(world, engine)
    except ValueError as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from None
    started_here = not ray.is_initialized()
    try:
        handles = connect(address, **options)
    except Exception as err:  # Ray reports start/join failures with many exception types
        console.print(f"[red]cannot start or join Ray (address {address!r}): {type(err).__name__}: {err}[/]")
        raise typer.Exit(2) from None
    console.print(f"serving app {APP_NAME!r}: {describe_deployments(handles)}; sessions connect with "
                  f"--backend ray{'' if address is None else f' and GENXR_BUS__RAY_ADDRESS={address}'}. Ctrl-C stops.")
    try:
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    if started_here:
        serve.shutdown()
        ray.shutdown()


@bench_app.command("recorder")
def bench_recorder(
    seconds: Annotated[float, typer.Option(min=0.1, help="session seconds to record")] = 10.0,
    resolution: Annotated[int, typer.Option(min=16, max=1024, help="image width = height, pixels")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")] = False,
) -> None:
    """Crash-safe recorder throughput at 90 Hz (both hands + an image per frame) and fsync ms per session second."""
    from genxr.evaluation.benchmarks.recorder import run

    print_json(run(seconds=seconds, resolution=resolution), as_json)


def print_json(result: dict, compact: bool) -> None:
    """Prints a benchmark's result: one line with ``--json``, indented otherwise."""
    typer.echo(json.dumps(result) if compact else json.dumps(result, indent=2))


def main() -> None:
    app()
