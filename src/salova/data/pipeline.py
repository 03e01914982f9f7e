"""The per-video pipeline of a data build: segment, caption, score, supervise, write.

:class:`VideoBuilder` loads the captioner and scoring models once and turns one video into
its records; :func:`process_video` runs it and writes the outcome atomically:
``records/<id>.json`` on success, ``errors/<id>.json`` on failure. Every engine (in-process,
worker processes, Ray) calls these two and nothing else, so all engines write the same
bytes for the same input and settings.
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from salova.data.captioners import CaptionerConfig, build_captioner
from salova.data.instructions import CAPTION_INSTRUCTIONS, draw_instructions
from salova.data.schema import GPT, HUMAN, Provenance, Record, Scene, Turn
from salova.data.scoring import BUNDLED_T2T_MODEL, ScoringConfig, TextTextScorer, VideoTextScorer
from salova.data.sources import VideoInput, load_sidecar, pick_indices, result_file_name, true_scene_index
from salova.data.supervision import CAPTION_LABEL_RULE, DEFAULT_QA_LABEL_RULE, LABEL_RULES, supervise
from salova.errors import CaptionerError, ConfigError, DataError, RecordError
from salova.fileio import atomic_write_json
from salova.synth.schema import OPTION_LETTERS, SynthQuestion, SynthVideo
from salova.video import IngestConfig, Segment, iter_segments, segment_video

__all__ = [
    "TASK_CHOICES",
    "QA_QUERIES",
    "QA_INSTRUCTION",
    "QA_ANSWER_PROMPT",
    "RECORDS_DIR",
    "ERRORS_DIR",
    "BuildConfig",
    "VideoBuilder",
    "VideoOutcome",
    "process_video",
    "read_result",
    "question_prompt",
    "prompt_question",
]

logger = logging.getLogger(__name__)

TASK_CHOICES = ("captions", "qa", "both")
"""What a build writes: caption records, question-answer records, or both."""
QA_QUERIES = ("question", "question_answer")
"""Text scored for a question: the question alone, or the question followed by its correct option."""
QA_INSTRUCTION = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)
"""First line of a multiple-choice question turn: lmms-eval's Video-MME prompt, so that a model trained
on these records reads at training time the prompt `salova eval videomme` gives it."""
QA_ANSWER_PROMPT = "Answer with the option's letter from the given choices directly."
"""Last line of a multiple-choice question turn (lmms-eval's Video-MME post prompt, after a blank line)."""
RECORDS_DIR = "records"
"""Sub-folder of a build with one result file per finished video."""
ERRORS_DIR = "errors"
"""Sub-folder of a build with one error file per failed video."""


@dataclass(frozen=True)
class BuildConfig:
    """Everything that decides what a data build writes."""

    task: str = "captions"
    """``captions`` (stage 1.5), ``qa`` (stage 2, from synthetic sidecars' questions) or ``both``."""
    ingest: IngestConfig = field(default_factory=IngestConfig)
    """Segmentation and frame sampling (``keep_frames`` is set by the build: frames are kept
    only when the captioner or V2T needs them)."""
    captioner: CaptionerConfig = field(default_factory=CaptionerConfig)
    """Which captioner writes the captions."""
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    """V2T and T2T models, thresholds and numerics."""
    qa_labels: str = DEFAULT_QA_LABEL_RULE
    """Label rule of question-answer records (see ``salova.data.supervision.LABEL_RULES``)."""
    qa_query: str = "question_answer"
    """Text scored for a question: ``question``, or ``question_answer`` (the question and its correct
    option, which names what the question is about; the router still sees only the question)."""
    seed: int = 0
    """Seed of the instruction draws."""
    instructions: tuple[str, ...] = CAPTION_INSTRUCTIONS
    """Captioning instructions, one drawn per segment."""
    torch_threads: int = 1
    """torch intra-op threads while a video is processed. Fixed so that every engine computes
    the same bits (matrix kernels split their sums by thread count)."""

    def __post_init__(self) -> None:
        if self.task not in TASK_CHOICES:
            raise ConfigError(f"task must be one of {TASK_CHOICES}, got {self.task!r}")
        if self.qa_labels not in LABEL_RULES:
            raise ConfigError(f"unknown qa_labels rule {self.qa_labels!r}; choose from {sorted(LABEL_RULES)}")
        if self.qa_query not in QA_QUERIES:
            raise ConfigError(f"qa_query must be one of {QA_QUERIES}, got {self.qa_query!r}")
        if self.seed < 0 or self.torch_threads < 1:
            raise ConfigError(f"seed must be >= 0 and torch_threads >= 1, got {self.seed}, {self.torch_threads}")
        if not self.instructions or not all(isinstance(i, str) and i.strip() for i in self.instructions):
            raise ConfigError("instructions must be a non-empty list of non-empty strings")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The record kinds written: ``("captions",)``, ``("qa",)`` or both."""
        return ("captions", "qa") if self.task == "both" else (self.task,)

    def settings(self) -> dict[str, Any]:
        """JSON form of every setting that changes the output (compared on resume)."""
        ingest = asdict(self.ingest)
        ingest.pop("keep_frames")
        ingest.pop("decode_threads")
        return {
            "task": self.task,
            "ingest": ingest,
            "captioner": self.captioner.settings(),
            "scoring": asdict(self.scoring),
            "qa_labels": self.qa_labels,
            "qa_query": self.qa_query,
            "seed": self.seed,
            "instructions": list(self.instructions),
            "torch_threads": self.torch_threads,
        }


@dataclass(frozen=True)
class VideoOutcome:
    """What became of one video: ``built`` or ``failed`` (with ``error``: type and message)."""

    id: str
    status: str
    error: str | None = None


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the body with ``count`` torch intra-op threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def question_prompt(question: SynthQuestion) -> str:
    """The human turn of a multiple-choice question, laid out as lmms-eval's Video-MME prompt."""
    options = "\n".join(f"{letter}. {question.options[letter]}" for letter in OPTION_LETTERS)
    return f"{QA_INSTRUCTION}\n{question.question}\n{options}\n\n{QA_ANSWER_PROMPT}"


def prompt_question(prompt: str) -> str:
    """The bare question of a prompt made by :func:`question_prompt`; any other prompt unchanged."""
    head = f"{QA_INSTRUCTION}\n"
    if not prompt.startswith(head) or not prompt.endswith(f"\n\n{QA_ANSWER_PROMPT}"):
        return prompt
    body = prompt[len(head) :].split("\n")
    options = [i for i, line in enumerate(body) if line.startswith(tuple(f"{x}. " for x in OPTION_LETTERS))]
    return "\n".join(body[: options[0]]) if options and options[0] > 0 else prompt


def _evidence_segments(sidecar: SynthVideo, segments: Sequence[Segment], question: SynthQuestion) -> list[int]:
    """Segments whose best-matching true scene holds the answer; if a short evidence scene was
    merged into a neighbour and is nobody's best match, every segment overlapping it."""
    wanted = set(question.evidence_scenes)
    best = [true_scene_index(sidecar.scenes, s.start_sec, s.end_sec) for s in segments]
    chosen = [i for i, scene in enumerate(best) if scene in wanted]
    if chosen:
        return chosen
    spans = [(sidecar.scenes[i].start_sec, sidecar.scenes[i].end_sec) for i in sorted(wanted)]
    return [i for i, s in enumerate(segments) if any(s.start_sec < end and start < s.end_sec for start, end in spans)]


class VideoBuilder:
    """Loads the captioner and scorers once; :meth:`build` turns one video into its records.

    Raises:
        ConfigError, ModelFolderError: a model cannot be loaded (at construction).
    """

    def __init__(self, config: BuildConfig):
        self.config = config
        scoring = config.scoring
        self.captioner = build_captioner(config.captioner)
        self.t2t = (
            TextTextScorer(scoring.t2t_model, device=scoring.device, batch_size=scoring.batch_size)
            if scoring.t2t_model
            else None
        )
        self.v2t = (
            VideoTextScorer(
                scoring.v2t_model,
                device=scoring.device,
                batch_size=scoring.batch_size,
                frames_per_segment=scoring.v2t_frames_per_segment,
            )
            if scoring.v2t_model
            else None
        )
        keep_frames = self.captioner.needs_frames or self.v2t is not None
        self.ingest = replace(config.ingest, keep_frames=keep_frames)

    def close(self) -> None:
        self.captioner.close()

    def provenance(self, label_rule: str) -> Provenance:
        scoring = self.config.scoring
        t2t = scoring.t2t_model
        return Provenance(
            captioner=self.captioner.describe(),
            v2t_model=str(Path(scoring.v2t_model).resolve()) if scoring.v2t_model else None,
            t2t_model=t2t if t2t in (None, BUNDLED_T2T_MODEL) else str(Path(t2t).resolve()),
            v2t_threshold=scoring.v2t_threshold,
            t2t_threshold=scoring.t2t_threshold,
            label_rule=label_rule,
        )

    def build(self, video: VideoInput) -> dict[str, Record]:
        """Segment, caption, score and supervise one video.

        Returns:
            Task name -> record, for each task of the config.

        Raises:
            VideoError: the file cannot be decoded.
            CaptionerError: captioning failed.
            DataError: task ``qa`` and no sidecar with questions beside the video.
        """
        with torch_threads(self.config.torch_threads):
            fps, segments, segment_embeddings = self._segments(video)
            instructions = draw_instructions(self.config.seed, video.id, len(segments), self.config.instructions)
            captions = self.captioner.caption(video, segments, instructions)
            if len(captions) != len(segments):
                raise CaptionerError(f"{video.id}: got {len(captions)} captions for {len(segments)} segments")
            base = {
                "id": video.id,
                "video": video.relative,
                "fps": fps,
                "duration_sec": segments[-1].end_sec,
                "scenes": tuple(Scene(s.start_frame, s.end_frame, s.start_sec, s.end_sec) for s in segments),
            }
            records = {}
            for task in self.config.tasks:
                if task == "captions":
                    turns = list(zip(instructions, captions, strict=True))
                    records[task] = self._record(base, task, captions, turns, captions, segment_embeddings, None)
                else:
                    records[task] = self._qa_record(video, base, segments, captions, segment_embeddings)
            return records

    def _segments(self, video: VideoInput) -> tuple[float, list[Segment], np.ndarray | None]:
        """Decode once, streaming: each segment's V2T embedding is computed as soon as the segment
        is complete, and only the frames the captioner will see are kept, so memory does not grow
        with the video's length. Returns the frame rate, the (slimmed) segments and the embeddings."""
        iterator = iter_segments(video.path, self.ingest)
        segments, embeddings = [], []
        try:
            for segment in iterator:
                if self.v2t is not None:
                    embeddings.append(self.v2t.embed_segments([segment.frames])[0])
                segments.append(self._slim(segment))
        finally:
            iterator.close()
        cap = self.ingest.scenes.max_segments
        if cap and len(segments) > cap:  # a stream without a stated duration: cap after the fact
            result = segment_video(video.path, self.ingest)
            segments = [self._slim(s) for s in result.segments]
            embeddings = list(self.v2t.embed_segments([s.frames for s in result.segments])) if self.v2t else []
        return float(iterator.info.fps), segments, np.stack(embeddings) if embeddings else None

    def _slim(self, segment: Segment) -> Segment:
        """The segment with only the frames its captioner reads."""
        if not self.captioner.needs_frames or segment.frames is None:
            return replace(segment, frames=None)
        keep = pick_indices(len(segment.frames), self.config.captioner.frames_per_segment)
        return replace(segment, frames=segment.frames[keep], frame_times=segment.frame_times[keep])

    def _qa_record(self, video, base, segments, captions, segment_embeddings) -> Record:
        sidecar = load_sidecar(video)
        if sidecar is None or not sidecar.questions:
            raise DataError(f"{video.path}: task 'qa' needs a synthetic sidecar with questions beside the video")
        questions = sidecar.questions
        if self.config.qa_query == "question":
            queries = [q.question for q in questions]
        else:
            queries = [f"{q.question} {q.answer_text}" for q in questions]
        turns = [(question_prompt(q), q.answer) for q in questions]
        evidence = [_evidence_segments(sidecar, segments, q) for q in questions]
        return self._record(base, "qa", queries, turns, captions, segment_embeddings, evidence)

    def _record(self, base, task, queries, turns, captions, segment_embeddings, evidence) -> Record:
        scoring = self.config.scoring
        sen_sim = self.t2t.score(queries, captions, decimals=scoring.decimals) if self.t2t else None
        lb_sim = None
        if self.v2t is not None:
            lb_sim = self.v2t.score_embedded(queries, segment_embeddings, decimals=scoring.decimals)
        rule = CAPTION_LABEL_RULE if task == "captions" else self.config.qa_labels
        labels = supervise(
            sen_sim,
            lb_sim,
            t2t_threshold=scoring.t2t_threshold,
            v2t_threshold=scoring.v2t_threshold,
            evidence=evidence,
            rule=rule,
            num_segments=len(base["scenes"]),
        )
        record = Record(
            **base,
            task=task,
            conversations=tuple(
                Turn(speaker, text) for pair in turns for speaker, text in zip((HUMAN, GPT), pair, strict=True)
            ),
            queries=tuple(queries),
            sen_sim=None if sen_sim is None else tuple(tuple(row) for row in sen_sim.tolist()),
            lb_sim=None if lb_sim is None else tuple(tuple(row) for row in lb_sim.tolist()),
            labels=tuple(tuple(row) for row in labels.tolist()),
            provenance=self.provenance(rule),
            evidence=None if evidence is None else tuple(tuple(e) for e in evidence),
        )
        record.validate()
        return record


def _result_paths(out_dir: Path, video_id: str) -> tuple[Path, Path]:
    name = result_file_name(video_id)
    return out_dir / RECORDS_DIR / name, out_dir / ERRORS_DIR / name


def process_video(builder: VideoBuilder, video: VideoInput, out_dir: str | Path) -> VideoOutcome:
    """Build one video and write its outcome atomically; a failure is recorded, not raised.

    On success ``records/<id>.json`` holds ``{"id", "video", "records": {task: record}}`` and
    any earlier ``errors/<id>.json`` is removed; on failure ``errors/<id>.json`` holds the
    error's type, message and traceback.

    Returns:
        The outcome (``built`` or ``failed``).
    """
    result_path, error_path = _result_paths(Path(out_dir), video.id)
    try:
        records = builder.build(video)
    except Exception as exc:  # one bad video must not stop the build; the error is kept on disk
        message = f"{type(exc).__name__}: {exc}"
        logger.info("%s failed: %s", video.id, message)  # returned and written to errors/
        atomic_write_json(
            error_path,
            {"id": video.id, "video": video.relative, "error": message, "traceback": traceback.format_exc()},
        )
        result_path.unlink(missing_ok=True)
        return VideoOutcome(video.id, "failed", message)
    document = {"id": video.id, "video": video.relative, "records": {t: r.to_dict() for t, r in records.items()}}
    atomic_write_json(result_path, document, indent=None)
    error_path.unlink(missing_ok=True)
    return VideoOutcome(video.id, "built")


def read_result(out_dir: str | Path, video: VideoInput, tasks: Sequence[str]) -> dict[str, Record] | None:
    """The records of a finished video, or ``None`` if its result is missing, unreadable,
    for another video, lacks one of ``tasks`` or holds an invalid record."""
    result_path, _ = _result_paths(Path(out_dir), video.id)
    try:
        document = json.loads(result_path.read_text(encoding="utf-8"))
        if document.get("id") != video.id or document.get("video") != video.relative:
            return None
        return {task: Record.from_dict(document["records"][task]) for task in tasks}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecordError) as exc:
        logger.warning("%s: unusable result (%s); it will be rebuilt", result_path, exc)
        return None


def read_error(out_dir: str | Path, video_id: str) -> str | None:
    """The recorded error of a failed video, or ``None``."""
    _, error_path = _result_paths(Path(out_dir), video_id)
    try:
        return str(json.loads(error_path.read_text(encoding="utf-8"))["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
