"""``genxr export onnx`` and ``genxr serve``: models exported for the deployment engines and
served with Ray Serve (:mod:`genxr.deploy`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from genxr.cli.output import fail, print_message
from genxr.platform.config import DEFAULT_WORLD_FOLD

export_app = typer.Typer(help="Export models for deployment engines.", no_args_is_help=True)


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
        fail(f"--model {model!r} is not exportable; choose one of {', '.join(files)}")
    out = out or Path("runs/export") / files[model]
    if model != "student":
        if fold is not None or prune:
            fail(f"--fold/--prune apply to the student only, not to --model {model}")
        from genxr.deploy.export.avatar import export_and_summarise

        try:
            print_message(export_and_summarise(model, out))
        except OSError as err:
            fail(f"{err}")
        return
    from genxr.deploy.export.compressed import export_compressed_student
    from genxr.deploy.export.student import export_student_step

    if prune and fold is None:
        fail("--prune needs --fold RATIO (the fraction of channels to prune)")
    try:
        report = export_student_step(out) if fold is None else export_compressed_student(out, fold, "prune" if prune else "fold")
    except (ValueError, RuntimeError) as err:
        fail(f"--fold {fold}: {err}")
    print_message(f"wrote {out}; parity vs torch over {len(report['parity_max_abs_error_per_chunk'])} chunks: "
                  f"max abs error {max(report['parity_max_abs_error_per_chunk']):.2e}")
    if "compression" in report:
        print_message(f"{report['compression']['method']} {fold}: parameters {report['compression']['params_before']} -> "
                      f"{report['compression']['params_after']}, MACs -{report['compression']['mac_reduction']:.1%}")


def serve_models(
    address: Annotated[str | None, typer.Option(help="join this Ray cluster (ray start --head) instead of starting one")] = None,
    seconds: Annotated[float | None, typer.Option(min=0.1, help="stop after this long (default: until Ctrl-C)")] = None,
    world: Annotated[str, typer.Option(help="world model: student (what sessions use), ground_truth or echo")] = "student",
    engine: Annotated[str | None, typer.Option(help="engine of the student and the avatar: torch, onnxruntime or "
                                                    "tensorrt (default: onnxruntime where installed)")] = None,
    fold: Annotated[float, typer.Option("--fold", metavar="RATIO", help="serve the student folded at this fraction of "
                                        "the channels of every group (0 <= RATIO < 1; 0: the student as shipped)")]
    = DEFAULT_WORLD_FOLD,
) -> None:
    """Serve genxr's world model and avatar with Ray Serve (a local instance on 127.0.0.1, or a cluster)."""
    import time

    import ray
    from ray import serve

    from genxr.deploy.serving.deployments import APP_NAME, connect, describe_deployments, serve_options

    try:
        options = serve_options(world, engine, fold)
    except ValueError as err:
        fail(f"{err}")
    started_here = not ray.is_initialized()
    try:
        handles = connect(address, **options)
    except Exception as err:  # Ray reports start/join failures with many exception types
        fail(f"cannot start or join Ray (address {address!r}): {type(err).__name__}: {err}")
    print_message(f"serving app {APP_NAME!r}: {describe_deployments(handles)}; sessions connect with "
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
