"""Evaluation: benchmarks with lmms-eval's prompts and scoring, reports, V-NIAH and ablations.

* :func:`extract_choice` — the option letter a response chose (lmms-eval's extractor, or the
  official Video-MME script's with ``convention="videomme-official"``).
* Benchmarks (:func:`list_tasks`): ``videomme``, ``videomme_w_subtitle``, ``longvideobench``,
  ``mlvu``, ``mvbench``, ``activitynetqa``; each loads its official annotation files
  (:func:`load_docs`) and builds lmms-eval's prompt for every question.
* :func:`evaluate` — answer a benchmark with an :class:`EvalModel` (resumable), score it and
  write ``report.json`` / ``report.md`` (accuracy per category with 95 % Wilson intervals).
* :func:`build_synth_bench` — a Video-MME-format benchmark of held-out synthetic videos.
* :func:`run_niah` — the visual needle-in-a-haystack grid and its heatmap.
* :func:`run_ablation` — the paper's Table 3 and Table 7 rows on the synthetic benchmark.

Example:
    >>> from salova.eval import extract_choice
    >>> extract_choice("The answer is (C).")
    'C'
"""

from __future__ import annotations

import importlib
from typing import Any

from salova.eval.extract import CONVENTIONS, DEFAULT_CONVENTION, OFFICIAL_CONVENTION, extract_choice
from salova.eval.registry import EvalDoc, LoadOptions, Scored, TaskSpec, get_task, list_tasks, register_task
from salova.eval.report import Accuracy, Report, build_report, report_markdown, wilson_interval
from salova.eval.runner import evaluate, load_docs, read_predictions, run_predictions, score_predictions

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "OFFICIAL_CONVENTION",
    "extract_choice",
    "EvalDoc",
    "LoadOptions",
    "Scored",
    "TaskSpec",
    "get_task",
    "list_tasks",
    "register_task",
    "Accuracy",
    "Report",
    "build_report",
    "report_markdown",
    "wilson_interval",
    "evaluate",
    "load_docs",
    "read_predictions",
    "run_predictions",
    "score_predictions",
    "EvalModel",
    "EvalResponse",
    "ModelVariant",
    "VariantEvalModel",
    "AssistantEvalModel",
    "load_checkpoint",
    "SynthBenchConfig",
    "build_synth_bench",
    "NiahConfig",
    "run_niah",
    "AblationConfig",
    "run_ablation",
]

# Names whose modules import torch or the video stack; loaded on first use.
_LAZY = {
    "EvalModel": "salova.eval.adapters",
    "EvalResponse": "salova.eval.adapters",
    "ModelVariant": "salova.eval.adapters",
    "VariantEvalModel": "salova.eval.adapters",
    "AssistantEvalModel": "salova.eval.adapters",
    "load_checkpoint": "salova.eval.adapters",
    "SynthBenchConfig": "salova.eval.synth_bench",
    "build_synth_bench": "salova.eval.synth_bench",
    "NiahConfig": "salova.eval.niah",
    "run_niah": "salova.eval.niah",
    "AblationConfig": "salova.eval.ablate",
    "run_ablation": "salova.eval.ablate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'salova.eval' has no attribute {name!r}")
