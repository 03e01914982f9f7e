"""MLVU (Zhou et al., 2024), dev set, multiple-choice tasks (MLVU's "M-Avg").

Annotations, either of:

* lmms-eval's release (``sy1998/MLVU_dev``, ``mlvu/test-00000-of-00001.parquet`` or its rows as
  JSON): ``video_name, duration, question, candidates, answer, task_type, question_id``, where
  ``question`` already lists the options as ``(A) ...`` lines and ``answer`` is a letter;
* MLVU's own files (``MLVU/json/1_plotQA.json`` ... ``7_topic_reasoning.json``; give the file or
  the ``json`` folder): ``video, duration, question, candidates, answer`` (the option's text),
  ``question_type``. They are turned into lmms-eval's rows: options appended to the question as
  ``(A) text`` lines, the answer as its letter, ``findNeedle`` named ``needle``. Files without
  options (the open-ended ``8_sub_scene``, ``9_summary``) are skipped.

Videos: ``<videos>/<video_name>``, or MLVU's ``video/<n>_<task>/`` folders below it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from salova.errors import AnnotationError
from salova.eval.annotations import (
    ANNOTATION_SUFFIXES,
    VideoFinder,
    field,
    finish_docs,
    read_rows,
    require_default_prompt,
)
from salova.eval.extract import OFFICIAL_CONVENTION, extract_choice
from salova.eval.registry import EvalDoc, LoadOptions, Scored, TaskSpec, register_task

__all__ = ["MLVU_POST_PROMPT", "MLVU_DEV_TASK_TYPES", "mlvu_doc_to_text", "mlvu_m_avg", "load_mlvu"]

logger = logging.getLogger(__name__)

# Adapted from lmms-eval/lmms_eval/tasks/mlvu/{utils.py,mlvu_dev.yaml}@0.7.3.
MLVU_PRE_PROMPT = ""
MLVU_POST_PROMPT = "\nOnly give the best option.\nBest option: ("
MLVU_DEV_TASK_TYPES = ("anomaly_reco", "count", "ego", "needle", "order", "plotQA", "topic_reasoning")
"""lmms-eval's dev task types; its score is the mean of their accuracies (a type with no question scores 0)."""
MLVU_OFFICIAL_TASK_NAMES = {"findNeedle": "needle"}
"""MLVU's ``question_type`` values that lmms-eval's release names differently."""
MLVU_VIDEO_FOLDERS = {
    "plotQA": "1_plotQA",
    "needle": "2_needle",
    "ego": "3_ego",
    "count": "4_count",
    "order": "5_order",
    "anomaly_reco": "6_anomaly_reco",
    "topic_reasoning": "7_topic_reasoning",
}
"""Video folder of each task type in MLVU's release (``MLVU/video/<folder>``)."""


def mlvu_doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt of one MLVU question, as lmms-eval builds it."""
    return f"{MLVU_PRE_PROMPT}{doc['question']}{MLVU_POST_PROMPT}"


def _from_official(row: dict[str, Any], path: Path, index: int) -> dict[str, Any]:
    candidates = [str(c) for c in field(row, "candidates", path, index, list)]
    answer = field(row, "answer", path, index)
    if answer not in candidates:
        raise AnnotationError(path, f"row {index}: answer {answer!r} is not among the candidates")
    question = field(row, "question", path, index)
    listed = "".join(f"({chr(ord('A') + i)}) {candidate}\n" for i, candidate in enumerate(candidates))
    task_type = field(row, "question_type", path, index)
    video = field(row, "video", path, index)
    return {
        "video_name": video,
        "duration": row.get("duration"),
        "question": f"{question}\n{listed}",
        "candidates": candidates,
        "answer": chr(ord("A") + candidates.index(answer)),
        "task_type": MLVU_OFFICIAL_TASK_NAMES.get(task_type, task_type),
        "question_id": f"{task_type}/{video}/{index}",
    }


def _rows(path: Path) -> list[tuple[Path, int, dict[str, Any]]]:
    files = sorted(p for p in path.iterdir() if p.suffix in ANNOTATION_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise AnnotationError(path, "holds no annotation files")
    rows = []
    for file in files:
        for index, row in enumerate(read_rows(file)):
            if "question_type" in row:  # MLVU's own format
                if "candidates" not in row:
                    logger.info("%s: open-ended rows are not part of MLVU's multiple-choice score; skipped", file)
                    break
                row = _from_official(row, file, index)
            rows.append((file, index, row))
    return rows


def load_mlvu(path: Path, options: LoadOptions) -> list[EvalDoc]:
    """MLVU dev documents from lmms-eval's release or MLVU's own JSON files.

    Raises:
        AnnotationError: a malformed file or row.
        VideoNotFoundError: a missing video (unless ``options.skip_missing_videos``).
    """
    require_default_prompt(options, "MLVU")
    finder = VideoFinder(options.videos)
    docs: list[EvalDoc | tuple[str, str]] = []
    for file, index, doc in _rows(path):
        question_id = str(field(doc, "question_id", file, index, (str, int)))
        task_type = field(doc, "task_type", file, index)
        answer = field(doc, "answer", file, index)
        if answer not in "ABCDEF" or len(answer) != 1:
            raise AnnotationError(file, f"row {index}: answer must be an option letter, got {answer!r}")
        name = field(doc, "video_name", file, index)
        folder = MLVU_VIDEO_FOLDERS.get(task_type, task_type)
        video = finder.find([name, f"video/{folder}/{name}", f"{folder}/{name}"])
        if video is None:
            docs.append((question_id, name))
            continue
        question = field(doc, "question", file, index).split("\n")[0]
        docs.append(
            EvalDoc(
                question_id=question_id,
                video_id=name,
                video=video,
                question=question,
                prompt=mlvu_doc_to_text(doc),
                answer=answer,
                choices="ABCD",
                categories={"task_type": task_type},
                raw=doc,
            )
        )
    return finish_docs(docs, path, options)


def score_mlvu(doc: EvalDoc, response: str, convention: str) -> Scored:
    """lmms-eval: the shared extractor over A-D, compared exactly. Official: Video-MME's regex."""
    prediction = extract_choice(response, "ABCD", convention)
    counted = prediction != "" if convention == OFFICIAL_CONVENTION else True
    return Scored(prediction, prediction == doc.answer, counted=counted)


def mlvu_m_avg(results: list[tuple[EvalDoc, Scored]]) -> float:
    """lmms-eval's MLVU dev score in percent: the mean of the seven task types' accuracies."""
    accuracies = []
    for task_type in MLVU_DEV_TASK_TYPES:
        scored = [s for doc, s in results if doc.categories["task_type"] == task_type and s.counted]
        accuracies.append(100.0 * sum(s.correct for s in scored) / len(scored) if scored else 0.0)
    return sum(accuracies) / len(accuracies)


@register_task("mlvu")
def _mlvu() -> TaskSpec:
    return TaskSpec(
        name="mlvu",
        benchmark="MLVU (dev, M-Avg)",
        lmms_eval_task="mlvu_dev",
        dataset="sy1998/MLVU_dev (mlvu/test-00000-of-00001.parquet) or MLVU/json/*.json",
        load=load_mlvu,
        score=score_mlvu,
        categories=("task_type",),
        max_new_tokens=16,
        headline=mlvu_m_avg,
        note="Headline: lmms-eval's MLVU score, the mean of the seven dev task types' accuracies.",
    )
