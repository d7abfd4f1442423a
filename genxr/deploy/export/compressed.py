"""Folded (or, for comparison, pruned) world-model students for export and serving.

:func:`compress_student` runs :func:`genxr.compression.fold` or :func:`genxr.compression.prune`
(L2 group magnitude, same groups, same ``ratio`` = fraction of channels removed per group) on
a :class:`~genxr.components.worldmodel.dit.VideoDiT` student. What is compressed and what is
left whole, and why:

* compressed: the feed-forward hidden units of every block (512 -> ``floor(512 (1 - ratio))``
  in the shipped student), the hidden units of the time embedding and of the camera-ray and
  joint conditioning MLPs, and the skeleton encoder's hidden conv channels;
* left whole by restricting the groups (``ignored_layers=[student.embed]``): the input
  embedding. The skeleton encoder's output channels reach ``embed`` through the patchify
  reshape (each channel becomes ``patch ** 2`` input columns); Torch-Pruning maps them one
  to one, so folding them breaks the embedding (the library's post-check raises
  ``CompressionError``). Ignoring the encoder's last conv instead does not work either: its
  input columns are then not shrunk with the group before it. Fixing Torch-Pruning's
  reshape mapping was not attempted;
* left whole by the library, with the reason in the report's ``skipped``: attention (the
  fused ``qkv`` projection is not a q/k/v/o layout ``compression.heads`` recognises), so the
  KV cache keeps its shape (L, 1, heads, T, head_dim) and the exported step its inputs; the
  residual stream (LayerNorm), the adaLN modulation and the output projection. Folding
  heads would also need the model to follow: ``dit.Block`` and ``VideoDiT.step`` derive
  ``head_dim`` as ``width // heads``, which is wrong once heads are removed.

Folding here is data-free (no repair applies: the norms have no affine parameters).
"""

from __future__ import annotations

from pathlib import Path

import torch

METHODS = ("fold", "prune")


def example_inputs(config, seed: int = 0) -> tuple:
    """One chunk (1, chunk_frames, C, h, w) of noisy latents, its noise levels (1, chunk_frames) and a
    tracking (head at the origin looking down -z, both hands' joints within 0.1 m of it, random prior
    latents when the student reprojects the anchor) for tracing."""
    from genxr.components.worldmodel.conditioning import Tracking

    generator = torch.Generator().manual_seed(seed)
    f = config.chunk_frames
    pose = torch.zeros(1, f, 7)
    pose[..., 6] = 1.0  # quaternion (x, y, z, w) = identity
    hands = torch.randn(1, f, 2, 26, 3, generator=generator) * 0.1 + torch.tensor([0.0, -0.2, -0.4])
    latents = torch.randn(1, f, config.latent_channels, config.latent_size, config.latent_size, generator=generator)
    prior = torch.randn(latents.shape, generator=generator) if config.conditioning.reprojection else None
    tracking = Tracking(pose, hands, torch.ones(1, f, 2, 26), pose[:, 0], prior)
    return latents, torch.rand(1, f, generator=generator), tracking


def compress_student(student, ratio: float, method: str = "fold", seed: int = 0):
    """A folded (``method="fold"``) or L2-pruned (``"prune"``) copy of ``student`` with ``ratio`` in
    [0, 1) of the channels of every compressed group removed, and its
    :class:`~genxr.compression.CompressionReport`. Raises ValueError for an unknown method, a
    ratio outside [0, 1) or one that leaves a group without channels (naming the group)."""
    from genxr.compression import fold, prune

    if method not in METHODS:
        raise ValueError(f"unknown compression method {method!r}; choose from {METHODS}")
    inputs = example_inputs(student.config, seed)
    if method == "fold":
        return fold(student.eval(), inputs, ratio, ignored_layers=[student.embed], seed=seed)
    return prune(student.eval(), inputs, ratio, "l2", ignored_layers=[student.embed], seed=seed)


def export_compressed_student(out: str | Path, ratio: float, method: str = "fold", seed: int = 1) -> dict:
    """Compresses the shipped student, streams it until its cache is full, exports its chunk step to
    ``out`` with the parity of compressed torch vs ONNX Runtime, and writes the report (with
    ``"compression"``) to ``<out>.json``; returns that report."""
    from genxr.components.worldmodel.checkpoint import CHECKPOINT_ROOT, load_model
    from genxr.deploy.export.student import export_student_step

    student, _ = load_model(CHECKPOINT_ROOT / "student")
    compressed, report = compress_student(student, ratio, method)
    return export_student_step(out, seed, student=compressed, compression=report)
