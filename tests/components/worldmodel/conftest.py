"""Fixtures of the world-model tests: one torch thread, a tiny data set and a tiny trained run."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A run directory trained end to end with the ``tiny`` preset: data, codec, teachers, student, and world
    model v2 with its head-only ablation."""
    from genxr.components.worldmodel.distill import train_student
    from genxr.components.worldmodel.pixel_train import PIXEL_PRESETS, train_pixel
    from genxr.components.worldmodel.train import (
        PRESETS,
        ensure_data,
        train_codec,
        train_teacher,
    )

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("worldmodel_tiny")
    preset = PRESETS["tiny"]
    train_dir, heldout = ensure_data(preset, None, out)
    train_codec(preset, train_dir, out)
    train_teacher(preset, train_dir, out)
    train_teacher(preset, train_dir, out, head_only=True)
    train_student(preset, train_dir, out)
    train_pixel(PIXEL_PRESETS["tiny"], train_dir, out)
    train_pixel(PIXEL_PRESETS["tiny"], train_dir, out, head_only=True)
    return out, preset, train_dir, heldout
