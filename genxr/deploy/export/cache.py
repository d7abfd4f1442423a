"""Exported ONNX steps cached on disk, once per model checkpoint, shared by replicas and sessions.

:func:`cached_onnx` returns ``<folder>/<key>.onnx`` - the key names the step and the content
hash of its checkpoint and of the source files that define the step (:func:`content_hash`),
so a retrained checkpoint or a changed step gets a new export and an unchanged one is never
exported twice. The folder (:func:`cache_folder`) is
``$GENXR_CACHE/onnx``, else ``$XDG_CACHE_HOME/genxr/onnx``, else ``~/.cache/genxr/onnx``.
A cached file that fails its check (a torn write, another step's graph: :func:`check_onnx`)
is re-exported with a RuntimeWarning. Exports from concurrent replicas are serialised by a
file lock (``filelock``, the lock Ray itself uses) and land by an atomic rename. Exports of
older checkpoints or step versions are left in place (another replica may still run one);
deleting the folder is always safe - it only costs a fresh export.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_folder() -> Path:
    """Where exported ONNX files are kept (see the module docstring)."""
    if os.environ.get("GENXR_CACHE"):
        return Path(os.environ["GENXR_CACHE"]) / "onnx"
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "genxr" / "onnx"


def content_hash(*paths: Path) -> str:
    """SHA-256 (first 16 hex digits) of the names and contents of ``paths``: files, and the files
    directly in folders (a checkpoint folder; the source files that define the exported step)."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else [root]
        if not files or not all(f.is_file() for f in files):
            raise FileNotFoundError(f"{str(root)!r} holds no files to hash (a checkpoint folder or a source file)")
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def check_onnx(path: Path, input_names: tuple[str, ...], optional: tuple[str, ...] = ()) -> None:
    """Raises ValueError unless ``path`` is a valid ONNX model whose inputs are ``input_names``, in
    order, less any of ``optional`` (inputs a model may not use, which the exporter leaves out)."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf decode errors and onnx's ValidationError have no common base
        raise ValueError(f"{str(path)!r} is not a valid ONNX model: {type(err).__name__}: {err}") from err
    got = tuple(i.name for i in model.graph.input)
    if got != tuple(n for n in input_names if n in got or n not in optional):
        raise ValueError(f"{str(path)!r} has inputs {list(got)}, expected {list(input_names)}")


def _inline_external_data(path: Path) -> None:
    """Moves weights an exporter wrote beside ``path`` (``<name>.data``, as torch's dynamo exporter
    does) into the file itself, so the cached file is one file that survives being renamed."""
    import onnx

    sidecars = [p for p in path.parent.glob(f"{path.name}*") if p != path]
    if not sidecars:
        return
    model = onnx.load(str(path), load_external_data=True)
    onnx.save_model(model, str(path), save_as_external_data=False)
    for sidecar in sidecars:
        sidecar.unlink()


def cached_onnx(key: str, export: Callable[[Path], Any], check: Callable[[Path], None],
                folder: Path | None = None) -> Path:
    """``<folder>/<key>.onnx``, exported by ``export(path)`` unless a file there passes ``check``.

    A file that fails ``check`` is re-exported with a RuntimeWarning naming the failure. The
    export writes to a temporary name (with its ``.json`` report beside it, if ``export``
    writes one) and is renamed into place, under a file lock held across check and export; weights
    the exporter put in a side file are moved into the ``.onnx`` first. An export that fails, or
    fails ``check`` itself, leaves nothing behind and raises."""
    from filelock import FileLock

    folder = Path(folder) if folder is not None else cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.onnx"
    with FileLock(str(folder / f"{key}.lock")):
        if path.exists():
            try:
                check(path)
                return path
            except ValueError as err:
                warnings.warn(f"cached ONNX file is unusable ({err}); re-exporting it", RuntimeWarning, stacklevel=2)
        partial = folder / f".{key}.{os.getpid()}.onnx"
        report = partial.with_suffix(".json")
        try:
            export(partial)
            _inline_external_data(partial)
            check(partial)
        except BaseException:
            for leftover in folder.glob(f"{partial.stem}.*"):
                leftover.unlink(missing_ok=True)
            raise
        if report.exists():
            os.replace(report, path.with_suffix(".json"))
        os.replace(partial, path)
    return path
