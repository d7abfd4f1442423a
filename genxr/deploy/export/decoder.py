"""ONNX export of the world model's frame decoder (:class:`~genxr.components.worldmodel.codec.FrameCodec`).

:class:`FrameDecoder` maps normalised latents (B, C, h, w) to what
:class:`~genxr.components.worldmodel.stream.WorldModelStream` hands on: the image (B, 3, H, W)
float32 in [0, 1] and the frames (B, H, W, 3) uint8 (``round(255 image)``). The batch axis is
dynamic (named ``frames``: a stream decodes one chunk of ``chunk_frames`` at a time; any count
works); channels and the grid are fixed by the codec (16 x 8 x 8 -> 64 x 64 for the shipped one).

:func:`export_frame_decoder` checks parity on real latents - simulator frames rendered by
:class:`~genxr.components.sim.world_service.GroundTruthWorld` along a scripted user's path,
encoded by the codec - and records it beside the .onnx with the median decode times of
torch and ONNX Runtime (one thread) measured in the same run. The graph is a matrix product
and reshapes; it exports with the TorchScript-based exporter (``dynamo=False``) like the student.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genxr.deploy.engines.base import OnnxRuntimeEngine, TorchEngine
from genxr.deploy.export.student import median_ms, writable_output

INPUTS = ("latents",)
OUTPUTS = ("image", "frames")


class FrameDecoder(nn.Module):
    """The codec's decoder with the stream's uint8 conversion (see module docstring)."""

    def __init__(self, codec) -> None:
        super().__init__()
        self.codec = codec.eval()

    def forward(self, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.codec.decode(latents)
        return image, (image.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8)


def simulator_frames(count: int, seed: int = 1) -> np.ndarray:
    """(count, H, W, 3) uint8 frames of the ground-truth world along a scripted user's path."""
    from genxr.components.sim.user import ScriptedUser
    from genxr.components.sim.world_service import GroundTruthWorld
    from genxr.platform.messages import WorldFrameRequest

    world = GroundTruthWorld(seed)
    frames = []
    for index, step in enumerate(ScriptedUser("look_around+press_button", seed=seed).steps(count)):
        frames.append(world(WorldFrameRequest(session_id="export", request_id=index, tracking=[step.frame])).image)
    return np.stack(frames)


def onnx_opset(path: str | Path) -> int:
    """The default-domain opset an ONNX file was written for (TensorRT and older runtimes care)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def export_frame_decoder(out: str | Path, frames: int = 8, seed: int = 1, codec_directory: Path | None = None) -> dict:
    """Exports the codec's decoder (default: the shipped world-model codec) to ``out`` (.onnx) and
    writes ``<out>.json``: names, shapes (``frames`` = dynamic batch), parity on ``frames``
    encoded simulator frames (max abs error of the float image; max uint8 level difference and
    the fraction of differing values) and median decode times at batch 1 and ``frames``."""
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model

    if frames < 2:
        raise ValueError(f"frames must be >= 2 (the parity check also runs a batch other than the traced one), got {frames}")
    out = writable_output(out)
    codec, _ = load_model(codec_directory or CHECKPOINT_ROOT / "codec")
    module = FrameDecoder(codec)
    images = torch.from_numpy(simulator_frames(frames, seed)).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        latents = codec.encode(images).contiguous()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module, (latents[:1],), str(out), input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_axes={name: {0: "frames"} for name in (*INPUTS, *OUTPUTS)}, dynamo=False)
    reference, exported = TorchEngine(module, INPUTS, OUTPUTS), OnnxRuntimeEngine(out, threads=1)
    parity = {}
    for batch in (1, frames):  # the traced batch and another: the batch axis really is dynamic
        feeds = {"latents": latents[:batch].numpy()}
        a, b = reference.run(feeds), exported.run(feeds)
        if b["frames"].dtype != np.uint8 or b["image"].shape != a["image"].shape:
            raise RuntimeError(f"exported decoder returned {b['frames'].dtype} frames of shape {b['image'].shape}; "
                               f"expected uint8 and {a['image'].shape}")
        levels = np.abs(a["frames"].astype(np.int16) - b["frames"].astype(np.int16))
        parity[str(batch)] = {"image_max_abs_error": float(np.abs(a["image"] - b["image"]).max()),
                              "frames_max_level_difference": int(levels.max()),
                              "frames_fraction_differing": float((levels > 0).mean())}
    single, batch_feeds = {"latents": latents[:1].numpy()}, {"latents": latents.numpy()}
    report = {
        "file": out.name, "opset": onnx_opset(out), "inputs": list(INPUTS), "outputs": list(OUTPUTS),
        "shapes": {"latents": ["frames", *latents.shape[1:]], "image": ["frames", *images.shape[1:]],
                   "frames": ["frames", images.shape[2], images.shape[3], 3]},
        "dtypes": {"latents": "float32", "image": "float32", "frames": "uint8"},
        "parity_by_batch": parity,
        "torch_ms": {"1": median_ms(lambda: reference.run(single)), str(frames): median_ms(lambda: reference.run(batch_feeds))},
        "onnxruntime_ms": {"1": median_ms(lambda: exported.run(single)),
                           str(frames): median_ms(lambda: exported.run(batch_feeds))},
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report
