"""What a fold or prune did: per group channels before/after and reconstruction error, totals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class GroupReport:
    """One coupled group (``kind`` "channels") or one attention module (``kind`` "heads").

    ``error`` is the relative reconstruction error ||W - W'||^2 / ||W||^2 of the group's
    producer rows (fold: distance to cluster means; prune: norms of removed rows), measured
    before merging - for heads, of the heads' circuits (``heads.head_error``); ``repair``
    names the correction applied to the group, if any.
    """

    name: str
    kind: str
    before: int
    after: int
    error: float
    repair: str = ""


@dataclass
class CompressionReport:
    """Totals for a whole model; ``ratio`` is the per-group fraction of channels removed.

    ``config_updates``: the Hugging Face config fields rewritten to describe the result
    ("text_config.num_attention_heads": 6, ...); ``config_note``: why the config was left as
    it was (per-layer shapes differ, or the family derives a field the result breaks).
    """

    method: str
    ratio: float
    groups: list[GroupReport] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0
    macs_before: int = 0
    macs_after: int = 0
    config_updates: dict = field(default_factory=dict)
    config_note: str = ""

    @property
    def param_reduction(self) -> float:
        """Fraction of parameters removed (ResNet18 at ratio 0.5: about 0.75)."""
        return 1.0 - self.params_after / self.params_before if self.params_before else 0.0

    @property
    def mac_reduction(self) -> float:
        return 1.0 - self.macs_after / self.macs_before if self.macs_before else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["param_reduction"] = self.param_reduction
        out["mac_reduction"] = self.mac_reduction
        return out
