"""SEAL's experiments on the synthetic world, in one command (``salova seal-eval``).

1. **Coverage** (:mod:`salova.eval.seal_coverage`): on videos with repeated near-duplicate scenes,
   how many distinct relevant scenes ``topk`` and ``seal`` cover at the same budget; a figure.
2. **Multiple-choice accuracy** with ``--selector topk`` and ``--selector seal`` side by side, scored
   by the same Video-MME code as ``salova eval`` (with the router's retrieval of the evidence).
3. **Streaming vs global**: the same questions answered from a streaming memory (SEAL's sliding
   window plus a kept subset, :class:`~salova.infer.stream.StreamMemory`) instead of the whole
   video. The memory is replayed over the video's index segment by segment with the question as the
   standing query, exactly as a live session would build it, so the gap measures the memory alone.

The corpus is written once into the work folder: synthetic videos (seed ``SEAL_SEED_BASE + seed``,
in the held-out range) with ``duplicate_probability`` near-duplicates and their questions as
Video-MME rows. Everything is deterministic for a given model; predictions files make a run resumable.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from salova.errors import ConfigError
from salova.eval.adapters import (
    AssistantEvalModel,
    EvalResponse,
    ModelVariant,
    answer_from_encoding,
    assistant_eval_model,
)
from salova.eval.registry import LoadOptions
from salova.eval.report import Report
from salova.eval.runner import evaluate
from salova.eval.seal_coverage import (
    CoverageResult,
    measure_coverage,
    object_queries,
    plot_coverage,
    scene_groups,
    segment_groups,
)
from salova.eval.synth_bench import HELD_OUT_SEED_MIN, videomme_rows
from salova.fileio import atomic_write_json, atomic_write_text
from salova.infer.stream import MemoryItem, StreamConfig, StreamMemory
from salova.model import SegmentEncoding
from salova.model.selection import SEAL_ALPHA, SelectorConfig
from salova.synth import SynthConfig, write_corpus

__all__ = ["SEAL_SEED_BASE", "SealEvalConfig", "StreamReplayEvalModel", "run_seal_eval", "seal_markdown"]

logger = logging.getLogger(__name__)

SEAL_SEED_BASE = HELD_OUT_SEED_MIN + 500_000
"""Corpus seed of ``--seed 0`` (held out from training, apart from the synthetic benchmark's seeds)."""
ANNOTATIONS_NAME = "videomme.json"
BUCKET = "medium"
"""Video-MME duration bucket of the corpus's videos (a few minutes each)."""


@dataclass(frozen=True)
class SealEvalConfig:
    """What ``salova seal-eval`` runs."""

    seed: int = 0
    """Corpus seed ``SEAL_SEED_BASE + seed``."""
    videos: int = 8
    minutes: float = 8.0
    duplicate_probability: float = 0.4
    """Chance that a scene repeats an earlier one as a near-duplicate."""
    questions_per_video: int = 16
    max_objects: int = SynthConfig.max_objects
    """Objects per scene, at most (1 for the quiet world the shipped checkpoint was trained on)."""
    text_probability: float = SynthConfig.text_probability
    """Share of scenes that show a word on screen."""
    fps: float = 4.0
    """Frame rate of the videos (the model samples 1 FPS)."""
    width: int = 320
    height: int = 240
    budgets: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10)
    """Budgets ``K`` of the coverage curves."""
    top_k: int = 5
    """``K`` of the multiple-choice runs (the assistant's default)."""
    alpha: float = SEAL_ALPHA
    """SEAL's relevance weight in every run."""
    window: int = 4
    """Streaming: the window (latest segments always kept)."""
    memory_budget: int = 8
    """Streaming: older segments kept by SEAL; with the window, about a third of an 8-minute video's
    segments."""
    limit: int | None = None
    """Only the first questions (quick runs)."""

    def __post_init__(self) -> None:
        if self.seed < 0 or self.videos < 1 or self.questions_per_video < 1:
            raise ConfigError("seed must be >= 0, videos and questions_per_video >= 1")
        if not self.budgets or min(self.budgets) < 1 or self.top_k not in self.budgets:
            raise ConfigError(f"budgets must be >= 1 and include top_k = {self.top_k}, got {self.budgets}")
        object.__setattr__(self, "budgets", tuple(sorted(set(self.budgets))))

    def synth(self) -> SynthConfig:
        return SynthConfig(
            seed=SEAL_SEED_BASE + self.seed,
            num_videos=self.videos,
            minutes=self.minutes,
            fps=self.fps,
            width=self.width,
            height=self.height,
            questions_per_video=self.questions_per_video,
            duplicate_probability=self.duplicate_probability,
            max_objects=self.max_objects,
            text_probability=self.text_probability,
        )

    def seal(self) -> SelectorConfig:
        return SelectorConfig(name="seal", alpha=self.alpha)

    def stream(self) -> StreamConfig:
        return StreamConfig(window=self.window, budget=self.memory_budget, selector=self.seal())

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}


class StreamReplayEvalModel:
    """Answers from a streaming memory replayed over the video's index (see the module notes).

    Args:
        base: an assistant-backed SALOVA evaluation model (indexes each video once).
        stream: window, budget and the memory's selector.
    """

    def __init__(self, base: AssistantEvalModel, stream: StreamConfig):
        if base.assistant.pipeline.name != "salova":
            raise ConfigError("the streaming replay runs a SALOVA pipeline")
        self.base = base
        self.stream = stream

    def describe(self) -> dict[str, Any]:
        return {
            **self.base.describe(),
            "stream": {"window": self.stream.window, "budget": self.stream.budget, **self.stream.selector.to_dict()},
        }

    def memory(self, video: Path, query: str) -> tuple[Any, list[int]]:
        """The video's index and the segments a streaming memory holds at its end for ``query``."""
        assistant = self.base.assistant
        index = assistant.index(video)
        pipeline = assistant.pipeline
        scores = pipeline.scores(index, query)
        features = pipeline.features(index)
        memory = StreamMemory(self.stream)
        for i, (start, end) in enumerate(index.spans):
            memory.add(MemoryItem(i, start, end, {}, None, features[i].float(), float(scores[i])))
        return index, [item.index for item in memory.candidates()]

    def answer(
        self,
        video: Path,
        prompt: str,
        *,
        query: str | None = None,
        top_k: int | None = None,
        max_new_tokens: int = 16,
        evidence: Sequence[tuple[float, float]] = (),
    ) -> EvalResponse:
        index, kept = self.memory(Path(video), query or prompt)
        rows = torch.tensor(kept)
        encoding = SegmentEncoding(
            routing_tokens=index.tensors["routing_tokens"][rows],
            latents=index.tensors["latents"][rows],
            segments_per_video=torch.tensor([len(kept)]),
        )
        pipeline = self.base.assistant.pipeline
        return answer_from_encoding(
            pipeline.model,
            pipeline.processor,
            encoding,
            tuple(index.spans[i] for i in kept),
            prompt,
            query=query,
            variant=self.base.variant,
            top_k=top_k or self.base.variant.top_k or self.base.assistant.config.top_k,
            max_new_tokens=max_new_tokens,
            evidence=evidence,
        )


def _corpus(work_dir: Path, config: SealEvalConfig) -> tuple[Any, Path]:
    corpus = write_corpus(work_dir / "corpus", config.synth(), progress=False)
    rows = []
    for number, video in enumerate(corpus.videos, start=1):
        rows += videomme_rows(video, BUCKET, number)
    annotations = work_dir / ANNOTATIONS_NAME
    atomic_write_json(annotations, rows)
    return corpus, annotations


def _coverage(base: AssistantEvalModel, corpus, config: SealEvalConfig) -> CoverageResult:
    assistant = base.assistant
    pipeline = assistant.pipeline
    entries = []
    for video in corpus.videos:
        index = assistant.index(corpus.video_path(video))
        features = pipeline.features(index).float()
        queries = object_queries(video)
        scores = [pipeline.scores(index, query.text).numpy() for query in queries]
        entries.append((video, index.spans, features, queries, scores))
    return measure_coverage(entries, config.budgets, config.seal(), seed=config.seed)


def _retained(stream_model: StreamReplayEvalModel, corpus) -> float:
    """Share of the questions' evidence groups (a scene or a near-duplicate of it) that the streaming
    memory still holds at the end of the video."""
    hits = total = 0
    for video in corpus.videos:
        path, group_of_scene = corpus.video_path(video), scene_groups(video)
        for question in video.questions:
            index, kept = stream_model.memory(path, question.question)
            groups = segment_groups(index.spans, video)
            wanted = {group_of_scene[e] for e in question.evidence_scenes}
            hits += len(wanted & {groups[i] for i in kept})
            total += len(wanted)
    return hits / total if total else 0.0


def run_seal_eval(
    model: str | None,
    work_dir: str | Path,
    out_dir: str | Path,
    config: SealEvalConfig | None = None,
    *,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run the three experiments and write ``coverage.png``, ``report.md`` and ``report.json`` into ``out_dir``.

    Args:
        model: what ``--model`` takes (a SALOVA checkpoint folder, ``salova``, ``tiny``).
        work_dir: the corpus and the predictions of each run (reused by a later run).
        out_dir: the figure and the reports.
        config: corpus, budgets, alpha and streaming settings.
        cache_dir: the assistant's feature cache.

    Returns:
        The report as a dict (what ``report.json`` holds).

    Raises:
        ConfigError: a pipeline other than SALOVA.
        ModelSpecError, CheckpointError: see :func:`salova.infer.load_pipeline`.
    """
    config = config or SealEvalConfig()
    work, out = Path(work_dir), Path(out_dir)
    corpus, annotations = _corpus(work, config)
    base = assistant_eval_model(model, variant=ModelVariant(top_k=config.top_k), cache_dir=cache_dir)
    if base.assistant.pipeline.name != "salova":
        raise ConfigError("seal-eval compares selectors over a SALOVA model's router; give a checkpoint or 'tiny'")
    coverage = _coverage(base, corpus, config)
    describe = base.assistant.pipeline.describe()
    plot_coverage(
        coverage,
        out / "coverage.png",
        f"{len(corpus.videos)} synthetic videos, "
        f"{coverage.repeat_segments} of {coverage.segments} segments repeat a scene; model {describe}",
    )
    options = LoadOptions(videos=corpus.root)
    reports: dict[str, Report] = {}
    variants = {
        "topk": base,
        "seal": base.with_variant(replace(base.variant, name="seal", selector=config.seal())),
        "stream": StreamReplayEvalModel(base, config.stream()),
    }
    for name, eval_model in variants.items():
        reports[name] = evaluate("videomme", annotations, eval_model, work / "runs" / name, options, limit=config.limit)
    retained = _retained(variants["stream"], corpus)
    report = {
        "model": describe,
        "config": config.to_dict(),
        "coverage": coverage.to_dict(),
        "accuracy": {name: r.overall.to_dict() for name, r in reports.items()},
        "retrieval": {name: None if r.retrieval is None else r.retrieval.to_dict() for name, r in reports.items()},
        "stream_evidence_retained": round(retained, 4),
    }
    atomic_write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", seal_markdown(report))
    return report


def seal_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: coverage at every budget, accuracy side by side, streaming vs global."""
    config, coverage = report["config"], report["coverage"]
    budgets = coverage["budgets"]
    lines = [
        "# SEAL selection and streaming on the synthetic world",
        "",
        f"Model: {report['model']}. Corpus: {config['videos']} videos of {config['minutes']:g} min, "
        f"duplicate probability {config['duplicate_probability']:g}, at most {config['max_objects']} "
        f"object{'s' if config['max_objects'] != 1 else ''} per scene, a word on "
        f"{config['text_probability']:.0%} of scenes: {coverage['segments']} segments, "
        f"{coverage['repeat_segments']} of them repeats of an earlier scene. SEAL alpha {config['alpha']:g}.",
        "",
        "## Distinct relevant scenes at the same budget",
        "",
        f'{coverage["queries"]} queries "Where does a <colour> <shape> appear?", one per object shown in at '
        f"least two scene groups; on average {coverage['mean_relevant_groups']:.2f} relevant groups in "
        f"{coverage['mean_relevant_segments']:.2f} segments; {coverage['queries_with_repeats']} queries have a "
        "relevant scene that repeats. A group is a scene and its near-duplicates.",
        "",
        "| relevance | measure | selector | " + " | ".join(f"K={k}" for k in budgets) + " |",
        "|---|---|---|" + "---:|" * len(budgets),
        "| | most possible | | " + " | ".join(f"{v:.2f}" for v in coverage["ceiling"]) + " |",
    ]
    names = {
        "relevant": "distinct relevant scenes",
        "recall": "share of the relevant scenes",
        "distinct": "distinct scenes",
    }
    for source, by_selector in coverage["curves"].items():
        for measure, label in names.items():
            for selector, curve in by_selector.items():
                cells = " | ".join(f"{v:.3f}" if measure == "recall" else f"{v:.2f}" for v in curve[measure])
                lines.append(f"| {source} | {label} | {selector} | {cells} |")
    lines += [
        "",
        "## Multiple-choice accuracy (Video-MME scoring)",
        "",
        f"{report['accuracy']['topk']['questions']} questions of the synthetic world about the same videos.",
        "",
        "| run | accuracy (%) [95% CI] | router top-1 (%) | recall@5 |",
        "|---|---|---:|---:|",
    ]
    labels = {
        "topk": f"global, --selector topk (K={config['top_k']})",
        "seal": f"global, --selector seal (K={config['top_k']})",
        "stream": f"streaming memory (window {config['window']} + budget {config['memory_budget']}), topk",
    }
    for name, accuracy in report["accuracy"].items():
        retrieval = (report["retrieval"][name] or {}) if name != "stream" else {}
        top1 = retrieval.get("top1", {}).get("accuracy")
        recall = retrieval.get("recall_at_5")
        lines.append(
            f"| {labels[name]} | {accuracy['accuracy']:.1f} [{accuracy['ci95'][0]:.1f}, {accuracy['ci95'][1]:.1f}] "
            f"| {'–' if top1 is None else f'{top1:.1f}'} | {'–' if recall is None else f'{recall:.3f}'} |"
        )
    gap = report["accuracy"]["topk"]["accuracy"] - report["accuracy"]["stream"]["accuracy"]
    lines += [
        "",
        f"Streaming vs global gap: {gap:+.1f} points (global minus streaming). The streaming memory holds "
        f"at most {config['window'] + config['memory_budget']} segments; at the end of a video it still holds "
        f"a segment of {100 * report['stream_evidence_retained']:.1f}% of the questions' evidence scenes "
        "(the router's top-1 and recall of a streaming run are left out: they are measured only where the "
        "evidence is still held).",
        "",
    ]
    return "\n".join(lines)
