"""MVBench (Li et al., 2024): 20 temporal tasks of 200 multiple-choice questions each.

Annotations: the official release (``OpenGVLab/MVBench``, ``json/<task>.json``; give one file or
the ``json`` folder), rows ``video, question, candidates, answer`` (the option's text; some tasks
add ``start``/``end``, which lmms-eval, and so this loader, ignores: the whole clip is read). The
task name is the file's stem. Videos: ``<videos>/<task folder>/<video>`` with MVBench's folders
(``star/Charades_segment``, ``clevrer/video_validation``...), or anywhere below by file name.
"""

from __future__ import annotations

import string
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
from salova.eval.extract import OFFICIAL_CONVENTION, extract_choice, mvbench_choice, mvbench_is_correct
from salova.eval.registry import EvalDoc, LoadOptions, Scored, TaskSpec, register_task

__all__ = ["MVBENCH_POST_PROMPT", "MVBENCH_VIDEO_FOLDERS", "mvbench_doc_to_text", "load_mvbench"]

# Adapted from lmms-eval/lmms_eval/tasks/mvbench/{utils.py,mvbench_*.yaml}@0.7.3.
MVBENCH_QUESTION_PREFIX = "Question:"
MVBENCH_OPTION_HEADER = "\nOption:\n"
MVBENCH_POST_PROMPT = "Only give the best option.\n"
MVBENCH_VIDEO_FOLDERS: dict[str, str] = {
    "object_interaction": "star/Charades_segment",
    "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment",
    "action_localization": "sta/sta_video_segment",
    "moving_count": "clevrer/video_validation",
    "fine_grained_pose": "nturgbd_convert",
    "character_order": "perception/videos",
    "object_shuffle": "perception/videos",
    "egocentric_navigation": "vlnqa",
    "moving_direction": "clevrer/video_validation",
    "episodic_reasoning": "tvqa/video_fps3_hq_segment",
    "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video",
    "state_change": "perception/videos",
    "moving_attribute": "clevrer/video_validation",
    "action_antonym": "ssv2_video_mp4",
    "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": "clevrer/video_validation",
    "object_existence": "clevrer/video_validation",
    "action_count": "perception/videos",
}
"""Video folder of each task (lmms-eval's ``DATA_LIST``)."""
_ALTERNATE_ROOT = "data0613"
"""lmms-eval also looks for STAR and CLEVRER clips under this folder."""


def mvbench_doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt of one MVBench question, as lmms-eval builds it."""
    listed = "".join(f"({string.ascii_uppercase[i]}) {option}\n" for i, option in enumerate(doc["candidates"]))
    return f"{MVBENCH_QUESTION_PREFIX}{doc['question']}{MVBENCH_OPTION_HEADER}{listed}{MVBENCH_POST_PROMPT}"


def load_mvbench(path: Path, options: LoadOptions) -> list[EvalDoc]:
    """MVBench documents from the official ``json/<task>.json`` files.

    Raises:
        AnnotationError: a malformed file or row, or an answer that is not among the candidates.
        VideoNotFoundError: a missing video (unless ``options.skip_missing_videos``).
    """
    require_default_prompt(options, "MVBench")
    files = sorted(p for p in path.iterdir() if p.suffix in ANNOTATION_SUFFIXES) if path.is_dir() else [path]
    if not files:
        raise AnnotationError(path, "holds no annotation files")
    finder = VideoFinder(options.videos)
    docs: list[EvalDoc | tuple[str, str]] = []
    for file in files:
        task = file.stem
        folder = MVBENCH_VIDEO_FOLDERS.get(task, task)
        for index, row in enumerate(read_rows(file)):
            candidates = [str(c) for c in field(row, "candidates", file, index, list)]
            answer = field(row, "answer", file, index)
            if answer not in candidates:
                raise AnnotationError(file, f"row {index}: answer {answer!r} is not among the candidates")
            name = field(row, "video", file, index)
            question_id = f"{task}/{index}"
            video = finder.find([f"{folder}/{name}", f"{_ALTERNATE_ROOT}/{folder}/{name}", name])
            if video is None:
                docs.append((question_id, f"{folder}/{name}"))
                continue
            doc = dict(row, candidates=candidates)
            docs.append(
                EvalDoc(
                    question_id=question_id,
                    video_id=f"{folder}/{name}",
                    video=video,
                    question=field(row, "question", file, index),
                    prompt=mvbench_doc_to_text(doc),
                    answer=string.ascii_uppercase[candidates.index(answer)],
                    choices=string.ascii_uppercase[: len(candidates)],
                    categories={"task": task},
                    raw=doc,
                )
            )
    return finish_docs(docs, path, options)


def score_mvbench(doc: EvalDoc, response: str, convention: str) -> Scored:
    """lmms-eval: ``mcq_acc`` (both sides normalised, then compared); an empty response is left out
    of the accuracy, as lmms-eval's aggregation does. Official: Video-MME's regex."""
    if convention == OFFICIAL_CONVENTION:
        prediction = extract_choice(response, doc.choices, convention)
        return Scored(prediction, prediction == doc.answer, counted=prediction != "")
    return Scored(mvbench_choice(response), mvbench_is_correct(doc.answer, response), counted=response != "")


@register_task("mvbench")
def _mvbench() -> TaskSpec:
    return TaskSpec(
        name="mvbench",
        benchmark="MVBench",
        lmms_eval_task="mvbench",
        dataset="OpenGVLab/MVBench (json/<task>.json)",
        load=load_mvbench,
        score=score_mvbench,
        categories=("task",),
        max_new_tokens=16,
    )
