"""Model compression: calibration-free folding and structured-pruning baselines.

``fold`` and ``prune`` work on the coupled channel groups of Torch-Pruning's
DependencyGraph, so any model it can trace; see docs/compression.md. Names are imported
lazily so that ``genxr --help`` (which imports ``genxr.cli.compress``) does not load torch.
"""

from __future__ import annotations

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "api": ["fold", "prune"],
    "groups": ["AttentionLayoutError", "CompressionError", "TraceError"],
    "hf": ["load_pretrained", "save_pretrained"],
    "report": ["CompressionReport", "GroupReport"],
})
