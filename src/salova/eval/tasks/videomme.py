"""Video-MME (Fu et al., 2024): 900 videos, 2,700 four-option questions, short / medium / long.

Annotations: the official release on Hugging Face (``lmms-lab/Video-MME``,
``videomme/test-00000-of-00001.parquet``; the same rows as JSON or JSON Lines are accepted), one
row per question with ``video_id, duration, domain, sub_category, url, videoID, question_id,
task_type, question, options ["A. ...", ...], answer``. Videos: ``<videos>/<videoID>.mp4`` (or
``data/<videoID>.mp4`` below it, as unzipped; ``.MP4``/``.mkv`` too). Subtitles:
``<subtitles>/<videoID>.srt`` (default: a ``subtitle`` folder beside or inside ``<videos>``).

Rows may carry ``evidence_seconds`` (``[[start, end], ...]``; the synthetic benchmark writes it) to
report the router's retrieval of the evidence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from salova.errors import AnnotationError, ConfigError, VideoDecodeError
from salova.eval.annotations import VideoFinder, field, finish_docs, read_rows
from salova.eval.extract import OFFICIAL_CONVENTION, extract_choice
from salova.eval.registry import EvalDoc, LoadOptions, Scored, TaskSpec, register_task

__all__ = [
    "VIDEOMME_BUCKETS",
    "VIDEOMME_OPTION_PROMPT",
    "VIDEOMME_POST_PROMPTS",
    "VIDEOMME_SUBTITLE_PROMPT",
    "VIDEOMME_SUBTITLE_POST_PROMPT",
    "VIDEOMME_NO_SUBTITLES",
    "VIDEOMME_SUBTITLE_FRAMES",
    "videomme_doc_to_text",
    "videomme_subtitle_text",
    "load_videomme",
]

# Adapted from lmms-eval/lmms_eval/tasks/videomme/{utils.py,videomme.yaml,videomme_w_subtitle.yaml}@0.7.3.
VIDEOMME_BUCKETS = ("short", "medium", "long")
VIDEOMME_OPTION_PROMPT = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
"""lmms-eval uses this sentence, subtitles included, for the task without subtitles too."""
VIDEOMME_POST_PROMPTS: dict[str, str] = {
    "default": "\nAnswer with the option's letter from the given choices directly.",
    "llava_vid": "The best answer is:",
}
"""``videomme.yaml``'s ``lmms_eval_specific_kwargs``: ``default`` (any model the file does not list,
``salova`` included) and ``llava_vid`` (LLaVA-NeXT-Video, whose codebase SALOVA's release forks)."""
VIDEOMME_SUBTITLE_PROMPT = "This video's subtitles are listed below: \n"
VIDEOMME_SUBTITLE_POST_PROMPT = "The best answer is:"
"""The subtitle prompt ignores the YAML's post prompt and always ends with this."""
VIDEOMME_NO_SUBTITLES = "No subtitles available"
VIDEOMME_SUBTITLE_FRAMES: dict[str, int] = {"default": 32, "llava_vid": 768}
"""``frame_num`` of ``videomme_w_subtitle.yaml``: the subtitles shown are those on screen at this many
uniformly spaced frames."""
_SUBTITLE_PATTERN = re.compile(r'<font color="white" size=".72c">(.*?)</font>')
_VIDEO_NAMES = ("{id}.mp4", "{id}.MP4", "{id}.mkv", "data/{id}.mp4", "data/{id}.MP4", "data/{id}.mkv")
"""Where lmms-eval looks (``data/<videoID>.mp4``, then ``.MP4``, then ``.mkv``), plus the folder itself."""
_CATEGORIES = ("duration", "domain", "sub_category", "task_type")


def videomme_doc_to_text(doc: dict[str, Any], variant: str = "default") -> str:
    """The prompt of one Video-MME question without subtitles, as lmms-eval builds it."""
    options = "\n".join(str(option) for option in doc["options"])
    return f"{VIDEOMME_OPTION_PROMPT}\n{doc['question']}\n{options}\n{VIDEOMME_POST_PROMPTS[variant]}"


def _parse_srt_time(value: str) -> float:
    hours, minutes, rest = value.split(":")
    seconds, millis = rest.split(",")
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000


def _read_srt(path: Path) -> dict[tuple[float, float], str]:
    """Subtitle blocks keyed by their time span (a repeated span keeps the last text, as lmms-eval)."""
    blocks: dict[tuple[float, float], str] = {}
    with open(path, encoding="utf-8") as file:
        sections = file.read().split("\n\n")
    for section in sections:
        if not section.strip():
            continue
        lines = section.split("\n")
        if len(lines) >= 3:
            try:
                start, end = (_parse_srt_time(part) for part in lines[1].split(" --> "))
            except ValueError as exc:
                raise AnnotationError(path, f"malformed subtitle time line {lines[1]!r}") from exc
            blocks[(start, end)] = " ".join(lines[2:])
    return blocks


def _frame_count_and_rate(video: Path) -> tuple[float, int]:
    import cv2  # the same container reader lmms-eval uses, so frame counts agree

    capture = cv2.VideoCapture(str(video))
    try:
        fps, frames = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    if fps <= 0 or frames <= 0:
        raise VideoDecodeError(video, "cannot read the frame rate and frame count needed to place subtitles")
    return fps, frames


def videomme_subtitle_text(video: Path, subtitle: Path, frame_num: int) -> str:
    """The subtitle lines lmms-eval shows: those on screen at ``frame_num`` uniformly spaced frames."""
    fps, total = _frame_count_and_rate(video)
    spans = [(int(start * fps), int(end * fps), text) for (start, end), text in _read_srt(subtitle).items()]
    frame_num = total if frame_num == -1 else frame_num
    sampled = np.linspace(0, total - 1, frame_num, dtype=int).tolist()
    shown = [index for frame in sampled for index, span in enumerate(spans) if span[0] <= frame < span[1]]
    lines = []
    # list(set(...)) built from the same insertion sequence gives lmms-eval's (hash) order.
    for index in list(set(shown)):
        found = _SUBTITLE_PATTERN.findall(spans[index][2])
        if found:
            lines.append(found[0])
    return "\n".join(lines)


def videomme_subtitle_doc_to_text(doc: dict[str, Any], video: Path, subtitle: Path | None, variant: str) -> str:
    """The prompt of one Video-MME question with subtitles, as lmms-eval builds it."""
    if subtitle is not None and subtitle.is_file():
        text = videomme_subtitle_text(video, subtitle, VIDEOMME_SUBTITLE_FRAMES[variant])
    else:
        text = VIDEOMME_NO_SUBTITLES
    options = "\n".join(str(option) for option in doc["options"])
    return (
        f"{VIDEOMME_SUBTITLE_PROMPT}{text}\n{VIDEOMME_OPTION_PROMPT}\n{doc['question']}\n{options}\n"
        f"{VIDEOMME_SUBTITLE_POST_PROMPT}"
    )


def _subtitle_folder(options: LoadOptions) -> Path | None:
    if options.subtitles is not None:
        return options.subtitles
    for candidate in (options.videos / "subtitle", options.videos.parent / "subtitle"):
        if candidate.is_dir():
            return candidate
    return None


def _evidence(row: dict[str, Any], path: Path, index: int) -> tuple[tuple[float, float], ...]:
    spans = row.get("evidence_seconds")
    if spans is None:
        return ()
    try:
        return tuple((float(start), float(end)) for start, end in spans)
    except (TypeError, ValueError) as exc:
        raise AnnotationError(path, f"row {index}: evidence_seconds must be [[start, end], ...]") from exc


def load_videomme(path: Path, options: LoadOptions, *, subtitles: bool = False) -> list[EvalDoc]:
    """Video-MME documents from the official annotation file.

    Raises:
        AnnotationError: a malformed file or row.
        VideoNotFoundError: a missing video (unless ``options.skip_missing_videos``).
        ConfigError: an unknown prompt variant.
    """
    if options.prompt_variant not in VIDEOMME_POST_PROMPTS:
        raise ConfigError(f"Video-MME prompt variant must be one of {sorted(VIDEOMME_POST_PROMPTS)}")
    finder = VideoFinder(options.videos)
    subtitle_dir = _subtitle_folder(options) if subtitles else None
    docs: list[EvalDoc | tuple[str, str]] = []
    for index, row in enumerate(read_rows(path)):
        video_id = field(row, "videoID", path, index)
        question_id = field(row, "question_id", path, index)
        row_options = field(row, "options", path, index, (list, tuple))
        answer = field(row, "answer", path, index)
        letters = "".join(str(option)[:1] for option in row_options)
        if answer not in letters:
            raise AnnotationError(path, f"row {index}: answer {answer!r} is not one of the options' letters {letters}")
        categories = {name: str(field(row, name, path, index)) for name in _CATEGORIES}
        video = finder.find(name.format(id=video_id) for name in _VIDEO_NAMES)
        if video is None:
            docs.append((question_id, f"{video_id}.mp4"))
            continue
        doc = dict(row, options=list(row_options))
        if subtitles:
            srt = None if subtitle_dir is None else subtitle_dir / f"{video_id}.srt"
            prompt = videomme_subtitle_doc_to_text(doc, video, srt, options.prompt_variant)
        else:
            prompt = videomme_doc_to_text(doc, options.prompt_variant)
        docs.append(
            EvalDoc(
                question_id=question_id,
                video_id=video_id,
                video=video,
                question=field(row, "question", path, index),
                prompt=prompt,
                answer=answer,
                choices=letters,
                categories=categories,
                evidence=_evidence(row, path, index),
                raw=doc,
            )
        )
    return finish_docs(docs, path, options)


def score_videomme(doc: EvalDoc, response: str, convention: str) -> Scored:
    """lmms-eval: the shared extractor over A-D, compared case-insensitively; every question counts.
    Official: Video-MME's regex; questions without a letter are left out."""
    prediction = extract_choice(response, "ABCD", convention)
    if convention == OFFICIAL_CONVENTION:
        return Scored(prediction, prediction == doc.answer, counted=prediction != "")
    return Scored(prediction, prediction.lower() == doc.answer.lower())


def _spec(name: str, subtitles: bool) -> TaskSpec:
    return TaskSpec(
        name=name,
        benchmark="Video-MME (with subtitles)" if subtitles else "Video-MME",
        lmms_eval_task=name,
        dataset="lmms-lab/Video-MME (videomme/test-00000-of-00001.parquet)",
        load=lambda path, options: load_videomme(path, options, subtitles=subtitles),
        score=score_videomme,
        categories=_CATEGORIES,
        buckets=VIDEOMME_BUCKETS,
        max_new_tokens=16,
        prompt_variants=tuple(VIDEOMME_POST_PROMPTS),
    )


@register_task("videomme")
def _videomme() -> TaskSpec:
    return _spec("videomme", subtitles=False)


@register_task("videomme_w_subtitle")
def _videomme_w_subtitle() -> TaskSpec:
    return _spec("videomme_w_subtitle", subtitles=True)
