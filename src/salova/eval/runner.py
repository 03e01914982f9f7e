"""Running a model over a benchmark, resumably, and scoring the results.

Predictions go to a JSON Lines file as they are made: a header line that identifies the run
(benchmark, annotation file, model and variant, prompt variant), then one line per question
(``question_id``, the raw response, the routed segments, seconds). A run that stops is resumed by
running it again: questions already in the file are skipped, a line cut off by a crash is
dropped, and a file written with other settings is refused rather than mixed. Questions are
asked video by video so that each video is indexed once.

Scoring reads the file, so a finished run can be re-scored under the other answer convention
without asking the model again.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from salova.errors import ConfigError, EvalError, ResultsMismatchError
from salova.eval.extract import CONVENTIONS, DEFAULT_CONVENTION
from salova.eval.registry import EXACT_MATCH, EvalDoc, LoadOptions, TaskSpec, get_task
from salova.eval.report import Report, build_report
from salova.fileio import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from salova.eval.adapters import EvalModel

__all__ = [
    "RESULTS_FORMAT",
    "RESULTS_VERSION",
    "Prediction",
    "load_docs",
    "read_predictions",
    "run_predictions",
    "score_predictions",
    "write_report",
    "evaluate",
    "iter_video_groups",
    "PredictionsFile",
    "ask",
]

logger = logging.getLogger(__name__)

RESULTS_FORMAT = "salova-eval-predictions"
RESULTS_VERSION = 1
PREDICTIONS_NAME = "predictions.jsonl"
REPORT_JSON_NAME = "report.json"
REPORT_MARKDOWN_NAME = "report.md"

ProgressCallback = Callable[[int, int], None]
"""``(questions done, questions in total)``."""


@dataclass(frozen=True)
class Prediction:
    """One line of a predictions file."""

    question_id: str
    response: str
    segments: tuple[tuple[float, float, float | None], ...]
    """Per segment of the video: ``(start_sec, end_sec, router score or None)``."""
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "question_id": self.question_id,
            "response": self.response,
            "segments": [list(s) for s in self.segments],
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        return cls(
            question_id=str(data["question_id"]),
            response=str(data["response"]),
            segments=tuple((float(s[0]), float(s[1]), None if s[2] is None else float(s[2])) for s in data["segments"]),
            seconds=float(data.get("seconds", 0.0)),
        )


def load_docs(
    task: str | TaskSpec, annotations: str | Path, options: LoadOptions, limit: int | None = None
) -> list[EvalDoc]:
    """The documents of a benchmark, optionally only the first ``limit``.

    Raises:
        ConfigError: unknown task or prompt variant.
        AnnotationError, VideoNotFoundError: see the task's loader.
    """
    spec = get_task(task) if isinstance(task, str) else task
    docs = spec.load(Path(annotations), options)
    return docs[:limit] if limit is not None else docs


def iter_video_groups(docs: Sequence[EvalDoc]) -> Iterator[tuple[str, list[EvalDoc]]]:
    """``(video_id, questions)`` in order of first appearance."""
    groups: dict[str, list[EvalDoc]] = {}
    for doc in docs:
        groups.setdefault(doc.video_id, []).append(doc)
    yield from groups.items()


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ConfigError(f"Unknown answer convention {convention!r}; choose from {sorted(CONVENTIONS)}")


def _header(spec: TaskSpec, run: Mapping[str, Any]) -> dict[str, Any]:
    return {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "task": spec.name, "run": dict(run)}


def read_predictions(path: str | Path) -> tuple[dict[str, Any], dict[str, Prediction]]:
    """The header and the predictions (by question id) of a predictions file.

    A last line cut off mid-write is ignored.

    Raises:
        ResultsMismatchError: not a predictions file.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").split("\n")
    try:
        header = json.loads(lines[0])
    except ValueError as exc:
        raise ResultsMismatchError(path, "is not a salova predictions file (bad header)") from exc
    if not isinstance(header, dict) or header.get("format") != RESULTS_FORMAT:
        raise ResultsMismatchError(path, "is not a salova predictions file")
    if header.get("version") != RESULTS_VERSION:
        raise ResultsMismatchError(
            path, f"predictions format version {header.get('version')}, expected {RESULTS_VERSION}"
        )
    predictions: dict[str, Prediction] = {}
    body = lines[1:]
    for number, line in enumerate(body, start=2):
        if not line.strip():
            continue
        try:
            prediction = Prediction.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            if number == len(lines) or all(not rest.strip() for rest in lines[number:]):
                logger.warning("%s: dropped the unfinished last line", path)
                break
            raise ResultsMismatchError(path, f"line {number} is not a prediction: {exc}") from exc
        predictions[prediction.question_id] = prediction
    return header, predictions


class PredictionsFile:
    """A predictions file opened for appending: created with its header, or resumed.

    Args:
        path: the JSON Lines file.
        spec: the task.
        run: everything that identifies the run (settings and the model's ``describe()``).
        question_ids: the run's questions; answers to other questions in a resumed file are refused.

    Raises:
        ResultsMismatchError: the file belongs to a run with other settings or other questions.
    """

    def __init__(self, path: str | Path, spec: TaskSpec, run: Mapping[str, Any], question_ids: set[str] | None = None):
        self.path = Path(path)
        header = json.loads(json.dumps(_header(spec, run)))  # the form it has once read back
        self.predictions: dict[str, Prediction] = {}
        if self.path.exists():
            existing, self.predictions = read_predictions(self.path)
            if existing != header:
                old, new = existing.get("run", {}), header["run"]
                changed = sorted(key for key in set(old) | set(new) if old.get(key) != new.get(key))
                raise ResultsMismatchError(
                    self.path,
                    f"was written by a run with other settings (differs in {changed or ['task']}); "
                    "use another output folder",
                )
            if self.predictions:
                logger.info("%s: resuming with %d answers", self.path, len(self.predictions))
        stale = sorted(set(self.predictions) - question_ids) if question_ids is not None else []
        if stale:
            raise ResultsMismatchError(
                self.path, f"holds answers to {len(stale)} questions not in this run (e.g. {stale[0]})"
            )
        # (Re)write header and answers so that a line torn by a crash is gone and appends start clean.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps(header)] + [json.dumps(p.to_dict()) for p in self.predictions.values()]
        atomic_write_text(self.path, "\n".join(lines) + "\n")
        self._out = open(self.path, "a", encoding="utf-8")

    def __contains__(self, question_id: str) -> bool:
        return question_id in self.predictions

    def add(self, prediction: Prediction) -> None:
        """Append one answer (flushed at once, so a crash loses at most the question being asked)."""
        self._out.write(json.dumps(prediction.to_dict()) + "\n")
        self._out.flush()
        self.predictions[prediction.question_id] = prediction

    def close(self) -> None:
        if not self._out.closed:
            os.fsync(self._out.fileno())
            self._out.close()

    def __enter__(self) -> PredictionsFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def ask(model: EvalModel, doc: EvalDoc, max_new_tokens: int) -> Prediction:
    """One question to one model, timed."""
    started = time.perf_counter()
    response = model.answer(
        doc.video, doc.prompt, query=doc.question, max_new_tokens=max_new_tokens, evidence=doc.evidence
    )
    segments = tuple((s.start, s.end, s.score) for s in response.segments)
    return Prediction(doc.question_id, response.text, segments, time.perf_counter() - started)


def run_predictions(
    spec: TaskSpec,
    docs: Sequence[EvalDoc],
    model: EvalModel,
    predictions_path: str | Path,
    *,
    run: Mapping[str, Any] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Prediction]:
    """Ask ``model`` every question not yet in ``predictions_path``; append each answer as it comes.

    Args:
        spec: the task (gives ``max_new_tokens``).
        docs: its questions.
        model: the model.
        predictions_path: the JSON Lines file (created, or resumed).
        run: settings that identify the run besides the model's own (annotation file, prompt variant).
        progress: called after each question.

    Returns:
        All predictions, by question id.

    Raises:
        ResultsMismatchError: the file belongs to a run with other settings.
    """
    run = {**(run or {}), **model.describe()}
    with PredictionsFile(predictions_path, spec, run, {doc.question_id for doc in docs}) as file:
        for _, group in iter_video_groups(docs):
            for doc in group:
                if doc.question_id not in file:
                    file.add(ask(model, doc, spec.max_new_tokens))
                    if progress is not None:
                        progress(len(file.predictions), len(docs))
        return dict(file.predictions)


def score_predictions(
    spec: TaskSpec,
    docs: Sequence[EvalDoc],
    predictions: Mapping[str, Prediction],
    convention: str = DEFAULT_CONVENTION,
    *,
    run: Mapping[str, Any] | None = None,
) -> Report:
    """Score the predictions of ``docs`` under ``convention`` and aggregate them.

    Raises:
        EvalError: a question has no prediction.
        ConfigError: an unknown convention.
    """
    _check_convention(convention)
    missing = [doc.question_id for doc in docs if doc.question_id not in predictions]
    if missing:
        raise EvalError(f"{len(missing)} questions have no prediction yet (e.g. {missing[0]}); run them first")
    results = []
    for doc in docs:
        prediction = predictions[doc.question_id]
        results.append((doc, spec.score(doc, prediction.response, convention), prediction.segments))
    used = "none (exact match)" if spec.metric == EXACT_MATCH else convention
    return build_report(spec, results, used, run=run)


def write_report(report: Report, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir``; returns both paths."""
    from salova.eval.report import report_markdown

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, markdown_path = out / REPORT_JSON_NAME, out / REPORT_MARKDOWN_NAME
    atomic_write_json(json_path, report.to_dict())
    atomic_write_text(markdown_path, report_markdown(report))
    return json_path, markdown_path


def evaluate(
    task: str,
    annotations: str | Path,
    model: EvalModel,
    out_dir: str | Path,
    options: LoadOptions,
    *,
    convention: str = DEFAULT_CONVENTION,
    limit: int | None = None,
    progress: ProgressCallback | None = None,
) -> Report:
    """Load a benchmark, answer every question (resuming ``out_dir/predictions.jsonl``), score and
    write ``report.json`` and ``report.md``.

    Example:
        >>> from salova.eval import LoadOptions, evaluate
        >>> report = evaluate("videomme", "bench/videomme.json", model, "runs/vmme",
        ...                   LoadOptions(videos=Path("bench/data")))  # doctest: +SKIP
        >>> report.buckets["short"].accuracy  # doctest: +SKIP
    """
    spec = get_task(task)
    _check_convention(convention)
    docs = load_docs(spec, annotations, options, limit)
    if not docs:
        raise EvalError(f"{annotations}: no question left to evaluate")
    run = {
        "annotations": Path(annotations).name,
        "questions": len(docs),
        "prompt_variant": options.prompt_variant,
        "limit": limit,
    }
    predictions = run_predictions(spec, docs, model, Path(out_dir) / PREDICTIONS_NAME, run=run, progress=progress)
    report = score_predictions(spec, docs, predictions, convention, run={**run, **_flat(model.describe())})
    write_report(report, out_dir)
    return report


def _flat(described: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in described.items():
        if isinstance(value, Mapping):
            flat.update({f"{key}.{k}": v for k, v in value.items() if v is not None})
        else:
            flat[key] = value
    return flat
