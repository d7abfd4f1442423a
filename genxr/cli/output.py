"""How every ``genxr`` command prints: results on stdout, messages and errors on stderr.

Messages go through :func:`print_message`, errors through :func:`print_error` / :func:`fail`: markup off (a path or a value with
brackets prints as it is), soft wrap (the terminal wraps long lines, rich never breaks one
mid-word), so an error reads the same at any terminal width and can be matched by tests
after normalising whitespace.
"""

from __future__ import annotations

import json
from typing import Annotated, NoReturn

import typer
from rich.console import Console

console = Console(stderr=True)
"""The one console for progress, messages and errors (stderr; stdout carries results only)."""

JsonFlag = Annotated[bool, typer.Option("--json", help="one compact JSON line (default: indented JSON)")]
"""The ``--json`` option of every command that prints a JSON result."""

USAGE_ERROR = 2
"""Exit status of a command refused for its input (typer's own for bad options)."""


def print_json(result: dict, compact: bool) -> None:
    """Prints a command's result on stdout: one line with ``--json``, indented otherwise."""
    typer.echo(json.dumps(result) if compact else json.dumps(result, indent=2))


def print_message(message: str, style: str | None = None) -> None:
    """Prints ``message`` on stderr verbatim (no markup: a path with brackets prints as it is) and
    never wrapped by rich (the terminal wraps it, so no word is broken)."""
    console.print(message, style=style, markup=False, highlight=False, soft_wrap=True)


def print_error(message: str) -> None:
    """Prints ``message`` in red with :func:`print_message`."""
    print_message(message, style="red")


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    """Prints ``message`` with :func:`print_error` and exits with ``code``."""
    print_error(message)
    raise typer.Exit(code)
