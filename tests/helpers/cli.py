"""Reading what a ``genxr`` command printed without depending on the terminal's width.

Messages and errors go to stderr through rich, which wraps them to the terminal (``COLUMNS``);
results go to stdout as JSON. Tests parse stdout, and match messages with :func:`said`.
"""

from __future__ import annotations


def said(text: str) -> str:
    """``text`` with every run of whitespace made one space: what a message says, however it wrapped."""
    return " ".join(text.split())
