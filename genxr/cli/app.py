"""The root ``genxr`` command: registers each area's commands and holds ``doctor`` and ``schema``.

Each area's commands live in their own module of :mod:`genxr.cli`; heavy imports (torch, ray)
happen inside the command functions so that ``genxr --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from genxr.cli.avatar import avatar_app
from genxr.cli.avatar import evaluate as eval_avatar
from genxr.cli.avatar import train as train_avatar
from genxr.cli.bench import bench_app
from genxr.cli.compress import compress_app, fold_command, prune_command
from genxr.cli.demo import demo
from genxr.cli.deploy import export_app, serve_models
from genxr.cli.evaluation import dashboard_command, lsl_command
from genxr.cli.importer import import_command
from genxr.cli.output import JsonFlag, fail, print_message
from genxr.cli.sim import sim_app
from genxr.cli.study import study_app
from genxr.cli.worldmodel import evaluate as eval_worldmodel
from genxr.cli.worldmodel import train_codec, train_pixel, train_student, train_teacher

app = typer.Typer(
    name="genxr",
    help="genxr: interactive XR research platform - tracking, generated worlds, avatars, folding, serving.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
train_app = typer.Typer(help="Train models: genxr train <model> --preset tiny|cpu|gpu.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models on held-out data. Each prints one JSON object on stdout.", no_args_is_help=True)

app.command("demo")(demo)
app.add_typer(bench_app, name="bench")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(avatar_app, name="avatar")
app.add_typer(compress_app, name="compress")
app.add_typer(sim_app, name="sim")
app.add_typer(study_app, name="study")
app.add_typer(export_app, name="export")
app.command("fold")(fold_command)
app.command("prune")(prune_command)
app.command("serve")(serve_models)
app.command("dashboard")(dashboard_command)
app.command("lsl")(lsl_command)
app.command("import")(import_command)
train_app.command("avatar")(train_avatar)
train_app.command("worldmodel-codec")(train_codec)
train_app.command("worldmodel-teacher")(train_teacher)
train_app.command("worldmodel-student")(train_student)
train_app.command("worldmodel-pixel")(train_pixel)
eval_app.command("avatar")(eval_avatar)
eval_app.command("worldmodel")(eval_worldmodel)


@app.command()
def doctor(
    as_json: JsonFlag = False,
) -> None:
    """Report what this machine can run: Python, torch, ONNX Runtime, GPU/TensorRT, OpenXR, Ray."""
    from genxr.platform.doctor import as_json as checks_json
    from genxr.platform.doctor import run_checks

    checks = run_checks()
    if as_json:
        typer.echo(checks_json(checks))
        return
    table = Table(title="genxr doctor")
    table.add_column("check", no_wrap=True)  # names never break; the free text folds
    table.add_column("status", no_wrap=True)
    for column in ("detail", "what to do"):
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
        fail(f"cannot write schemas to {out}: {err}", 1)
    print_message(f"wrote {len(schemas)} schemas to {out}/")


def main() -> None:
    app()
