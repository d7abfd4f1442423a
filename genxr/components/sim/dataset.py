"""Simulator data sets on disk: one safetensors shard per episode plus a JSON manifest.

Layout of a data set directory::

    manifest.json                  written last; its presence means the data set is complete
    episode_00000.safetensors      the arrays of episode_fields.FIELDS for one episode
    episode_00001.safetensors      ...

Why safetensors + JSON: both are standard and inspectable without genxr (``safetensors``
opens a shard from Python, Rust or JavaScript; the manifest is plain JSON), a shard's
header lists every array's dtype and shape, arrays can be sliced lazily from disk (a clip
of k frames reads only those frames), nothing is pickled, and the bytes are a pure
function of the arrays and metadata - same seed and config, identical files.

Writing is crash-safe: a shard is written to ``*.tmp`` and renamed into place, so a file
with a shard's name is always complete; the manifest follows the last shard. Running the
same command again resumes a half-written data set (leftover ``*.tmp`` files are removed,
complete shards of the same config are kept). A directory holding a data set of another
config, or a shard that does not belong to this config, stops with an error naming it.

Splits: an episode's seed and behaviour mixture come from its split. ``train`` uses even
seeds and :data:`TRAIN_MIXTURES`; ``heldout`` odd seeds and :data:`HELDOUT_MIXTURES`,
combinations of behaviours that training never sees.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform as python_platform
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import safetensors
import safetensors.numpy
import torch
from tqdm import tqdm

import genxr
from genxr.components.sim.episode import BEHAVIOUR_NAMES, FIELDS, record_episode
from genxr.components.sim.layout import OBJECT_NAMES, STATE_FIELDS
from genxr.components.sim.renderer import Renderer, RendererConfig
from genxr.components.sim.user import ScriptedUser
from genxr.platform.clock import ManualClock

FORMAT = "genxr-sim-dataset/1"
MANIFEST = "manifest.json"
MAX_EPISODES = 1_000_000

TRAIN_MIXTURES: tuple[str, ...] = (
    "look_around", "press_button", "push_object", "grasp_carry_drop", "wave", "hands_out_of_view",
    "tracking_loss", "press_button+push_object", "look_around+grasp_carry_drop", "wave+press_button",
    "push_object+tracking_loss",
)
HELDOUT_MIXTURES: tuple[str, ...] = (
    "grasp_carry_drop+press_button", "push_object+wave", "hands_out_of_view+grasp_carry_drop",
    "tracking_loss+press_button",
)
SPLITS = {"train": (0, TRAIN_MIXTURES), "heldout": (1, HELDOUT_MIXTURES)}


class DatasetError(RuntimeError):
    """A data set cannot be written or read as asked; the message names the path and the fix."""


@dataclass(frozen=True)
class DatasetConfig:
    """What a data set is made of: ``episodes`` of ``frames`` frames at ``rate_hz``, rendered
    ``resolution`` x ``resolution`` with ``vertical_fov_deg``, from ``split`` with base ``seed``."""

    episodes: int
    frames: int
    resolution: int = 64
    split: str = "train"
    seed: int = 0
    rate_hz: float = 90.0
    vertical_fov_deg: float = 80.0

    def __post_init__(self) -> None:
        if not (isinstance(self.episodes, int) and 1 <= self.episodes <= MAX_EPISODES):
            raise DatasetError(f"episodes {self.episodes!r} must be an integer in [1, {MAX_EPISODES}]")
        if not (isinstance(self.frames, int) and 1 <= self.frames <= 100_000):
            raise DatasetError(f"frames {self.frames!r} must be an integer in [1, 100000]")
        if not (isinstance(self.resolution, int) and 8 <= self.resolution <= 1024):
            raise DatasetError(f"resolution {self.resolution!r} must be an integer in [8, 1024] pixels")
        if self.split not in SPLITS:
            raise DatasetError(f"split {self.split!r} is not one of {', '.join(SPLITS)}")
        if not (isinstance(self.seed, int) and 0 <= self.seed < 2**40):
            raise DatasetError(f"seed {self.seed!r} must be an integer in [0, 2**40)")

    def episode(self, index: int) -> tuple[int, str]:
        """Seed and behaviour mixture of episode ``index``: disjoint seeds and mixtures per split."""
        parity, mixtures = SPLITS[self.split]
        seed = 2 * (self.seed * MAX_EPISODES + index) + parity
        rng = np.random.default_rng([seed, 0xDA7A])
        return seed, mixtures[int(rng.integers(len(mixtures)))]


def shard_name(index: int) -> str:
    return f"episode_{index:05d}.safetensors"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _shard_metadata(config: DatasetConfig, index: int, seed: int, behaviour: str) -> dict[str, str]:
    body = {"format": FORMAT, "config": asdict(config), "index": index, "seed": seed, "behaviour": behaviour}
    return {"genxr": json.dumps(body, sort_keys=True)}


def _prepare(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-probe.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise DatasetError(f"output directory {out} is not writable: {err.strerror or err}") from None


def _check_existing_manifest(out: Path, config: DatasetConfig) -> dict | None:
    path = out / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        have = manifest["config"]
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"{path} is not a genxr simulator manifest ({err}); choose another --out") from None
    want = asdict(config)
    if have != want:
        diff = ", ".join(f"{k}: {have.get(k)!r} there vs {v!r} asked" for k, v in want.items() if have.get(k) != v)
        raise DatasetError(f"{out} already holds a data set with another config ({diff}); choose another --out")
    return manifest


def _check_shard(path: Path, expected: dict[str, str]) -> None:
    """Raises unless ``path`` is a readable shard with the ``expected`` metadata and every field."""
    try:
        with safetensors.safe_open(str(path), framework="numpy") as shard:
            metadata = shard.metadata() or {}
            names = set(shard.keys())
    except Exception as err:  # safetensors raises its own SafetensorError for a damaged file
        raise DatasetError(f"shard {path} is damaged ({err}); delete it and run the command again") from None
    if metadata != expected or names != set(FIELDS):
        raise DatasetError(f"shard {path} was written with another config or version; "
                           f"delete it or choose another --out")


def write_dataset(out: Path, config: DatasetConfig, batch_size: int = 64, progress: bool = True) -> dict:
    """Writes (or resumes) the data set ``config`` into directory ``out``; returns the manifest."""
    out = Path(out)
    _prepare(out)
    manifest = _check_existing_manifest(out, config)
    if manifest is not None:
        return manifest
    for leftover in sorted(out.glob("*.tmp")):
        leftover.unlink()
    renderer = Renderer(RendererConfig(width=config.resolution, height=config.resolution,
                                       vertical_fov_deg=config.vertical_fov_deg))
    episodes = []
    for index in tqdm(range(config.episodes), desc=f"sim {config.split}", unit="episode", disable=not progress):
        seed, behaviour = config.episode(index)
        path = out / shard_name(index)
        metadata = _shard_metadata(config, index, seed, behaviour)
        if path.exists():  # complete (shards appear by rename only): keep it if it is ours
            _check_shard(path, metadata)
        else:
            user = ScriptedUser(behaviour, seed=seed, rate_hz=config.rate_hz, clock=ManualClock(0))
            record = record_episode(user, renderer, config.frames, batch_size)
            _atomic_write(path, safetensors.numpy.save(record, metadata=metadata))
        episodes.append({"file": path.name, "seed": seed, "behaviour": behaviour, "frames": config.frames,
                         "sha256": _sha256(path)})
    manifest = {
        "format": FORMAT,
        "config": asdict(config),
        "versions": {"genxr": genxr.__version__, "python": python_platform.python_version(),
                     "numpy": np.__version__, "torch": torch.__version__, "safetensors": safetensors.__version__},
        "mixtures": list(SPLITS[config.split][1]),
        "fields": FIELDS,
        "behaviour_names": list(BEHAVIOUR_NAMES),
        "object_names": list(OBJECT_NAMES),
        "object_state_fields": list(STATE_FIELDS),
        "episodes": episodes,
    }
    _atomic_write(out / MANIFEST, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return manifest


def read_manifest(root: Path) -> dict:
    """The manifest of a complete data set at ``root``; a clear error if it is absent or of another format."""
    path = Path(root) / MANIFEST
    if not path.exists():
        raise DatasetError(f"{path} does not exist: {root} is not a complete data set "
                           f"(run `genxr sim dataset` with the same arguments again to finish it)")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise DatasetError(f"{path} has format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest
