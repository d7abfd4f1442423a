"""``genxr study analyze``: per-condition results, paired tests, plots and a Markdown report.

Measures, one value per participant and condition (practice trials left out):

* ``success_rate`` - share of the condition's trials whose task succeeded as judged: for
  simulated participants on the frames shown (:mod:`.seen`), for people by the experimenter;
* ``success_simulated_rate`` - the same trials judged from the simulator's state (simulated
  participants): what happened in the room, whatever the world showed;
* ``q:<questionnaire>`` - mean item score of a custom questionnaire (likert items;
  reverse-keyed items scored ``scale + 1 - answer``);
* ``<instrument>:<score>`` - a standard instrument's published scores
  (:mod:`.instruments`, e.g. ``ipq:spatial_presence``, ``nasa_tlx:raw_tlx``);
* latency from each trial session's metrics (ms; ``deadline_miss_rate`` a share),
  averaged over the condition's trials, with ``content_age_ms_p50`` (how old the world shown
  was at display time) beside ``content_latency_ms_p50``, and with an avatar its gaze toward
  the user (``avatar_eye_contact_ratio``, ``avatar_gaze_deg_p50``, ``avatar_facing_deg_p50``).

Questionnaires answered before and after the session (e.g. pre/post SSQ) are per participant,
not per condition: the report gives their scores per phase and, answered both times, the
post - pre difference.

Tests use participants with a value in every condition (paired). Two conditions: Wilcoxon
signed-rank (``scipy.stats.wilcoxon``, two-sided, exact for small n) with the matched-pairs
rank-biserial correlation as effect size. Three or more: Friedman (``friedmanchisquare``)
with Kendall's W. Writes ``report/report.md``, ``report/summary.json`` and one PNG per
measure into the study folder.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from genxr.evaluation.study.answers import score
from genxr.evaluation.study.instruments import get_instrument
from genxr.evaluation.study.protocol import Questionnaire
from genxr.evaluation.study.store import Study

SESSION_PHASES = ("before_session", "after_session")

LATENCY_MEASURES = ("frame_time_ms_p99", "deadline_miss_rate", "rotational_m2p_ms_p50", "content_latency_ms_p50",
                    "content_age_ms_p50", "avatar_eye_contact_ratio", "avatar_gaze_deg_p50", "avatar_facing_deg_p50")


def questionnaire_scores(questionnaire: Questionnaire, answers: dict[str, Any]) -> dict[str, float]:
    """Measure -> score of one answered questionnaire: an instrument's published scores
    (``<instrument>:<score>``), or a custom one's mean likert score (``q:<name>``)."""
    if questionnaire.instrument is not None:
        scores = get_instrument(questionnaire.instrument).score(answers)
        return {f"{questionnaire.name}:{key}": float(value) for key, value in scores.items()}
    items = {item.id: item for item in questionnaire.items}
    likert = [score(items[item_id], value) for item_id, value in answers.items()
              if item_id in items and items[item_id].kind == "likert"]
    return {f"q:{questionnaire.name}": float(np.mean(likert))} if likert else {}


def collect(study: Study) -> tuple[dict[str, dict[str, dict[str, float]]], list[str]]:
    """(measure -> participant -> condition -> value, notes); the session-level questionnaires
    (before / after the session) under the conditions ``before_session`` and ``after_session``."""
    values: dict[str, dict[str, dict[str, float]]] = {}
    notes: list[str] = []
    questionnaires = {q.name: q for q in study.protocol.questionnaires}

    def put(measure: str, participant: str, condition: str, value: float) -> None:
        values.setdefault(measure, {}).setdefault(participant, {})[condition] = value

    for participant in study.participants:
        records, log_notes = study.log(participant)
        notes += log_notes
        trials: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            if record.get("type") == "trial" and not record.get("practice"):
                trials.setdefault(record["condition"], []).append(record)
            elif record.get("type") == "questionnaires":
                where = record.get("phase") if record.get("phase") in SESSION_PHASES else record["condition"]
                for name, answers in record["answers"].items():
                    if name in questionnaires:
                        for measure, value in questionnaire_scores(questionnaires[name], answers).items():
                            put(measure, participant, where, value)
        for condition, rows in trials.items():
            judged = [bool(r["success"]) for r in rows if r.get("success") is not None]
            if judged:
                put("success_rate", participant, condition, float(np.mean(judged)))
            simulated = [bool(r["success_simulated"]) for r in rows if r.get("success_simulated") is not None]
            if simulated:
                put("success_simulated_rate", participant, condition, float(np.mean(simulated)))
            for key in LATENCY_MEASURES:
                numbers = [r["metrics"][key] for r in rows if r["metrics"].get(key) is not None]
                if numbers:
                    put(key, participant, condition, float(np.mean(numbers)))
    return values, notes


def paired_test(table: dict[str, dict[str, float]], conditions: list[str]) -> dict[str, Any]:
    """The paired test of one measure over the participants complete in every condition."""
    complete = sorted(p for p, row in table.items() if all(c in row for c in conditions))
    data = np.array([[table[p][c] for c in conditions] for p in complete], dtype=np.float64)
    out: dict[str, Any] = {"n": len(complete)}
    if len(complete) < 2:
        return {**out, "test": None, "note": "fewer than 2 participants with every condition"}
    from scipy import stats

    if len(conditions) == 2:
        diff = data[:, 1] - data[:, 0]
        out["test"] = "wilcoxon"
        nonzero = diff[diff != 0]
        if nonzero.size == 0:
            return {**out, "statistic": None, "p": None, "effect_size": 0.0, "effect": "rank-biserial r",
                    "note": "every paired difference is zero"}
        result = stats.wilcoxon(data[:, 0], data[:, 1])
        ranks = stats.rankdata(np.abs(nonzero))
        r = float((ranks[nonzero > 0].sum() - ranks[nonzero < 0].sum()) / ranks.sum())
        out.update(statistic=float(result.statistic), p=float(result.pvalue), effect_size=r, effect="rank-biserial r")
    else:
        out["test"] = "friedman"
        if np.all(data == data[:, :1]):
            return {**out, "statistic": None, "p": None, "effect_size": 0.0, "effect": "Kendall's W",
                    "note": "every participant scored all conditions alike"}
        result = stats.friedmanchisquare(*data.T)
        w = float(result.statistic / (len(complete) * (len(conditions) - 1)))
        out.update(statistic=float(result.statistic), p=float(result.pvalue), effect_size=w, effect="Kendall's W")
    if len(complete) < 6:
        out["note"] = f"n={len(complete)}: too few participants for a small p-value; descriptive only"
    return out


def _plot(measure: str, table: dict[str, dict[str, float]], conditions: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.0, 3.0), dpi=100)
    for x, condition in enumerate(conditions):
        points = [row[condition] for row in table.values() if condition in row]
        if points:
            ax.bar(x, float(np.mean(points)), color="#8fb3d9", width=0.6)
            ax.scatter(np.full(len(points), x) + np.linspace(-0.1, 0.1, len(points)), points, color="#1f3b5a", s=12,
                       zorder=3)
    for row in table.values():
        if all(c in row for c in conditions):
            ax.plot(range(len(conditions)), [row[c] for c in conditions], color="#999999", linewidth=0.7, zorder=2)
    ax.set_xticks(range(len(conditions)), conditions)
    ax.set_title(measure, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _describe(points: list[float]) -> dict[str, Any]:
    return {"mean": float(np.mean(points)) if points else None,
            "sd": float(np.std(points, ddof=1)) if len(points) > 1 else None, "n": len(points)}


def analyze(study: Study, out: Path | None = None) -> dict[str, Any]:
    """Writes the report into ``out`` (default ``STUDY/report``); returns the summary."""
    out = Path(out or study.folder / "report")
    out.mkdir(parents=True, exist_ok=True)
    conditions = [c.name for c in study.protocol.conditions]
    values, notes = collect(study)
    around = {m: t for m, t in values.items() if any(k in SESSION_PHASES for row in t.values() for k in row)}
    values = {m: t for m, t in values.items() if m not in around}
    summary: dict[str, Any] = {"study": study.protocol.name, "participants": study.participants,
                               "conditions": conditions, "measures": {}, "session_measures": {}, "notes": notes}
    lines = [f"# {study.protocol.name}: study report", "",
             f"Participants: {len(study.participants)} ({', '.join(study.participants) or 'none'}). "
             f"Conditions: {', '.join(conditions)}.", ""]
    lines += ["| measure | " + " | ".join(f"{c} mean (sd)" for c in conditions) + " | n | test | statistic | p | effect size |",
              "|---" * (len(conditions) + 6) + "|"]
    for measure, table in values.items():
        stats_row: dict[str, Any] = {}
        for condition in conditions:
            points = [row[condition] for row in table.values() if condition in row]
            stats_row[condition] = {"mean": float(np.mean(points)) if points else None,
                                    "sd": float(np.std(points, ddof=1)) if len(points) > 1 else None,
                                    "n": len(points)}
        test = paired_test(table, conditions)
        figure = out / f"{measure.replace(':', '_')}.png"
        _plot(measure, table, conditions, figure)
        summary["measures"][measure] = {"by_condition": stats_row, "test": test, "figure": figure.name,
                                        "values": table}
        cells = [f"{_fmt(stats_row[c]['mean'])} ({_fmt(stats_row[c]['sd'])})" for c in conditions]
        effect = "-" if test.get("effect_size") is None else f"{test['effect']} = {_fmt(test['effect_size'])}"
        lines.append(f"| {measure} | " + " | ".join(cells)
                     + f" | {test['n']} | {test.get('test') or '-'} | {_fmt(test.get('statistic'))} | "
                       f"{_fmt(test.get('p'))} | {effect} |")
    if around:
        lines += ["", "## Before and after the session", "",
                  "| measure | before mean (sd) | after mean (sd) | after - before mean (sd) | n | test | p |",
                  "|---|---|---|---|---|---|---|"]
    for measure, table in around.items():
        phases = {phase: [row[phase] for row in table.values() if phase in row] for phase in SESSION_PHASES}
        change = [row["after_session"] - row["before_session"] for row in table.values()
                  if all(phase in row for phase in SESSION_PHASES)]
        test = paired_test(table, list(SESSION_PHASES)) if len(phases) == 2 and change else {"n": 0, "test": None}
        described = {phase: _describe(points) for phase, points in phases.items()}
        summary["session_measures"][measure] = {"by_phase": described, "change": _describe(change), "test": test,
                                                "values": table}
        cells = [f"{_fmt(d['mean'])} ({_fmt(d['sd'])})" for d in (*described.values(), _describe(change))]
        lines.append(f"| {measure} | " + " | ".join(cells) + f" | {test['n']} | {test.get('test') or '-'} | "
                     f"{_fmt(test.get('p'))} |")
    test_notes = sorted({f"{m}: {s['test']['note']}" for m, s in summary["measures"].items() if s["test"].get("note")})
    lines += ["", "Paired tests over participants with every condition; two conditions: Wilcoxon signed-rank "
              "(rank-biserial r), more: Friedman (Kendall's W).", ""]
    lines += [f"- {note}" for note in test_notes + notes]
    lines += ["", "## Figures", ""] + [f"![{m}]({s['figure']})" for m, s in summary["measures"].items()]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    summary["report"] = str(out / "report.md")
    return summary
