"""The avatar service of one session with its chunk step run by an engine: :class:`EngineAvatarService`.

Same contract as :class:`~genxr.components.avatar.service.AvatarService` (``AvatarRequest ->
AvatarMotion``, one stream per session, frame 0 at ``start_time_ns`` on the genxr clock,
``rate_hz`` chunk requests per second), but the stream is an
:class:`~genxr.deploy.engines.avatar.EngineAvatarStream`: one call of the exported
fixed-shape step (:func:`~genxr.deploy.export.avatar.export_avatar_step`, ring-buffer caches)
per chunk, on ONNX Runtime or TensorRT (:func:`~genxr.deploy.engines.base.make_engine`, with its
fallback to ONNX Runtime on the CPU). ``engine="torch"`` is the plain ``AvatarService``.

The ONNX file is exported once per avatar checkpoint into the cache folder
(:mod:`genxr.deploy.export.cache`), with the export's JSON report beside it (it carries the
step's spec, which the stream needs); one engine per process, engine name and checkpoint is
shared by every session (ONNX Runtime sessions are thread-safe; the streaming state lives in
each session's stream). Float rounding differs from the torch stream and compounds through
the autoregressive state; the export's report records the per-call error and the free-running
drift over a 40-chunk rollout.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from genxr.components.avatar.service import AvatarService, check_generator
from genxr.deploy.engines.base import Engine, check_engine_name, describe_engine, make_engine
from genxr.deploy.export.cache import cached_onnx, check_onnx, content_hash


def _check_avatar_export(path: Path) -> None:
    from genxr.deploy.engines.avatar import INPUTS, AvatarStepSpec

    check_onnx(path, INPUTS)
    report = path.with_suffix(".json")
    try:
        AvatarStepSpec.from_dict(json.loads(report.read_text())["spec"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"the export report {str(report)!r} with the step's spec is unusable: "
                         f"{type(err).__name__}: {err}") from err


def avatar_onnx(checkpoint: Path | None = None, folder: Path | None = None, generator: str = "generator") -> Path:
    """The avatar checkpoint's chunk step (default: the shipped one; ``generator``: which of its
    generators, :data:`~genxr.components.avatar.service.GENERATORS`) as ONNX, exported once into the
    cache (keyed by the checkpoint, the generator and the step's and exporter's source)."""
    import genxr.deploy.engines.avatar as step
    import genxr.deploy.export.avatar as exporter
    from genxr.components.avatar.checkpoint import shipped_checkpoint
    from genxr.deploy.export.avatar import export_avatar_step

    directory = Path(checkpoint) if checkpoint is not None else shipped_checkpoint()
    import genxr.components.avatar as avatar_package

    # the avatar package too: the step's graph comes from its transformer, generator and VAE
    digest = content_hash(directory, Path(exporter.__file__), Path(step.__file__), Path(avatar_package.__file__).parent)
    key = f"avatar-step-{digest}" if generator == "generator" else f"avatar-step-{generator}-{digest}"
    return cached_onnx(key, lambda out: export_avatar_step(out=out, checkpoint=directory, generator=generator),
                       _check_avatar_export, folder)


def avatar_step_engine(engine: str, checkpoint: str | None = None, threads: int = 1, generator: str = "generator"):
    """(Engine, AvatarStepSpec) of the avatar step for ``engine`` (one per process, engine,
    checkpoint folder, generator and thread count), or None for torch."""
    return _avatar_step_engine(engine, checkpoint, threads, check_generator(generator))


@functools.cache  # called with every argument in place, so equal calls share one entry
def _avatar_step_engine(engine: str, checkpoint: str | None, threads: int, generator: str):
    from genxr.deploy.engines.avatar import AvatarStepSpec

    if check_engine_name(engine) == "torch":
        return None
    path = avatar_onnx(None if checkpoint is None else Path(checkpoint), generator=generator)
    spec = AvatarStepSpec.from_dict(json.loads(path.with_suffix(".json").read_text())["spec"])
    return make_engine(engine, onnx_path=path, threads=threads), spec


class EngineAvatarService(AvatarService):
    """:class:`AvatarService` whose stream runs on ``engine`` (see the module docstring)."""

    def __init__(self, start_time_ns: int, engine: str = "onnxruntime", checkpoint: Path | None = None,
                 seed: int = 0, guidance_scale: float = 1.0, generator: str = "generator") -> None:
        from genxr.deploy.engines.avatar import EngineAvatarStream

        super().__init__(start_time_ns, checkpoint=checkpoint, seed=seed, guidance_scale=guidance_scale,
                         generator=generator)
        built = avatar_step_engine(engine, None if checkpoint is None else str(checkpoint), generator=generator)
        self.engine: Engine | None = None
        if built is not None:
            self.engine, spec = built
            if spec.stride != self.stream.stride:
                raise ValueError(f"the exported avatar step has stride {spec.stride}, the checkpoint {self.stream.stride}")
            self.stream = EngineAvatarStream(self.engine, spec)
            self.stream.reset(start_time_ns=start_time_ns, seed=seed, guidance_scale=guidance_scale)

    def describe(self) -> dict[str, Any]:
        """What runs this session's avatar: engine and providers, chunk rate."""
        return {"model": f"{self.model_base}@{describe_engine(self.engine)}", "engine": describe_engine(self.engine),
                "rate_hz": self.rate_hz, "generator": self.generator, "guidance_scale": self.guidance_scale}
