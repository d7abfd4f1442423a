"""Exported ONNX steps cached on disk: made once then reused, a torn or foreign file re-exported
with a warning, a failed export leaving nothing behind, the folder from the environment."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from genxr.deploy.engines.base import OnnxRuntimeEngine
from genxr.deploy.export.cache import cache_folder, cached_onnx, check_onnx, content_hash


class Doubler(torch.nn.Module):
    def forward(self, x):
        return 2.0 * x


def export_doubler(out) -> None:
    export_doubler.calls += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Doubler(), (torch.ones(1, 3),), str(out), input_names=["x"], output_names=["y"], dynamo=False)


def check_doubler(path) -> None:
    check_onnx(path, ("x",))


@pytest.fixture(autouse=True)
def _reset_calls():
    export_doubler.calls = 0


def test_the_export_is_made_once_then_reused(tmp_path):
    first = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    again = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    assert first == again == tmp_path / "doubler.onnx" and export_doubler.calls == 1
    y = OnnxRuntimeEngine(again).run({"x": np.arange(3, dtype=np.float32)[None]})["y"]
    np.testing.assert_array_equal(y, [[0.0, 2.0, 4.0]])
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".onnx") == ["doubler.onnx"], "no partial files left"


def test_a_corrupt_cached_file_is_re_exported_with_a_warning(tmp_path):
    path = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    path.write_bytes(path.read_bytes()[:40])  # a torn write
    with pytest.warns(RuntimeWarning, match="cached ONNX file is unusable .*not a valid ONNX model"):
        recovered = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    assert export_doubler.calls == 2
    assert OnnxRuntimeEngine(recovered).run({"x": np.ones((1, 3), np.float32)})["y"].tolist() == [[2.0, 2.0, 2.0]]


def test_a_cached_file_of_another_step_is_re_exported(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Doubler(), (torch.ones(1, 3),), str(tmp_path / "doubler.onnx"), input_names=["z"], dynamo=False)
    with pytest.warns(RuntimeWarning, match=r"has inputs \['z'\], expected \['x'\]"):
        path = cached_onnx("doubler", export_doubler, check_doubler, tmp_path)
    assert export_doubler.calls == 1 and OnnxRuntimeEngine(path).input_names == ("x",)


def test_an_export_that_fails_its_check_leaves_nothing_behind(tmp_path):
    with pytest.raises(ValueError, match=r"has inputs \['x'\], expected \['latents'\]"):
        cached_onnx("doubler", export_doubler, lambda p: check_onnx(p, ("latents",)), tmp_path)
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*.onnx"))


def test_the_cache_folder_follows_genxr_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("GENXR_CACHE", str(tmp_path))
    assert cache_folder() == tmp_path / "onnx"
    monkeypatch.delenv("GENXR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_folder() == tmp_path / "xdg" / "genxr" / "onnx"


def test_the_content_hash_changes_with_any_file_it_covers(tmp_path):
    checkpoint, source = tmp_path / "checkpoint", tmp_path / "step.py"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    source.write_text("def step(): ...\n")
    before = content_hash(checkpoint, source)
    (checkpoint / "model.safetensors").write_bytes(b"retrained")
    after_weights = content_hash(checkpoint, source)
    source.write_text("def step(): return 1\n")
    assert len({before, after_weights, content_hash(checkpoint, source)}) == 3
    with pytest.raises(FileNotFoundError, match="holds no files"):
        content_hash(tmp_path / "empty-folder-that-is-missing")


def test_weights_an_exporter_puts_beside_the_file_end_up_inside_it(tmp_path):
    import onnx

    def export_with_side_file(out):
        export_doubler(out)
        model = onnx.load(str(out))
        model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones(4096, np.float32), "unused_weight"))
        onnx.save_model(model, str(out), save_as_external_data=True, location=f"{out.name}.data", size_threshold=0)

    path = cached_onnx("doubler", export_with_side_file, check_doubler, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["doubler.onnx"]
    model = onnx.load(str(path), load_external_data=False)
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
