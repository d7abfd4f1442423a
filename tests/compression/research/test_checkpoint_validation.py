"""Compression checkpoints: the weights file's sha256 is recorded and checked, and every broken
checkpoint - bad JSON, missing file, checksum mismatch, truncated weights, missing / unexpected
keys, bad shapes, unknown architecture, wrong field types - is a CheckpointError naming the file
and what is wrong, also through ``genxr fold`` (issue #18, D10)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load, save
from typer.testing import CliRunner

from genxr.cli.app import app
from genxr.compression import fold
from genxr.compression.research.checkpoint import KWARGS, CheckpointError, load_checkpoint, save_checkpoint
from genxr.compression.research.models import ARCHITECTURES
from genxr.platform.checkpoints import sha256_hex
from tests.helpers.compression import tiny_model

CONFIG, WEIGHTS = "config.json", "model.safetensors"


@pytest.fixture
def saved(tmp_path):
    """``saved(name)``: the directory of a freshly saved tiny ``name`` model (resnet18 folded: resized tensors)."""
    def make(name: str = "resnet18"):
        model, x = tiny_model(name)
        if name == "resnet18":
            model, _ = fold(model, x, 0.5)
        return save_checkpoint(model, tmp_path / name, metadata={"note": "test"})
    return make


def _edit_config(directory, edit):
    config = json.loads((directory / CONFIG).read_text())
    edit(config)
    (directory / CONFIG).write_text(json.dumps(config))


def _edit_tensors(directory, edit, rehash: bool = True):
    """Rewrites the weights through ``edit(tensors)``; ``rehash`` records the new file's sha256 (a consistent
    checkpoint whose tensors, not its bytes, are wrong)."""
    tensors = load((directory / WEIGHTS).read_bytes())
    edit(tensors)
    payload = save(tensors)
    (directory / WEIGHTS).write_bytes(payload)
    if rehash:
        _edit_config(directory, lambda config: config.update(sha256=sha256_hex(payload)))


def _flip_a_byte(directory):
    data = bytearray((directory / WEIGHTS).read_bytes())
    data[-5] ^= 0xFF
    (directory / WEIGHTS).write_bytes(bytes(data))


def _truncate(directory):
    (directory / WEIGHTS).write_bytes((directory / WEIGHTS).read_bytes()[:200])


def _unsha(config):
    del config["sha256"]


def _garbage_with_its_hash(directory):
    (directory / WEIGHTS).write_bytes(b"not a safetensors file")
    _edit_config(directory, lambda config: config.update(sha256=sha256_hex(b"not a safetensors file")))


def _set(key, value, *inner):
    def edit(config):
        target = config
        for part in (key, *inner)[:-1]:
            target = target[part]
        target[(key, *inner)[-1]] = value
    return edit


def _bad_heads(config):
    config["attributes"]["blocks.0.attn"]["num_heads"] = 3


def _first_tensor(tensors):
    return sorted(tensors)[0]


BAD = {
    # the bytes of the weights file
    "flipped byte": ("resnet18", _flip_a_byte, WEIGHTS, "sha256 does not match config.json"),
    "truncated": ("resnet18", _truncate, WEIGHTS, "sha256 does not match config.json"),
    "garbage with its hash": ("resnet18", _garbage_with_its_hash, WEIGHTS, "unreadable safetensors"),
    "truncated, saved before sha256": ("resnet18", lambda d: (_edit_config(d, _unsha), _truncate(d)), WEIGHTS,
                                       "unreadable safetensors"),
    # the tensors in it
    "missing tensor": ("resnet18", lambda d: _edit_tensors(d, lambda t: t.pop("fc.bias")), WEIGHTS,
                       "tensor 'fc.bias' is missing"),
    "unexpected tensor": ("resnet18", lambda d: _edit_tensors(d, lambda t: t.update(extra=torch.zeros(2))), WEIGHTS,
                          "unexpected tensors ['extra']"),
    "tensor of another shape": ("resnet18", lambda d: _edit_tensors(d, lambda t: t.update({"fc.bias": torch.zeros(3)})),
                                WEIGHTS, "tensor 'fc.bias' has shape (3,), the config needs (10,)"),
    # config.json
    "bad JSON": ("resnet18", lambda d: (d / CONFIG).write_text("{not json"), CONFIG, "not valid JSON"),
    "a JSON list": ("resnet18", lambda d: (d / CONFIG).write_text("[]"), CONFIG, "is not a genxr-checkpoint v1 config"),
    "shapes missing": ("resnet18", lambda d: _edit_config(d, lambda c: c.pop("shapes")), CONFIG, "shapes: Field required"),
    "unknown architecture": ("resnet18", lambda d: _edit_config(d, _set("architecture", "alexnet")), CONFIG,
                             "architecture = 'alexnet' is not a zoo architecture"),
    "kwarg as text": ("resnet18", lambda d: _edit_config(d, _set("kwargs", "4", "width")), CONFIG,
                      "kwargs.width = '4': Input should be a valid integer"),
    "blocks as text": ("resnet18", lambda d: _edit_config(d, _set("kwargs", "11", "blocks")), CONFIG,
                       "kwargs.blocks = '11'"),
    "unknown kwarg": ("resnet18", lambda d: _edit_config(d, _set("kwargs", 1, "depth")), CONFIG,
                      "kwargs ['depth']: not arguments of resnet18"),
    "shape of no tensor": ("resnet18", lambda d: _edit_config(d, _set("shapes", [2], "nope.weight")), CONFIG,
                           "shapes.nope.weight: ResNet has no module 'nope'"),
    "shape of a non-tensor": ("resnet18", lambda d: _edit_config(d, _set("shapes", [2], "fc.in_features")), CONFIG,
                              "shapes.fc.in_features: Linear 'fc' has no tensor 'in_features'"),
    "shape as text": ("resnet18", lambda d: _edit_config(d, _set("shapes", "abc", "fc.bias")), CONFIG,
                      "shapes.fc.bias = 'abc'"),
    "shape that is not the file's": ("resnet18", lambda d: _edit_config(d, _set("shapes", [5], "fc.bias")), WEIGHTS,
                                     "tensor 'fc.bias' has shape (10,), the config needs (5,)"),
    "metadata a list": ("resnet18", lambda d: _edit_config(d, _set("metadata", [])), CONFIG, "metadata = []"),
    "heads of no attention": ("llama", lambda d: _edit_config(d, _set("attributes", {"num_heads": 1, "num_kv_heads": 1},
                                                                      "blocks.9.attn")), CONFIG,
                              "attributes.blocks.9.attn: not an attention module of llama"),
    "heads that do not fit": ("llama", lambda d: _edit_config(d, _bad_heads), CONFIG,
                              "num_heads 3 is not a multiple of num_kv_heads 2"),
    "an attribute that is no head count": ("llama", lambda d: _edit_config(d, _set("attributes", {"forward": 1},
                                                                                   "blocks.0.attn")), CONFIG,
                                           "attributes.blocks.0.attn.forward = 1: Extra inputs are not permitted"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_broken_checkpoint_is_refused_naming_the_file_and_what_is_wrong(saved, case):
    name, breaks, file, expected = BAD[case]
    directory = saved(name)
    breaks(directory)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(directory)
    message = str(caught.value)
    assert str(directory / file) in message and expected in message, message
    assert "\n" not in message


def test_the_sha256_of_the_weights_is_recorded(saved):
    directory = saved()
    assert json.loads((directory / CONFIG).read_text())["sha256"] == sha256_hex((directory / WEIGHTS).read_bytes())


@pytest.mark.parametrize("name", ["resnet18", "llama"])
def test_a_checkpoint_saved_before_the_sha256_was_recorded_still_loads(saved, name):
    directory = saved(name)
    model, _ = load_checkpoint(directory)
    _edit_config(directory, _unsha)
    again, config = load_checkpoint(directory)
    assert "sha256" not in config and config["metadata"] == {"note": "test"}
    for (key, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), key


def test_every_architecture_has_its_kwargs_validated():
    assert set(KWARGS) == set(ARCHITECTURES)


def test_fold_on_a_tampered_checkpoint_exits_2_with_a_one_line_message(saved, tmp_path):
    directory = saved()
    _flip_a_byte(directory)
    result = CliRunner().invoke(app, ["fold", str(directory), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    said = " ".join(result.stderr.split())
    assert f"{directory / WEIGHTS}: sha256 does not match config.json" in said, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()
