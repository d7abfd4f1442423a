"""Data sets: byte-identical from the same seed and config, manifest contents, resume after a
crash, clean errors for foreign, damaged or unwritable output, disjoint splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genxr.components.sim.clips import SimClips
from genxr.components.sim.dataset import (
    HELDOUT_MIXTURES,
    MANIFEST,
    TRAIN_MIXTURES,
    DatasetConfig,
    DatasetError,
    shard_name,
    write_dataset,
)
from genxr.components.sim.episode import FIELDS

CONFIG = DatasetConfig(episodes=2, frames=12, resolution=16)


def files(root: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sim") / "data"
    write_dataset(root, CONFIG, progress=False)
    return root


def test_same_seed_and_config_give_identical_bytes(written, tmp_path):
    write_dataset(tmp_path / "again", CONFIG, progress=False)
    assert files(written) == files(tmp_path / "again")
    assert sorted(files(written)) == [shard_name(0), shard_name(1), MANIFEST]


def test_manifest_records_seeds_config_versions_and_hashes(written):
    manifest = json.loads((written / MANIFEST).read_text())
    assert manifest["config"]["frames"] == 12 and manifest["config"]["resolution"] == 16
    assert {"genxr", "torch", "numpy", "safetensors", "python"} <= manifest["versions"].keys()
    assert [e["seed"] for e in manifest["episodes"]] == [CONFIG.episode(k)[0] for k in range(2)]
    assert set(manifest["fields"]) == set(FIELDS)


def test_half_written_data_set_resumes_to_identical_bytes(written, tmp_path):
    root = tmp_path / "crashed"
    write_dataset(root, CONFIG, progress=False)
    (root / MANIFEST).unlink()
    (root / shard_name(1)).unlink()
    (root / (shard_name(1) + ".tmp")).write_bytes(b"half a shard")
    with pytest.raises(DatasetError, match="not a complete data set"):
        SimClips(root)
    write_dataset(root, CONFIG, progress=False)
    assert files(root) == files(written)


def test_damaged_or_foreign_shards_and_foreign_manifests_stop_with_the_path(written, tmp_path):
    damaged = tmp_path / "damaged"
    write_dataset(damaged, CONFIG, progress=False)
    (damaged / MANIFEST).unlink()
    (damaged / shard_name(0)).write_bytes(b"\x00" * 10)
    with pytest.raises(DatasetError, match=f"shard .*{shard_name(0)} is damaged"):
        write_dataset(damaged, CONFIG, progress=False)
    (damaged / shard_name(0)).write_bytes((written / shard_name(1)).read_bytes())
    with pytest.raises(DatasetError, match=f"{shard_name(0)} was written with another config"):
        write_dataset(damaged, CONFIG, progress=False)
    with pytest.raises(DatasetError, match="another config \\(frames: 12 there vs 13 asked\\)"):
        write_dataset(written, DatasetConfig(episodes=2, frames=13, resolution=16), progress=False)


def test_unwritable_output_directory_is_named(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(DatasetError, match=f"output directory {blocker / 'data'} is not writable"):
        write_dataset(blocker / "data", CONFIG, progress=False)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"episodes": 0}, "episodes 0"), ({"frames": 0}, "frames 0"), ({"resolution": 4}, "resolution 4"),
    ({"split": "test"}, "split 'test' is not one of train, heldout"), ({"seed": -1}, "seed -1"),
])
def test_bad_config_is_named(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        DatasetConfig(**{"episodes": 1, "frames": 1, **kwargs})


def test_heldout_split_never_shares_seeds_or_behaviour_mixtures_with_training():
    assert not set(TRAIN_MIXTURES) & set(HELDOUT_MIXTURES)
    train = [DatasetConfig(episodes=500, frames=1, split="train", seed=s).episode(k) for s in (0, 1) for k in range(500)]
    held = [DatasetConfig(episodes=500, frames=1, split="heldout", seed=s).episode(k) for s in (0, 1) for k in range(500)]
    assert not {seed for seed, _ in train} & {seed for seed, _ in held}
    assert {mix for _, mix in train} == set(TRAIN_MIXTURES) and {mix for _, mix in held} == set(HELDOUT_MIXTURES)
    assert len({seed for seed, _ in train}) == 1000
