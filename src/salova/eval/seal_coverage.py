"""Do the chosen segments cover distinct relevant scenes? ``topk`` against ``seal`` at the same budget.

On synthetic videos whose scenes repeat as near-duplicates (``SynthConfig.duplicate_probability``),
each scene belongs to a *group*: an original scene and all its near-duplicates (``duplicate_of``).

**Queries.** "Find every scene with X" questions built from the ground truth: for every object
(colour and shape) that appears in at least two groups of a video, the query
``Where does a red star appear?``; its *relevant groups* are the groups whose scenes show that
object, and every segment of those groups (originals and repeats) is relevant. These are the
questions where a budget spent on repeats is a budget not spent on other relevant scenes.

**Measures**, for a selection of ``K`` segments (a segment stands for the scene it overlaps most):

* **distinct relevant scenes**: how many different relevant groups the ``K`` segments show, and as a
  share of the query's relevant groups (recall);
* **distinct scenes**: how many different groups they show at all (``K`` minus the picks wasted on
  repeats).

Both selectors read the same relevance and the same features (the pipeline's segment features, the
routing tokens for SALOVA). Relevance comes from one of two sources:

* ``router``: the model's router logits for the query (what ``--selector`` uses);
* ``oracle``: a perfect retriever: 1 for every relevant segment, 0 for the others, ties broken at
  random (seeded) as a retriever's noise would. It isolates the selector from the router's quality:
  given the right scenes, does the budget go to distinct ones or to repeats?
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from salova.errors import MissingDependencyError
from salova.model.selection import SelectorConfig, select_subset
from salova.synth import SynthVideo
from salova.synth.vocab import with_article

__all__ = [
    "RELEVANCE_SOURCES",
    "MEASURES",
    "ORACLE_TIE_NOISE",
    "ObjectQuery",
    "CoverageCurve",
    "CoverageResult",
    "scene_groups",
    "segment_groups",
    "object_queries",
    "selection_coverage",
    "measure_coverage",
    "plot_coverage",
]

RELEVANCE_SOURCES = ("router", "oracle")
"""Where the relevance the selectors read comes from (see the module notes)."""
MEASURES = ("relevant", "recall", "distinct")
"""The measures of :class:`CoverageCurve`, in its field order."""
ORACLE_TIE_NOISE = 1e-3
"""Scale of the seeded noise that breaks the oracle's ties (far below its 0/1 gap)."""


def scene_groups(video: SynthVideo) -> list[int]:
    """Per scene, its group: the index of the original scene it repeats, or its own index."""
    return [scene.index if scene.duplicate_of is None else scene.duplicate_of for scene in video.scenes]


def _scene_at(video: SynthVideo, span: tuple[float, float]) -> int:
    start, end = span
    overlaps = [max(0.0, min(end, s.end_sec) - max(start, s.start_sec)) for s in video.scenes]
    return int(np.argmax(overlaps))


def segment_groups(spans: Sequence[tuple[float, float]], video: SynthVideo) -> list[int]:
    """Per segment, the group of the scene it overlaps most."""
    groups = scene_groups(video)
    return [groups[_scene_at(video, span)] for span in spans]


@dataclass(frozen=True)
class ObjectQuery:
    """A "find every scene with X" query and its relevant scene groups."""

    text: str
    relevant: frozenset[int]
    """Groups whose scenes show the object."""


def object_queries(video: SynthVideo, max_queries: int | None = None) -> list[ObjectQuery]:
    """One query per object (colour, shape) shown in at least two groups of ``video``, in sorted order.

    Args:
        video: the video's record.
        max_queries: keep at most this many (the first in sorted order); all when ``None``.
    """
    groups = scene_groups(video)
    holders: dict[tuple[str, str], set[int]] = {}
    for scene, group in zip(video.scenes, groups, strict=True):
        for obj in scene.objects:
            holders.setdefault((obj.color, obj.shape), set()).add(group)
    queries = [
        ObjectQuery(f"Where does {with_article(f'{color} {shape}')} appear?", frozenset(found))
        for (color, shape), found in sorted(holders.items())
        if len(found) >= 2
    ]
    return queries if max_queries is None else queries[:max_queries]


def selection_coverage(
    chosen: Sequence[int], groups: Sequence[int], relevant: frozenset[int]
) -> tuple[int, float, int]:
    """``(distinct relevant groups, their share of the relevant groups, distinct groups)`` of ``chosen``."""
    shown = {groups[i] for i in chosen}
    covered = len(shown & relevant)
    return covered, covered / len(relevant), len(shown)


@dataclass
class CoverageCurve:
    """Means over queries, one value per budget ``K``."""

    relevant: list[float] = field(default_factory=list)
    """Distinct relevant groups among the ``K`` segments."""
    recall: list[float] = field(default_factory=list)
    """The same as a share of the query's relevant groups."""
    distinct: list[float] = field(default_factory=list)
    """Distinct groups among the ``K`` segments."""

    def to_dict(self) -> dict[str, list[float]]:
        return {key: [round(v, 4) for v in values] for key, values in vars(self).items()}


@dataclass(frozen=True)
class CoverageResult:
    """The coverage experiment: curves per relevance source and selector."""

    budgets: tuple[int, ...]
    curves: dict[str, dict[str, CoverageCurve]]
    """``curves[source][selector]``."""
    ceiling: tuple[float, ...]
    """Per budget, the mean of ``min(K, relevant groups)``: the most distinct relevant scenes ``K`` can show."""
    queries: int
    queries_with_repeats: int
    """Queries with at least one relevant scene that repeats."""
    mean_relevant_groups: float
    mean_relevant_segments: float
    videos: int
    segments: int
    repeat_segments: int
    """Segments showing a scene that repeats an earlier one."""
    selector: dict[str, Any]
    """The ``seal`` settings used."""

    def to_dict(self) -> dict[str, Any]:
        data = {key: value for key, value in vars(self).items() if key != "curves"}
        data["budgets"] = list(self.budgets)
        data["ceiling"] = [round(v, 4) for v in self.ceiling]
        data["curves"] = {s: {k: c.to_dict() for k, c in by.items()} for s, by in self.curves.items()}
        return data

    def at(self, source: str, selector: str, budget: int) -> dict[str, float]:
        """Every measure at one budget."""
        position = self.budgets.index(budget)
        curve = self.curves[source][selector]
        return {measure: getattr(curve, measure)[position] for measure in MEASURES}


def measure_coverage(
    videos: Sequence[tuple[SynthVideo, Sequence[tuple[float, float]], Any, Sequence[ObjectQuery], Sequence[Any]]],
    budgets: Sequence[int],
    seal: SelectorConfig,
    seed: int = 0,
) -> CoverageResult:
    """Run both selectors at every budget over every query.

    Args:
        videos: per video ``(record, segment spans, (segments, dim) features, queries, router scores per
            query)``.
        budgets: the ``K`` values.
        seal: SEAL's settings (its ``name`` is ignored).
        seed: seed of the oracle's tie-breaking noise.

    Returns:
        :class:`CoverageResult`.
    """
    selectors = {"topk": SelectorConfig(name="topk"), "seal": SelectorConfig(**{**seal.to_dict(), "name": "seal"})}
    rng = np.random.default_rng(seed)
    sums = {s: {k: np.zeros((len(MEASURES), len(budgets))) for k in selectors} for s in RELEVANCE_SOURCES}
    count = with_repeats = segments = repeats = 0
    ceiling = np.zeros(len(budgets))
    relevant_groups = relevant_segments = 0
    for video, spans, features, queries, all_scores in videos:
        groups = segment_groups(spans, video)
        scenes = [_scene_at(video, span) for span in spans]
        segments += len(spans)
        repeats += sum(1 for s in scenes if video.scenes[s].duplicate_of is not None)
        for query, scores in zip(queries, all_scores, strict=True):
            relevant = np.array([g in query.relevant for g in groups])
            oracle = relevant.astype(np.float64) + ORACLE_TIE_NOISE * rng.random(len(groups))
            relevance = {"router": np.asarray(scores, dtype=np.float64), "oracle": oracle}
            count += 1
            relevant_groups += len(query.relevant)
            ceiling += np.minimum(np.asarray(budgets), len(query.relevant))
            relevant_segments += int(relevant.sum())
            with_repeats += any(
                video.scenes[s].duplicate_of is not None for s, r in zip(scenes, relevant, strict=True) if r
            )
            for source in RELEVANCE_SOURCES:
                for name, config in selectors.items():
                    for column, budget in enumerate(budgets):
                        chosen = select_subset(features, relevance[source], budget, config).order
                        sums[source][name][:, column] += selection_coverage(chosen, groups, query.relevant)
    curves = {
        source: {name: CoverageCurve(*(list(row / max(count, 1)) for row in sums[source][name])) for name in selectors}
        for source in RELEVANCE_SOURCES
    }
    return CoverageResult(
        budgets=tuple(budgets),
        curves=curves,
        ceiling=tuple(float(v) for v in ceiling / max(count, 1)),
        queries=count,
        queries_with_repeats=with_repeats,
        mean_relevant_groups=relevant_groups / max(count, 1),
        mean_relevant_segments=relevant_segments / max(count, 1),
        videos=len(videos),
        segments=segments,
        repeat_segments=repeats,
        selector=selectors["seal"].to_dict(),
    )


_PANELS = (
    ("oracle", "relevant", "distinct relevant scenes among the K read\n(oracle relevance)"),
    ("router", "relevant", "distinct relevant scenes among the K read\n(router relevance)"),
    ("router", "distinct", "distinct scenes among the K read\n(router relevance)"),
)
_STYLES = {"topk": ("tab:gray", "o", "top-K"), "seal": ("tab:blue", "s", "SEAL")}


def plot_coverage(result: CoverageResult, path: str | Path, title: str) -> Path:
    """Draw the coverage curves (three panels, see :data:`_PANELS`).

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    except ImportError as exc:
        raise MissingDependencyError("the coverage figure needs matplotlib: pip install matplotlib") from exc
    figure = Figure(figsize=(13.5, 4.2), constrained_layout=True)
    axes = figure.subplots(1, len(_PANELS))
    budgets = list(result.budgets)
    for ax, (source, measure, label) in zip(axes, _PANELS, strict=True):
        for name, (colour, marker, legend) in _STYLES.items():
            ax.plot(budgets, getattr(result.curves[source][name], measure), color=colour, marker=marker, label=legend)
        if measure == "distinct":
            ax.plot(budgets, budgets, color="black", linestyle=":", linewidth=1, label="K (no repeats)")
        else:
            ax.plot(budgets, result.ceiling, color="black", linestyle=":", linewidth=1, label="min(K, relevant scenes)")
        ax.set_xlabel("segments read (K)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.suptitle(title, fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
