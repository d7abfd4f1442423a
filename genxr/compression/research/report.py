"""Tables and plots of a sweep's results (JSON -> Markdown + PNG).

Each result row: checkpoint, architecture, ratio, method (fold, fold+repair, l1, l2), data
(True after BatchNorm re-estimation), metric (accuracy %, or perplexity for LLaMA: lower is
better), base_metric (uncompressed), param_reduction. "Advantage" is oriented so that a
positive number means folding did better than pruning.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from pathlib import Path

METHODS = ("fold", "fold+repair", "l1", "l2")


def advantage(fold_value: float, prune_value: float, metric_name: str) -> float:
    """fold - prune for accuracy, prune - fold for perplexity (positive: folding better)."""
    return fold_value - prune_value if metric_name == "accuracy" else prune_value - fold_value


def summarise(results: list[dict]) -> dict:
    """{architecture: {"metric", "base", "ratios", "rows": {(method, data): [mean per ratio]},
    "wins": {ratio: (checkpoints where fold >= both prunes and not all equal, all three equal, checkpoints)},
    "wins_repair": the same for fold+repair}}."""
    by_arch: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_arch[r["architecture"]].append(r)
    summary = {}
    for arch, rows in sorted(by_arch.items()):
        ratios = sorted({r["ratio"] for r in rows})
        metric = rows[0]["metric_name"]
        cell = defaultdict(list)
        value = {}
        for r in rows:
            cell[(r["method"], r["data"], r["ratio"])].append(r["metric"])
            value[(r["checkpoint"], r["method"], r["data"], r["ratio"])] = r["metric"]
        table = {}
        for method in METHODS:
            for data in (False, True):
                if any((method, data, q) in cell for q in ratios):
                    table[f"{method}{' +bn' if data else ''}"] = [
                        statistics.mean(cell[(method, data, q)]) if cell[(method, data, q)] else None for q in ratios]
        checkpoints = sorted({r["checkpoint"] for r in rows})
        wins, wins_repair = {}, {}
        for q in ratios:
            for target, name in ((wins, "fold"), (wins_repair, "fold+repair")):
                better = tied = total = 0
                for c in checkpoints:
                    keys = [(c, m, False, q) for m in (name, "l1", "l2")]
                    if all(k in value for k in keys):
                        total += 1
                        f, l1, l2 = (value[k] for k in keys)
                        gaps = (advantage(f, l1, metric), advantage(f, l2, metric))
                        tied += f == l1 == l2
                        better += min(gaps) >= 0 and not f == l1 == l2
                target[q] = (better, tied, total)
        summary[arch] = {"metric": metric, "base": statistics.mean(r["base_metric"] for r in rows), "ratios": ratios,
                         "rows": table, "wins": wins, "wins_repair": wins_repair, "checkpoints": checkpoints,
                         "param_reduction": {q: statistics.mean(r["param_reduction"] for r in rows if r["ratio"] == q) for q in ratios}}
    return summary


def markdown(summary: dict) -> str:
    """One table per architecture: mean metric per method and ratio, then win counts."""
    lines = []
    for arch, s in summary.items():
        unit = "top-1 accuracy %, higher is better" if s["metric"] == "accuracy" else "validation perplexity, lower is better"
        lines += [f"### {arch} ({len(s['checkpoints'])} checkpoints, uncompressed mean {s['base']:.2f}; {unit})", ""]
        lines.append("| method | " + " | ".join(f"r={q:g}" for q in s["ratios"]) + " |")
        lines.append("|---|" + "---|" * len(s["ratios"]))
        lines.append("| parameters removed | " + " | ".join(f"{s['param_reduction'][q]:.0%}" for q in s["ratios"]) + " |")
        for name, values in s["rows"].items():
            lines.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.2f}" for v in values) + " |")
        for label, key in (("fold >= L1 and L2, no data (wins/ties/n)", "wins"),
                           ("fold+repair >= L1 and L2, no data (wins/ties/n)", "wins_repair")):
            lines.append(f"| {label} | " + " | ".join("{}/{}/{}".format(*s[key][q]) for q in s["ratios"]) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, results: list[dict], path: Path) -> None:
    """Top row: mean metric vs ratio per method; bottom: fold minus L2 per checkpoint (no data)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(summary)
    fig, axes = plt.subplots(2, len(archs), figsize=(4.2 * len(archs), 7), squeeze=False)
    colours = {"fold": "tab:blue", "fold+repair": "tab:green", "l1": "tab:orange", "l2": "tab:red"}
    for col, arch in enumerate(archs):
        s = summary[arch]
        top, bottom = axes[0][col], axes[1][col]
        for name, values in s["rows"].items():
            method = name.replace(" +bn", "")
            top.plot(s["ratios"], values, marker="o", color=colours[method], linestyle="--" if "+bn" in name else "-",
                     label=name)
        top.set_title(arch)
        top.set_xlabel("ratio (channels removed per group)")
        top.set_ylabel("accuracy %" if s["metric"] == "accuracy" else "perplexity")
        if s["metric"] != "accuracy":
            top.set_yscale("log")
        top.legend(fontsize=7)
        value = {(r["checkpoint"], r["method"], r["ratio"]): r["metric"] for r in results
                 if r["architecture"] == arch and not r["data"]}
        for checkpoint in s["checkpoints"]:
            for method, style in (("fold", "-"), ("fold+repair", ":")):
                qs = [q for q in s["ratios"] if (checkpoint, method, q) in value and (checkpoint, "l2", q) in value]
                adv = [advantage(value[(checkpoint, method, q)], value[(checkpoint, "l2", q)], s["metric"]) for q in qs]
                bottom.plot(qs, adv, linestyle=style, color=colours[method], alpha=0.7)
        bottom.axhline(0, color="black", linewidth=0.8)
        bottom.set_xlabel("ratio")
        bottom.set_ylabel("fold minus L2 (positive: fold better)")
        bottom.set_title("per checkpoint: fold (solid), fold+repair (dotted)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(results: list[dict], directory: Path, stem: str = "results") -> dict:
    """Writes ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` into ``directory``; returns the summary."""
    directory.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    (directory / f"{stem}.json").write_text(json.dumps({"results": results}, indent=1) + "\n")
    (directory / f"{stem}.md").write_text(markdown(summary))
    if summary:
        plot(summary, results, directory / f"{stem}.png")
    return summary
