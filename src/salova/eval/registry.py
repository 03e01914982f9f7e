"""Benchmark tasks as declarative specs, registered by name.

A task says where its official annotations come from, how one annotation row becomes an
:class:`EvalDoc` (video path, prompt, answer, categories), how a response is scored, and which
categories the report breaks results down by. Every task lives in one module of
:mod:`salova.eval.tasks` and registers itself with ``@register_task("name")``::

    @register_task("videomme")
    def _videomme() -> TaskSpec:
        return TaskSpec(name="videomme", benchmark="Video-MME", ...)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salova.errors import ConfigError

__all__ = [
    "MULTIPLE_CHOICE",
    "EXACT_MATCH",
    "EvalDoc",
    "LoadOptions",
    "Scored",
    "TaskSpec",
    "register_task",
    "get_task",
    "list_tasks",
]

MULTIPLE_CHOICE = "multiple_choice"
"""Metric of tasks whose answer is an option letter."""
EXACT_MATCH = "exact_match"
"""Metric of open-ended tasks scored without a judge model."""
_TASK_MODULES: tuple[str, ...] = (
    "salova.eval.tasks.videomme",
    "salova.eval.tasks.longvideobench",
    "salova.eval.tasks.mlvu",
    "salova.eval.tasks.mvbench",
    "salova.eval.tasks.activitynetqa",
)
"""Modules that register the built-in tasks; imported on the first lookup."""


@dataclass(frozen=True)
class EvalDoc:
    """One question of a benchmark, ready to ask."""

    question_id: str
    """Unique within the benchmark; the key of the partial results file."""
    video_id: str
    """Questions of one video share it (they reuse the video's index)."""
    video: Path
    """The video file."""
    question: str
    """The bare question, used as the router's query."""
    prompt: str
    """What the language model reads: the task's prompt, identical to lmms-eval's."""
    answer: str
    """The option letter (multiple choice) or the reference answer (open-ended)."""
    choices: str = ""
    """Option letters of the question, e.g. ``"ABCD"`` (empty when open-ended)."""
    categories: Mapping[str, str] = field(default_factory=dict)
    """Category name -> value, e.g. ``{"duration": "short", "task_type": "OCR Problems"}``."""
    evidence: tuple[tuple[float, float], ...] = ()
    """``(start_sec, end_sec)`` of the scenes that hold the answer, when known (synthetic benchmark)."""
    raw: Mapping[str, Any] = field(default_factory=dict)
    """The annotation row in lmms-eval's document form (what lmms-eval's task functions take)."""


@dataclass(frozen=True)
class Scored:
    """How one response scored."""

    prediction: str
    """The extracted letter (or normalised text) that was compared with the answer."""
    correct: bool
    counted: bool = True
    """False when the convention leaves the question out of the accuracy (unanswered)."""


@dataclass(frozen=True)
class LoadOptions:
    """How annotation rows are turned into documents."""

    videos: Path
    """Folder of the benchmark's videos (searched recursively by file name when not found in place)."""
    subtitles: Path | None = None
    """Folder of subtitle files (Video-MME with subtitles)."""
    prompt_variant: str = "default"
    """lmms-eval's ``lmms_eval_specific_kwargs`` entry: ``default`` (what a model registered as
    ``salova`` receives) or a model name the task lists (``llava_vid``)."""
    skip_missing_videos: bool = False
    """Drop questions whose video is missing (logged) instead of failing."""


Loader = Callable[[Path, LoadOptions], list[EvalDoc]]
Scorer = Callable[[EvalDoc, str, str], Scored]


@dataclass(frozen=True)
class TaskSpec:
    """Everything needed to load, prompt and score one benchmark."""

    name: str
    benchmark: str
    """Display name, e.g. ``Video-MME``."""
    lmms_eval_task: str
    """The lmms-eval task whose prompts and scoring are reproduced."""
    dataset: str
    """Where the official annotation files come from (lmms-eval's ``dataset_path``)."""
    load: Loader
    score: Scorer
    """``(doc, response, convention) -> Scored``."""
    metric: str = MULTIPLE_CHOICE
    categories: tuple[str, ...] = ()
    """Category fields of :attr:`EvalDoc.categories`, in report order."""
    buckets: tuple[str, ...] = ()
    """Values of the first category shown as the headline table's columns (Video-MME: short, medium, long)."""
    max_new_tokens: int = 16
    """lmms-eval's ``generation_kwargs.max_new_tokens``."""
    headline: Callable[[list[tuple[EvalDoc, Scored]]], float] | None = None
    """lmms-eval's aggregate when it differs from the question-level accuracy (MLVU: mean over task types)."""
    prompt_variants: tuple[str, ...] = ("default",)
    note: str = ""
    """Shown under the report (e.g. that the paper's open-ended scores came from a GPT judge)."""

    def __post_init__(self) -> None:
        if self.metric not in (MULTIPLE_CHOICE, EXACT_MATCH):
            raise ConfigError(f"task {self.name}: metric must be {MULTIPLE_CHOICE!r} or {EXACT_MATCH!r}")
        if self.buckets and not self.categories:
            raise ConfigError(f"task {self.name}: buckets need a first category to take them from")


_REGISTRY: dict[str, Callable[[], TaskSpec]] = {}
_loaded = False


def register_task(name: str) -> Callable[[Callable[[], TaskSpec]], Callable[[], TaskSpec]]:
    """Register a function that builds the :class:`TaskSpec` of ``name``.

    Raises:
        ValueError: ``name`` is already registered.
    """

    def decorate(factory: Callable[[], TaskSpec]) -> Callable[[], TaskSpec]:
        if name in _REGISTRY:
            raise ValueError(f"task {name!r} is already registered by {_REGISTRY[name].__module__}")
        _REGISTRY[name] = factory
        return factory

    return decorate


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        for module in _TASK_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_tasks() -> list[str]:
    """Names accepted by :func:`get_task` (and ``salova eval``)."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_task(name: str) -> TaskSpec:
    """The spec of a registered task.

    Raises:
        ConfigError: no task of that name; the message lists the known ones.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ConfigError(f"Unknown benchmark {name!r}; choose from {list_tasks()}")
    spec = _REGISTRY[name]()
    if spec.name != name:
        raise AssertionError(f"task factory registered as {name!r} built {spec.name!r}")
    return spec
