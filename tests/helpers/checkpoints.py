"""Edited copies of shipped checkpoints, for the checkpoint-validation tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path


def edited_copy(source: Path, target: Path, edit: Callable[[dict], None]) -> tuple[Path, Path]:
    """(folder, its config.json): a copy of the checkpoint ``source`` at ``target`` whose parsed
    config.json went through ``edit``."""
    directory = Path(shutil.copytree(source, target))
    path = directory / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return directory, path


def set_key(*keys_and_value) -> Callable[[dict], None]:
    """An edit setting the nested key ``keys`` to the last argument."""
    *keys, value = keys_and_value

    def edit(config: dict) -> None:
        for key in keys[:-1]:
            config = config[key]
        config[keys[-1]] = value
    return edit


def delete_key(*keys) -> Callable[[dict], None]:
    """An edit deleting the nested key ``keys``."""
    def edit(config: dict) -> None:
        for key in keys[:-1]:
            config = config[key]
        del config[keys[-1]]
    return edit
