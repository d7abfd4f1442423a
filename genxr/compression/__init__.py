"""Model compression: calibration-free folding and structured-pruning baselines.

``fold`` and ``prune`` work on the coupled channel groups of Torch-Pruning's
DependencyGraph, so any model it can trace; see docs/compression.md. Names are imported
lazily so that ``genxr --help`` (which imports ``genxr.compression.cli``) does not load torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "fold": "genxr.compression.api",
    "prune": "genxr.compression.api",
    "CompressionError": "genxr.compression.groups",
    "TraceError": "genxr.compression.groups",
    "CompressionReport": "genxr.compression.report",
    "GroupReport": "genxr.compression.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genxr.compression' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
