"""LongVideoBench (Wu et al., 2024), validation split: 1,337 questions with up to five options.

Annotations: the official release (``longvideobench/LongVideoBench`` on Hugging Face):
``lvb_val.json`` (rows with ``candidates`` and ``correct_choice``) or
``validation-00000-of-00001.parquet`` (the same rows with the options flattened into ``option0`` ..
``option4``, ``"N/A"`` where a question has fewer). Fields used: ``id, video_id, video_path,
question, correct_choice, duration_group, question_category``. Videos: ``<videos>/<video_path>``
(or ``videos/<video_path>`` below it).

Only lmms-eval's video variant (``longvideobench_val_v``) is reproduced: the ``_i`` variant
interleaves subtitles with sampled images for image models.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from salova.errors import AnnotationError
from salova.eval.annotations import VideoFinder, field, finish_docs, read_rows, require_default_prompt
from salova.eval.extract import OFFICIAL_CONVENTION, extract_choice, longvideobench_choice
from salova.eval.registry import EvalDoc, LoadOptions, Scored, TaskSpec, register_task

__all__ = [
    "LONGVIDEOBENCH_POST_PROMPT",
    "LONGVIDEOBENCH_MAX_OPTIONS",
    "longvideobench_doc_to_text",
    "load_longvideobench",
]

# Adapted from lmms-eval/lmms_eval/tasks/longvideobench/{utils.py,longvideobench_val_v.yaml}@0.7.3.
LONGVIDEOBENCH_PRE_PROMPT = ""
LONGVIDEOBENCH_POST_PROMPT = "Answer with the option's letter from the given choices directly.\n"
LONGVIDEOBENCH_MAX_OPTIONS = 5
LONGVIDEOBENCH_NO_OPTION = "N/A"
"""Value of the unused ``option<i>`` columns."""
_CATEGORIES = ("duration_group", "question_category")


def _options(doc: dict[str, Any]) -> list[Any]:
    # doc.get: a missing column reads as None and, as in lmms-eval, is not "N/A".
    return [doc.get(f"option{i}") for i in range(LONGVIDEOBENCH_MAX_OPTIONS)]


def longvideobench_doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt of one LongVideoBench question, as lmms-eval builds it (video variant)."""
    candidates = [option for option in _options(doc) if option != LONGVIDEOBENCH_NO_OPTION]
    listed = "\n".join(f"{chr(ord('A') + i)}. {candidate}" for i, candidate in enumerate(candidates))
    return f"{LONGVIDEOBENCH_PRE_PROMPT}{doc['question']}\n{listed}\n{LONGVIDEOBENCH_POST_PROMPT}"


def _choices(doc: dict[str, Any]) -> str:
    letters = ""
    for i, option in enumerate(_options(doc)):
        if option == LONGVIDEOBENCH_NO_OPTION:  # lmms-eval stops at the first unused option
            break
        letters += chr(ord("A") + i)
    return letters


def _as_lmms_eval_doc(row: dict[str, Any], path: Path, index: int) -> dict[str, Any]:
    """``lvb_val.json`` rows list ``candidates``; lmms-eval's rows flatten them into ``option<i>``."""
    if "candidates" not in row:
        return dict(row)
    candidates = field(row, "candidates", path, index, list)
    if not 1 <= len(candidates) <= LONGVIDEOBENCH_MAX_OPTIONS:
        raise AnnotationError(path, f"row {index}: expected 1-{LONGVIDEOBENCH_MAX_OPTIONS} candidates")
    doc = {key: value for key, value in row.items() if key != "candidates"}
    for i in range(LONGVIDEOBENCH_MAX_OPTIONS):
        doc[f"option{i}"] = str(candidates[i]) if i < len(candidates) else LONGVIDEOBENCH_NO_OPTION
    return doc


def load_longvideobench(path: Path, options: LoadOptions) -> list[EvalDoc]:
    """LongVideoBench documents from the official annotation file.

    Raises:
        AnnotationError: a malformed file or row.
        VideoNotFoundError: a missing video (unless ``options.skip_missing_videos``).
    """
    require_default_prompt(options, "LongVideoBench")
    finder = VideoFinder(options.videos)
    docs: list[EvalDoc | tuple[str, str]] = []
    for index, row in enumerate(read_rows(path)):
        doc = _as_lmms_eval_doc(row, path, index)
        question_id = str(field(doc, "id", path, index, (str, int)))
        video_path = field(doc, "video_path", path, index)
        correct = field(doc, "correct_choice", path, index, int)
        choices = _choices(doc)
        if not 0 <= correct < len(choices):
            raise AnnotationError(path, f"row {index}: correct_choice {correct} outside the {len(choices)} options")
        video = finder.find([video_path, f"videos/{video_path}"])
        if video is None:
            docs.append((question_id, video_path))
            continue
        docs.append(
            EvalDoc(
                question_id=question_id,
                video_id=str(field(doc, "video_id", path, index, (str, int))),
                video=video,
                question=field(doc, "question", path, index),
                prompt=longvideobench_doc_to_text(doc),
                answer=chr(ord("A") + correct),
                choices=choices,
                categories={name: str(field(doc, name, path, index, (str, int))) for name in _CATEGORIES},
                raw=doc,
            )
        )
    return finish_docs(docs, path, options)


def score_longvideobench(doc: EvalDoc, response: str, convention: str) -> Scored:
    """lmms-eval: its parser; a response without a letter gets a random option (seeded by the
    question id here, so that a run is reproducible). Official: Video-MME's regex, unanswered left out."""
    if convention == OFFICIAL_CONVENTION:
        prediction = extract_choice(response, doc.choices, convention)
        return Scored(prediction, prediction == doc.answer, counted=prediction != "")
    prediction = longvideobench_choice(response, doc.choices, random.Random(f"longvideobench/{doc.question_id}"))
    return Scored(prediction, prediction == doc.answer)


@register_task("longvideobench")
def _longvideobench() -> TaskSpec:
    return TaskSpec(
        name="longvideobench",
        benchmark="LongVideoBench (val)",
        lmms_eval_task="longvideobench_val_v",
        dataset="longvideobench/LongVideoBench (lvb_val.json or validation-00000-of-00001.parquet)",
        load=load_longvideobench,
        score=score_longvideobench,
        categories=_CATEGORIES,
        max_new_tokens=32,
    )
