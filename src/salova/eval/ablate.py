"""The paper's ablations (Table 3 and Table 7) re-run on the synthetic benchmark.

Rows, each a :class:`~salova.eval.adapters.ModelVariant` of one checkpoint:

* frame sampling (Table 3): 8 and 16 uniformly sampled frames without the SR-Router (read as one
  segment), 1 FPS scene segments without the router (every segment read), 1 FPS with the router;
* FocusFast (Table 3): focus pathway only, fast pathway only, both;
* top-K (Table 7): K = 1, 5, 9, 13 segments read;
* focus (ours, not run by default): the router's top-K against the same K with the question's
  evidence segments forced in (the oracle), which tells reading errors from retrieval errors.

Every row is scored by the same Video-MME code as ``salova eval`` (short / medium / long /
overall). Rows that are the same run (1 FPS + router, focus + fast, and the top-K equal to the
default) are run once. Questions are asked video by video and, within a video, by every row, so
a video is indexed once for all scene-sampled rows and decoded once more per uniform row. Each
row's answers go to its own predictions file, so an interrupted ablation resumes.

The paper's numbers (SALOVA-Llama-3B on the real Video-MME, its Tables 3 and 7) stand beside
ours for the trend, not the level: our videos and model are synthetic and small. The extracted
paper text lost Table 3's check marks; its single-pathway FocusFast row (overall 36.9) is the one
without the routing tokens (section 5.3: the full model's advantage comes from "the simultaneous
use of routing tokens"), so it is placed beside our focus-only row, and no paper number exists
for fast only or for 1 FPS without the router.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from salova.errors import ConfigError, EvalError
from salova.eval.adapters import ModelVariant
from salova.eval.extract import DEFAULT_CONVENTION
from salova.eval.registry import LoadOptions, get_task
from salova.eval.report import Report
from salova.eval.runner import PredictionsFile, ask, iter_video_groups, load_docs, score_predictions
from salova.eval.synth_bench import ANNOTATIONS_NAME, VIDEOS_DIR
from salova.fileio import atomic_write_json, atomic_write_text

__all__ = [
    "GROUPS",
    "PAPER_GROUPS",
    "AblationRow",
    "AblationConfig",
    "ablation_rows",
    "run_ablation",
    "ablation_markdown",
]

logger = logging.getLogger(__name__)

GROUPS = ("frames", "pathways", "top-k", "focus")
"""Row groups: Table 3's frame sampling and FocusFast sections, Table 7's top-K, and the oracle focus."""
PAPER_GROUPS = GROUPS[:3]
"""The groups of the paper's tables (the default)."""
TOP_KS = (1, 5, 9, 13)
"""Table 7's retrieval numbers."""
PAPER_SALOVA = (48.3, 46.3, 41.1, 45.3)
"""SALOVA-Llama-3B on Video-MME (short, medium, long, overall): Tables 1 and 3, and Table 7's K = 9."""


@dataclass(frozen=True)
class AblationRow:
    """One row of the ablation table."""

    group: str
    label: str
    variant: ModelVariant
    paper: tuple[float, float, float, float] | None
    """The paper's Video-MME short, medium, long, overall (SALOVA-Llama-3B), or ``None``."""


def ablation_rows(groups: Sequence[str] = PAPER_GROUPS) -> list[AblationRow]:
    """The rows of the chosen groups, in the paper's order."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise ConfigError(f"Unknown ablation groups {unknown}; choose from {list(GROUPS)}")
    rows: list[AblationRow] = []
    if "frames" in groups:
        rows += [
            AblationRow(
                "frames",
                "8 frm, no router",
                ModelVariant("8frm", "uniform", 8, routing=False),
                (48.3, 42.0, 37.2, 42.5),
            ),
            AblationRow(
                "frames",
                "16 frm, no router",
                ModelVariant("16frm", "uniform", 16, routing=False),
                (50.0, 42.8, 38.0, 43.6),
            ),
            AblationRow("frames", "1 fps, no router", ModelVariant("1fps-norouter", routing=False), None),
            AblationRow("frames", "1 fps + router (SALOVA)", ModelVariant("salova"), PAPER_SALOVA),
        ]
    if "pathways" in groups:
        rows += [
            AblationRow("pathways", "focus only", ModelVariant("focus", pathways=("focus",)), (36.4, 38.6, 35.6, 36.9)),
            AblationRow("pathways", "fast only", ModelVariant("fast", pathways=("fast",)), None),
            AblationRow("pathways", "focus + fast", ModelVariant("salova", pathways=("fast", "focus")), PAPER_SALOVA),
        ]
    if "top-k" in groups:
        paper = {
            1: (48.1, 44.4, 39.1, 43.9),
            5: (48.1, 45.0, 39.2, 44.1),
            9: PAPER_SALOVA,
            13: (48.1, 44.7, 39.7, 44.1),
        }
        rows += [AblationRow("top-k", f"K = {k}", ModelVariant(f"k{k}", top_k=k), paper[k]) for k in TOP_KS]
    if "focus" in groups:
        rows += [
            AblationRow("focus", "router top-K (SALOVA)", ModelVariant("salova"), PAPER_SALOVA),
            AblationRow("focus", "evidence forced in (oracle)", ModelVariant("evidence", focus="evidence"), None),
        ]
    return rows


@dataclass(frozen=True)
class AblationConfig:
    """What ``salova ablate`` runs."""

    groups: tuple[str, ...] = PAPER_GROUPS
    top_k: int | None = None
    """K of the rows that do not vary it; the assistant's default (5) when ``None``."""
    convention: str = DEFAULT_CONVENTION
    limit: int | None = None
    """Only the first questions of the benchmark (quick runs)."""

    def __post_init__(self) -> None:
        ablation_rows(self.groups)  # validates the group names
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1, got {self.top_k}")


def _run_key(variant: ModelVariant, default_k: int, default_pathways: tuple[str, ...]) -> tuple:
    """Variants that produce identical answers share a key."""
    k = (variant.top_k or default_k) if variant.routing else None
    pathways = variant.pathways or default_pathways
    return (variant.sampling, variant.num_frames, variant.routing, pathways, k, variant.focus)


def _slug(key: tuple) -> str:
    sampling, frames, routing, pathways, k, focus = key
    parts = [f"uniform{frames}" if sampling == "uniform" else "1fps", "router" if routing else "norouter"]
    parts += ["-".join(pathways)] + ([f"k{k}"] if k is not None else [])
    parts += [] if focus == "router" else [focus]
    return re.sub(r"[^\w.-]", "_", "_".join(parts))


def run_ablation(
    model,
    bench_dir: str | Path,
    out_dir: str | Path,
    config: AblationConfig = AblationConfig(),
    *,
    predictions_dir: str | Path | None = None,
    progress=None,
) -> dict[str, Any]:
    """Run the ablation rows on a synthetic benchmark; write ``ablation.md`` and ``ablation.json``.

    Args:
        model: an :class:`~salova.eval.adapters.AssistantEvalModel` (or anything with ``with_variant``,
            ``describe`` and ``answer``) for the checkpoint.
        bench_dir: a folder written by ``salova synth-bench`` (``videomme.json`` and ``data/``).
        out_dir: output folder of ``ablation.md`` and ``ablation.json``.
        config: which rows, and the default K.
        predictions_dir: where each distinct run keeps its predictions file; ``out_dir`` by default.
        progress: called with ``(answers done, answers in total)``.

    Returns:
        The summary written to ``ablation.json``.

    Raises:
        AnnotationError, VideoNotFoundError: the benchmark folder is incomplete.
    """
    bench, out = Path(bench_dir), Path(out_dir)
    work = Path(predictions_dir) if predictions_dir is not None else out
    spec = get_task("videomme")
    docs = load_docs(spec, bench / ANNOTATIONS_NAME, LoadOptions(videos=bench / VIDEOS_DIR), config.limit)
    if not docs:
        raise EvalError(f"{bench}: no questions")
    checkpoint, assistant = _checkpoint(model)
    default_k = config.top_k or (assistant.config.top_k if assistant is not None else checkpoint.config.focus_top_k)
    keys = {
        row.label: _run_key(row.variant, default_k, tuple(checkpoint.config.focusfast_pathways))
        for row in ablation_rows(config.groups)
    }
    rows = ablation_rows(config.groups)
    runs: dict[tuple, ModelVariant] = {}
    for row in rows:
        key = keys[row.label]
        variant = row.variant if row.variant.top_k or not row.variant.routing else _with_k(row.variant, default_k)
        runs.setdefault(key, variant)
    run_info = {"annotations": ANNOTATIONS_NAME, "questions": len(docs), "limit": config.limit}
    files: dict[tuple, PredictionsFile] = {}
    models = {}
    try:
        for key, variant in runs.items():
            models[key] = model.with_variant(variant)
            run = {**run_info, **models[key].describe()}
            files[key] = PredictionsFile(
                work / _slug(key) / "predictions.jsonl", spec, run, {d.question_id for d in docs}
            )
        total, done = len(docs) * len(runs), sum(len(f.predictions) for f in files.values())
        for _, group in iter_video_groups(docs):
            for key, variant_model in models.items():
                for doc in group:
                    if doc.question_id not in files[key]:
                        files[key].add(ask(variant_model, doc, spec.max_new_tokens))
                        done += 1
                        if progress is not None:
                            progress(done, total)
    finally:
        for file in files.values():
            file.close()
    reports = {key: score_predictions(spec, docs, files[key].predictions, config.convention) for key in runs}
    summary = _summary(rows, keys, reports, default_k, config, model.describe(), len(docs))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "ablation.json", summary)
    atomic_write_text(out / "ablation.md", ablation_markdown(summary))
    return summary


def _checkpoint(model):
    """The SALOVA model behind an evaluation model, and its assistant (or ``None``)."""
    assistant = getattr(model, "assistant", None)
    if assistant is not None:
        if assistant.pipeline.name != "salova":
            raise ConfigError(f"ablations need a SALOVA checkpoint, not the {assistant.pipeline.name} pipeline")
        return assistant.pipeline.model, assistant
    return model.model, None


def _with_k(variant: ModelVariant, k: int) -> ModelVariant:
    return replace(variant, top_k=k)


def _summary(
    rows: list[AblationRow],
    keys: dict[str, tuple],
    reports: dict[tuple, Report],
    default_k: int,
    config: AblationConfig,
    described: dict[str, Any],
    questions: int,
) -> dict[str, Any]:
    entries = []
    for row in rows:
        report = reports[keys[row.label]]
        ours = [report.buckets[b].to_dict() for b in ("short", "medium", "long")] + [report.overall.to_dict()]
        entries.append(
            {
                "group": row.group,
                "label": row.label,
                "variant": row.variant.to_dict(),
                "run": _slug(keys[row.label]),
                "paper": None if row.paper is None else list(row.paper),
                "ours": ours,
                "router_top1": None if report.retrieval is None else report.retrieval.top1.to_dict(),
            }
        )
    described = {k: v for k, v in described.items() if k != "variant"}
    return {
        "benchmark": "synthetic Video-MME-format benchmark",
        "model": described,
        "questions": questions,
        "default_top_k": default_k,
        "convention": config.convention,
        "rows": entries,
    }


_GROUP_TITLES = {
    "frames": "Table 3: frame sampling",
    "pathways": "Table 3: FocusFast",
    "top-k": "Table 7: top-K",
    "focus": "focus (ours)",
}


def ablation_markdown(summary: dict[str, Any]) -> str:
    """One table: the paper's Video-MME rows beside ours on the synthetic benchmark."""
    model = summary["model"].get("model", "")
    lines = [
        "# Ablations: paper (SALOVA-Llama-3B, Video-MME) beside ours (synthetic benchmark)",
        "",
        f"Model: {model}; {summary['questions']} questions; K = {summary['default_top_k']} unless the row sets it; "
        f"answers extracted with the {summary['convention']} convention. Accuracy in %; ours with its 95% "
        "Wilson interval overall. The paper's numbers are on real videos with a 3B model: compare trends, not levels.",
        "",
        "| ablation | setting | paper S | paper M | paper L | paper overall "
        "| ours S | ours M | ours L | ours overall | ours router top-1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary["rows"]:
        paper = ["–"] * 4 if row["paper"] is None else [f"{v:.1f}" for v in row["paper"]]
        ours = [f"{cell['accuracy']:.1f}" for cell in row["ours"][:3]]
        overall = row["ours"][3]
        ours.append(f"{overall['accuracy']:.1f} [{overall['ci95'][0]:.1f}, {overall['ci95'][1]:.1f}]")
        top1 = "–" if row["router_top1"] is None else f"{row['router_top1']['accuracy']:.1f}"
        cells = [_GROUP_TITLES[row["group"]], row["label"], *paper, *ours, top1]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
