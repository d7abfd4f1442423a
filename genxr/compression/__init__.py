"""Model compression: calibration-free folding and structured-pruning baselines.

``fold`` and ``prune`` work on the coupled channel groups of Torch-Pruning's
DependencyGraph, so any model it can trace; see docs/compression.md.
"""

from genxr.compression.api import fold, prune
from genxr.compression.groups import TraceError
from genxr.compression.report import CompressionReport, GroupReport

__all__ = ["CompressionReport", "GroupReport", "TraceError", "fold", "prune"]
