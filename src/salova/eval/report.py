"""Scores into reports: accuracy overall and per category, with 95 % Wilson score intervals.

The interval is the Wilson score interval for a binomial proportion (z = 1.96). It treats the
questions as independent; questions about one video are correlated, so the true uncertainty is
somewhat wider (lmms-eval reports a video-clustered standard error for the same reason).

A report is written as JSON (everything) and Markdown (the headline table, then one table per
category). For Video-MME-style benchmarks the headline is the official table: short, medium,
long, overall. When the questions carry their evidence spans (the synthetic benchmark), the
report adds the router's retrieval: top-1 accuracy (the best-scored segment holds evidence) and
recall at 5 (the share of the evidence segments among the five best-scored ones).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from salova.eval.extract import OFFICIAL_CONVENTION
from salova.eval.registry import EXACT_MATCH, EvalDoc, Scored, TaskSpec

__all__ = [
    "WILSON_Z",
    "RECALL_AT",
    "Accuracy",
    "Retrieval",
    "Report",
    "wilson_interval",
    "evidence_segments",
    "retrieval_hits",
    "build_report",
    "headline_table",
    "report_markdown",
    "CONVENTION_NOTES",
]

WILSON_Z = 1.959964
"""Normal quantile of a two-sided 95 % interval."""
RECALL_AT = 5
"""The ``k`` of the retrieval recall (the training issue's top-5 recall)."""
CONVENTION_NOTES: dict[str, str] = {
    "lmms-eval": "answers extracted as lmms-eval 0.7.3 does; a response without a letter counts as wrong",
    OFFICIAL_CONVENTION: (
        "answers extracted as Video-MME's eval_your_results.py does; questions without a letter are "
        "left out of the accuracy, as the official script does"
    ),
}


def wilson_interval(correct: int, count: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of ``correct / count``, as fractions; ``(0, 1)`` when ``count`` is 0."""
    if count == 0:
        return 0.0, 1.0
    p = correct / count
    denominator = 1.0 + z * z / count
    centre = (p + z * z / (2 * count)) / denominator
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``counted`` questions (``questions`` includes those the convention left out)."""

    correct: int
    counted: int
    questions: int

    @property
    def accuracy(self) -> float:
        """Percent; 0 when nothing was counted."""
        return 100.0 * self.correct / self.counted if self.counted else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        """95 % Wilson interval in percent."""
        low, high = wilson_interval(self.correct, self.counted)
        return 100.0 * low, 100.0 * high

    @classmethod
    def of(cls, scored: Iterable[Scored]) -> Accuracy:
        items = list(scored)
        counted = [s for s in items if s.counted]
        return cls(sum(s.correct for s in counted), len(counted), len(items))

    def to_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {
            "accuracy": round(self.accuracy, 2),
            "ci95": [round(low, 2), round(high, 2)],
            "correct": self.correct,
            "counted": self.counted,
            "questions": self.questions,
        }

    def cell(self) -> str:
        """``accuracy [low, high]``, or a dash when nothing was counted."""
        if not self.counted:
            return "–"
        low, high = self.interval
        return f"{self.accuracy:.1f} [{low:.1f}, {high:.1f}]"


def evidence_segments(evidence: Sequence[tuple[float, float]], segments: Sequence[Sequence[float]]) -> set[int]:
    """For each evidence span, the segment that overlaps it most (the first on a tie; none if no overlap)."""
    chosen: set[int] = set()
    for start, end in evidence:
        overlaps = [max(0.0, min(end, seg[1]) - max(start, seg[0])) for seg in segments]
        if overlaps and max(overlaps) > 0:
            chosen.add(overlaps.index(max(overlaps)))
    return chosen


def retrieval_hits(
    evidence: Sequence[tuple[float, float]], segments: Sequence[Sequence[Any]], k: int = RECALL_AT
) -> tuple[bool, float] | None:
    """``(top-1 hit, recall at k)`` of one routed question, or ``None`` when it cannot be measured
    (no evidence, no router scores or no segment overlapping the evidence).

    Args:
        evidence: ``(start_sec, end_sec)`` spans holding the answer.
        segments: per segment ``(start_sec, end_sec, score)``; ``score`` is ``None`` without routing.
        k: the recall's cut-off.
    """
    if not evidence or not segments or any(seg[2] is None for seg in segments):
        return None
    wanted = evidence_segments(evidence, segments)
    if not wanted:
        return None
    ranking = sorted(range(len(segments)), key=lambda i: -float(segments[i][2]))
    return ranking[0] in wanted, len(wanted & set(ranking[:k])) / len(wanted)


@dataclass(frozen=True)
class Retrieval:
    """Router retrieval of the evidence segment over the questions where it could be measured."""

    top1: Accuracy
    recall_at_k: float
    """Mean over questions, as a fraction."""
    k: int = RECALL_AT

    def to_dict(self) -> dict[str, Any]:
        return {
            "top1": self.top1.to_dict(),
            f"recall_at_{self.k}": round(self.recall_at_k, 4),
            "questions": self.top1.counted,
        }

    @classmethod
    def of(cls, hits: Sequence[tuple[bool, float]]) -> Retrieval | None:
        if not hits:
            return None
        top1 = [Scored("", hit) for hit, _ in hits]
        return cls(Accuracy.of(top1), sum(recall for _, recall in hits) / len(hits))


@dataclass(frozen=True)
class Report:
    """The scores of one benchmark run."""

    task: str
    benchmark: str
    metric: str
    convention: str
    overall: Accuracy
    headline: float
    """lmms-eval's score of the task in percent (the overall accuracy unless the task aggregates otherwise)."""
    buckets: dict[str, Accuracy]
    categories: dict[str, dict[str, Accuracy]]
    retrieval: Retrieval | None = None
    retrieval_buckets: dict[str, Retrieval] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    run: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "benchmark": self.benchmark,
            "metric": self.metric,
            "convention": self.convention,
            "interval": "95% Wilson score interval",
            "overall": self.overall.to_dict(),
            "headline": round(self.headline, 2),
            "buckets": {name: acc.to_dict() for name, acc in self.buckets.items()},
            "categories": {
                category: {value: acc.to_dict() for value, acc in values.items()}
                for category, values in self.categories.items()
            },
            "retrieval": None if self.retrieval is None else self.retrieval.to_dict(),
            "retrieval_buckets": {name: r.to_dict() for name, r in self.retrieval_buckets.items()},
            "notes": list(self.notes),
            "run": dict(self.run),
        }


def build_report(
    spec: TaskSpec,
    results: Sequence[tuple[EvalDoc, Scored, Sequence[Sequence[Any]]]],
    convention: str,
    *,
    run: Mapping[str, Any] | None = None,
) -> Report:
    """Aggregate scored questions into a :class:`Report`.

    Args:
        spec: the task.
        results: per question, its document, its score and its routed segments
            (``(start, end, score)``; may be empty).
        convention: the answer convention used to score.
        run: settings to record (model, prompt variant...).
    """
    pairs = [(doc, scored) for doc, scored, _ in results]
    overall = Accuracy.of(s for _, s in pairs)
    categories: dict[str, dict[str, Accuracy]] = {}
    for category in spec.categories:
        values: dict[str, list[Scored]] = {}
        for doc, scored in pairs:
            values.setdefault(doc.categories[category], []).append(scored)
        categories[category] = {value: Accuracy.of(values[value]) for value in sorted(values)}
    buckets = {}
    if spec.buckets:
        first = spec.categories[0]
        buckets = {b: Accuracy.of(s for doc, s in pairs if doc.categories[first] == b) for b in spec.buckets}
    hits_by_bucket: dict[str, list[tuple[bool, float]]] = {}
    all_hits = []
    for doc, _, segments in results:
        hit = retrieval_hits(doc.evidence, segments)
        if hit is not None:
            all_hits.append(hit)
            if spec.buckets:
                hits_by_bucket.setdefault(doc.categories[spec.categories[0]], []).append(hit)
    notes = [] if spec.metric == EXACT_MATCH else [f"convention {convention}: {CONVENTION_NOTES[convention]}"]
    if spec.note:
        notes.append(spec.note)
    retrieval_buckets = {b: Retrieval.of(hits_by_bucket[b]) for b in spec.buckets if hits_by_bucket.get(b)}
    return Report(
        task=spec.name,
        benchmark=spec.benchmark,
        metric=spec.metric,
        convention=convention,
        overall=overall,
        headline=spec.headline(pairs) if spec.headline is not None else overall.accuracy,
        buckets=buckets,
        categories=categories,
        retrieval=Retrieval.of(all_hits),
        retrieval_buckets={b: r for b, r in retrieval_buckets.items() if r is not None},
        notes=tuple(notes),
        run=dict(run or {}),
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def headline_table(report: Report) -> list[str]:
    """The official-style table: one column per bucket and ``Overall`` (Video-MME: short/medium/long)."""
    metric = "exact match (%)" if report.metric == EXACT_MATCH else "accuracy (%)"
    names = [*report.buckets, "overall"]
    cells = [*report.buckets.values(), report.overall]
    rows = [
        [metric, *(acc.cell() for acc in cells)],
        ["questions (counted / all)", *(f"{acc.counted} / {acc.questions}" for acc in cells)],
    ]
    if report.retrieval is not None:
        per_bucket = [report.retrieval_buckets.get(name) for name in report.buckets] + [report.retrieval]
        rows.append(["router top-1 (%)", *("–" if r is None else r.top1.cell() for r in per_bucket)])
        rows.append([f"router recall@{RECALL_AT}", *("–" if r is None else f"{r.recall_at_k:.3f}" for r in per_bucket)])
    return _table(["", *(name.capitalize() for name in names)], rows)


def report_markdown(report: Report) -> str:
    """The report as Markdown: title, settings, headline table, per-category tables, notes."""
    lines = [f"# {report.benchmark}", ""]
    settings = {key: value for key, value in report.run.items() if value not in (None, "")}
    if settings:
        lines += [", ".join(f"{key}: {value}" for key, value in settings.items()), ""]
    lines += headline_table(report)
    if report.headline != report.overall.accuracy:
        lines += ["", f"lmms-eval score: {report.headline:.2f}"]
    lines += ["", "Intervals: 95% Wilson score interval, questions treated as independent."]
    for category, values in report.categories.items():
        if report.buckets and category == next(iter(report.categories)):
            continue  # already the headline's columns
        lines += ["", f"## By {category}", ""]
        rows = [[value, acc.cell(), f"{acc.correct} / {acc.counted}"] for value, acc in values.items()]
        lines += _table([category, "accuracy (%) [95% CI]", "correct / counted"], rows)
    if report.notes:
        lines += ["", *(f"Note: {note}" for note in report.notes)]
    return "\n".join(lines) + "\n"
