"""ActivityNet-QA (Yu et al., 2019), test split: 8,000 open-ended questions on 800 videos.

Annotations, either of:

* the official files (``MILVLG/activitynet-qa``, ``dataset/test_q.json`` with ``video_name,
  question, question_id`` and ``dataset/test_a.json`` with ``answer, type, question_id``); give
  ``test_q.json`` and the answers are read from ``test_a.json`` beside it;
* lmms-eval's release (``lmms-eval/ActivityNetQA``), one row per question with both halves.

Videos: ``<videos>/v_<video_name>.mp4`` (``.webm``, ``.mkv``; or under ``all_test/``).

lmms-eval, like the paper, scores answers with a GPT judge (yes/no and a 0-5 score). Without a
judge model this task reports exact match of normalised answers (lower case, punctuation and
articles removed, whitespace collapsed: SQuAD's normalisation), a lower bound of the judged
accuracy.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from salova.errors import AnnotationError
from salova.eval.annotations import VideoFinder, field, finish_docs, read_rows, require_default_prompt
from salova.eval.registry import EXACT_MATCH, EvalDoc, LoadOptions, Scored, TaskSpec, register_task

__all__ = [
    "ACTIVITYNETQA_POST_PROMPT",
    "ACTIVITYNETQA_TYPES",
    "activitynetqa_doc_to_text",
    "normalize_answer",
    "load_activitynetqa",
]

# Adapted from lmms-eval/lmms_eval/tasks/activitynetqa/{utils.py,_default_template_yaml}@0.7.3.
ACTIVITYNETQA_PRE_PROMPT = ""
ACTIVITYNETQA_POST_PROMPT = " Answer the question using a single word or phrase."
ACTIVITYNETQA_TYPES: dict[int, str] = {
    0: "motion",
    1: "spatial relation",
    2: "temporal relation",
    3: "yes/no",
    4: "color",
    5: "object",
    6: "location",
    7: "number",
    8: "other",
}
"""ActivityNet-QA's ``type`` codes (its ``dataset/README.md``): question types 0-2, answer types 3-8."""
_VIDEO_EXTENSIONS = ("mp4", "webm", "mkv")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
GPT_JUDGE_NOTE = (
    "Open-ended answers scored by exact match of normalised text (no judge model). The paper's "
    "ActivityNet-QA accuracy and score come from a GPT judge (lmms-eval's gpt_eval_accuracy / "
    "gpt_eval_score), so they are not comparable with this number, which is a lower bound."
)


def activitynetqa_doc_to_text(doc: dict[str, Any]) -> str:
    """The prompt of one ActivityNet-QA question, as lmms-eval builds it."""
    return f"{ACTIVITYNETQA_PRE_PROMPT}{doc['question'].capitalize()}?{ACTIVITYNETQA_POST_PROMPT}"


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD's ``normalize_answer``)."""
    text = "".join(char for char in text.lower() if char not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _merged_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = read_rows(path)
    if all("answer" in row for row in rows):
        return list(enumerate(rows))
    answers_path = path.with_name(path.name.replace("_q.", "_a."))
    if answers_path == path:
        raise AnnotationError(path, "rows have no answers and the file is not named like test_q.json")
    answers = {}
    for index, row in enumerate(read_rows(answers_path)):
        answers[str(field(row, "question_id", answers_path, index))] = row
    merged = []
    for index, row in enumerate(rows):
        question_id = str(field(row, "question_id", path, index))
        if question_id not in answers:
            raise AnnotationError(answers_path, f"has no answer for question {question_id}")
        merged.append((index, {**row, **answers[question_id]}))
    return merged


def load_activitynetqa(path: Path, options: LoadOptions) -> list[EvalDoc]:
    """ActivityNet-QA documents from the official question/answer files or lmms-eval's rows.

    Raises:
        AnnotationError: a malformed file or row, or a question without an answer.
        VideoNotFoundError: a missing video (unless ``options.skip_missing_videos``).
    """
    require_default_prompt(options, "ActivityNet-QA")
    finder = VideoFinder(options.videos)
    docs: list[EvalDoc | tuple[str, str]] = []
    for index, doc in _merged_rows(path):
        question_id = str(field(doc, "question_id", path, index))
        name = field(doc, "video_name", path, index)
        kind = field(doc, "type", path, index, (int, str))
        stems = [f"v_{name}.{ext}" for ext in _VIDEO_EXTENSIONS]
        video = finder.find([*stems, *(f"all_test/{stem}" for stem in stems)])
        if video is None:
            docs.append((question_id, stems[0]))
            continue
        docs.append(
            EvalDoc(
                question_id=question_id,
                video_id=name,
                video=video,
                question=field(doc, "question", path, index),
                prompt=activitynetqa_doc_to_text(doc),
                answer=str(field(doc, "answer", path, index)),
                categories={"type": ACTIVITYNETQA_TYPES.get(int(kind), str(kind))},
                raw=doc,
            )
        )
    return finish_docs(docs, path, options)


def score_activitynetqa(doc: EvalDoc, response: str, convention: str) -> Scored:
    """Exact match of normalised answers (the answer convention does not apply)."""
    prediction = normalize_answer(response)
    return Scored(prediction, prediction == normalize_answer(doc.answer))


@register_task("activitynetqa")
def _activitynetqa() -> TaskSpec:
    return TaskSpec(
        name="activitynetqa",
        benchmark="ActivityNet-QA (test)",
        lmms_eval_task="activitynetqa",
        dataset="MILVLG/activitynet-qa (dataset/test_q.json + test_a.json) or lmms-eval/ActivityNetQA",
        load=load_activitynetqa,
        score=score_activitynetqa,
        metric=EXACT_MATCH,
        categories=("type",),
        max_new_tokens=64,
        note=GPT_JUDGE_NOTE,
    )
