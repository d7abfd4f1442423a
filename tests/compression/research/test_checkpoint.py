"""Checkpoints reload after folding and pruning with equal outputs."""

from __future__ import annotations

import json

import pytest
import torch

from genxr.compression import fold, prune
from genxr.compression.heads import attention_modules
from genxr.compression.research.checkpoint import CheckpointError, load_checkpoint, read_config, save_checkpoint
from tests.helpers.compression import TINY


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("method", ["none", "fold", "prune"])
def test_compressed_checkpoint_reloads_with_equal_outputs(tiny, tmp_path, name, method):
    model, x = tiny(name)
    if method == "fold":
        model, _ = fold(model, x, 0.5)
    elif method == "prune":
        model, _ = prune(model, x, 0.5, "l1")
    save_checkpoint(model, tmp_path / "ckpt", metadata={"method": method})
    loaded, config = load_checkpoint(tmp_path / "ckpt")
    assert torch.equal(loaded(x), model(x))
    assert config["metadata"] == {"method": method}
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in model.parameters())
    for (n1, a1), (n2, a2) in zip(attention_modules(model).items(), attention_modules(loaded).items(), strict=True):
        assert (n1, a1.num_heads, a1.num_kv_heads) == (n2, a2.num_heads, a2.num_kv_heads)


def test_config_is_plain_json_with_architecture_and_widths(tiny, tmp_path):
    model, x = tiny("resnet18")
    folded, _ = fold(model, x, 0.5)
    save_checkpoint(folded, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == "resnet18"
    assert config["kwargs"]["width"] == 4
    assert config["shapes"]["conv1.weight"] == [2, 3, 3, 3]


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="is not a genxr checkpoint"):
        read_config(tmp_path)
