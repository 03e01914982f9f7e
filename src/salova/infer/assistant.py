"""The video assistant: index a video once, then ask about it as often as you like.

:class:`VideoAssistant` wraps a pipeline (SALOVA, or the training-free text pipeline; see
:mod:`salova.infer.models`). :meth:`~VideoAssistant.index` decodes a video once, streaming its
segments through the pipeline's models, and stores the result in the on-disk
:class:`~salova.infer.cache.FeatureCache` under the file's content hash and the pipeline's
identity; later calls, in this process or another, load it instead. :meth:`~VideoAssistant.ask`
answers from the index alone and returns an :class:`Answer`: the text, the pipeline that
answered, the segments it read with their scores, every segment's score and timings.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from salova.errors import NotIndexedError
from salova.infer.cache import CacheEntry, FeatureCache, file_sha256, identity_key
from salova.infer.config import AssistantConfig
from salova.infer.index import IndexProgress, Pipeline, ProgressCallback, VideoIndex, build_index
from salova.infer.models import ModelSpec, load_pipeline
from salova.model.selection import SelectorConfig
from salova.video.decode import check_video_path

__all__ = ["ScoredSegment", "Answer", "VideoAssistant", "ChatSession"]

logger = logging.getLogger(__name__)

INDEX_DIR = "index"
"""Sub-folder of the cache folder that holds index entries."""
_DECIMALS = {"time": 3, "score": 4, "seconds": 4}


@dataclass(frozen=True)
class ScoredSegment:
    """A segment of the video with its score for a question (router logit or retrieval score)."""

    index: int
    start: float
    """Seconds from the start of the video."""
    end: float
    score: float

    def to_dict(self) -> dict[str, float]:
        """``start``, ``end`` (seconds) and ``score``."""
        return {
            "start": round(self.start, _DECIMALS["time"]),
            "end": round(self.end, _DECIMALS["time"]),
            "score": round(self.score, _DECIMALS["score"]),
        }


@dataclass(frozen=True)
class Answer:
    """What :meth:`VideoAssistant.ask` returns."""

    text: str
    pipeline: str
    """``salova`` or ``text-rag``: which pipeline answered."""
    segments: tuple[ScoredSegment, ...]
    """The segments the answer was generated from, in temporal order."""
    timeline: tuple[ScoredSegment, ...]
    """Every segment of the video with its score, in temporal order."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds: ``index`` (making or loading the index during this call; 0 when already in memory),
    ``route`` (scoring and selecting segments), ``generate`` (the LLM) and ``total``."""
    video_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: ``answer``, ``pipeline``, ``segments`` (``start``, ``end``, ``score``), ``timings``."""
        return {
            "answer": self.text,
            "pipeline": self.pipeline,
            "segments": [s.to_dict() for s in self.segments],
            "timings": {k: round(v, _DECIMALS["seconds"]) for k, v in self.timings.items()},
        }


class VideoAssistant:
    """Index videos once and answer questions about them.

    Args:
        pipeline: the answering pipeline (see :func:`~salova.infer.models.load_pipeline`).
        config: answering, indexing and cache settings.

    Example:
        >>> from salova.infer import VideoAssistant
        >>> from salova.video import sample_video_path
        >>> assistant = VideoAssistant.from_model("tiny")  # doctest: +SKIP
        >>> assistant.index(sample_video_path("bikes")).num_segments  # doctest: +SKIP
        4
        >>> answer = assistant.ask("What is the cyclist doing?")  # doctest: +SKIP
        >>> [(s.start, s.end) for s in answer.segments], answer.pipeline  # doctest: +SKIP
        ([(0.0, 4.0), (4.0, 6.0)], 'salova')
    """

    def __init__(self, pipeline: Pipeline, config: AssistantConfig | None = None):
        config = config or AssistantConfig()
        self.pipeline = pipeline
        self.config = config
        self.cache = FeatureCache(config.cache_root / INDEX_DIR)
        self._indexes: OrderedDict[str, VideoIndex] = OrderedDict()
        self._hashes: dict[tuple, str] = {}
        self._identity: dict[str, Any] | None = None
        self._current: VideoIndex | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_model(
        cls,
        model: str | os.PathLike | ModelSpec | None = None,
        config: AssistantConfig | None = None,
        *,
        answering: bool = True,
    ) -> VideoAssistant:
        """Load the pipeline ``model`` names (a checkpoint folder, ``tiny``, ``text-rag`` or the default).

        Args:
            model: see :func:`~salova.infer.models.resolve_model`.
            config: the assistant settings (defaults when omitted).
            answering: ``False`` for an indexing-only assistant (skips the text pipeline's LLM).

        Raises:
            ModelSpecError, CheckpointError, BundledModelError, MissingDependencyError: see
                :func:`~salova.infer.models.load_pipeline`.
        """
        return cls(load_pipeline(model, config, answering=answering), config)

    @property
    def pipeline_name(self) -> str:
        return self.pipeline.name

    def identity(self) -> dict[str, Any]:
        """The cache identity: the pipeline's models and settings, and the ingest settings."""
        if self._identity is None:
            ingest = self.pipeline.ingest_config(self.config)
            self._identity = {
                **self.pipeline.identity(),
                "ingest": {"scenes": vars(ingest.scenes), "sampling": vars(ingest.sampling)},
            }
        return self._identity

    # ----------------------------------------------------------------- indexing

    def index(self, video: str | os.PathLike, progress: ProgressCallback | None = None) -> VideoIndex:
        """Index ``video`` (or load its index from memory or the cache) and make it the current video.

        Args:
            video: the video file.
            progress: called with :class:`~salova.infer.index.IndexProgress` as indexing advances.

        Returns:
            The :class:`~salova.infer.index.VideoIndex`.

        Raises:
            VideoError: the file is missing, unreadable or not a decodable video.
            CacheError: the cache folder cannot be written.
        """
        path = check_video_path(video)
        notify = progress or (lambda _: None)
        notify(IndexProgress("hashing"))
        sha = self._sha256(path)
        index = self._lookup(path, sha)
        if index is not None:
            notify(IndexProgress("cached", index.num_segments, index.duration, index.duration))
        else:
            started = time.perf_counter()
            identity = self.identity()
            built = build_index(path, self.pipeline, self.config, notify)
            meta = {
                "pipeline": self.pipeline.name,
                "model": self.pipeline.describe(),
                "video_name": path.name,
                "spans": [list(span) for span in built.spans],
                "texts": built.payload.texts,
                "duration": built.duration,
                "damaged_frames": built.damaged_frames,
                "truncated": built.truncated,
            }
            self.cache.store(sha, identity, built.payload.tensors, meta)
            index = VideoIndex(
                video=path,
                sha256=sha,
                pipeline=self.pipeline.name,
                identity_key=identity_key(identity),
                duration=float(built.duration),
                spans=tuple((float(s), float(e)) for s, e in built.spans),
                tensors=built.payload.tensors,
                texts=None if built.payload.texts is None else tuple(built.payload.texts),
                from_cache=False,
                build_seconds=time.perf_counter() - started,
            )
            notify(IndexProgress("done", index.num_segments, index.duration, index.duration))
        self._remember(index)
        return index

    def lookup(self, video: str | os.PathLike) -> VideoIndex | None:
        """The index of ``video`` from memory or the cache, or ``None``; never decodes.

        Raises:
            VideoError: the file is missing or unreadable.
        """
        path = check_video_path(video)
        index = self._lookup(path, self._sha256(path))
        if index is not None:
            self._remember(index)
        return index

    def _lookup(self, path: Path, sha: str) -> VideoIndex | None:
        with self._lock:
            known = self._indexes.get(sha)
        if known is not None:
            return known
        started = time.perf_counter()
        entry = self.cache.load(sha, self.identity())
        return None if entry is None else self._from_entry(path, sha, entry, time.perf_counter() - started)

    def _from_entry(self, path: Path, sha: str, entry: CacheEntry, seconds: float) -> VideoIndex:
        meta = entry.meta
        texts = meta.get("texts")
        return VideoIndex(
            video=path,
            sha256=sha,
            pipeline=self.pipeline.name,
            identity_key=entry.path.stem,
            duration=float(meta["duration"]),
            spans=tuple((float(s), float(e)) for s, e in meta["spans"]),
            tensors=entry.tensors,
            texts=None if texts is None else tuple(texts),
            from_cache=True,
            build_seconds=seconds,
        )

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_dev)
        with self._lock:
            known = self._hashes.get(key)
        if known is None:
            known = file_sha256(path)
            with self._lock:
                self._hashes[key] = known
        return known

    def _remember(self, index: VideoIndex) -> None:
        with self._lock:
            self._indexes[index.sha256] = index
            self._indexes.move_to_end(index.sha256)
            while len(self._indexes) > self.config.memory_indexes:
                self._indexes.popitem(last=False)
            self._current = index

    # ----------------------------------------------------------------- asking

    def ask(
        self,
        question: str,
        *,
        video: str | os.PathLike | VideoIndex | None = None,
        history: Sequence[tuple[str, str]] = (),
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        progress: ProgressCallback | None = None,
        selector: str | SelectorConfig | None = None,
    ) -> Answer:
        """Answer a question about a video from its index.

        Args:
            question: the question.
            video: a :class:`~salova.infer.index.VideoIndex`, a file (indexed first if needed), or ``None``
                for the video indexed last.
            history: earlier ``(question, answer)`` turns of the conversation about this video.
            top_k: segments to read; ``config.top_k`` when omitted.
            max_new_tokens: longest answer in tokens; ``config.max_new_tokens`` when omitted.
            progress: passed to :meth:`index` when ``video`` is a file.
            selector: how the ``top_k`` segments are chosen: ``topk`` or ``seal`` (with the other settings
                of ``config.selector``), a :class:`~salova.model.selection.SelectorConfig`, or ``None``
                for ``config.selector``.

        Returns:
            :class:`Answer`.

        Raises:
            NotIndexedError: no video given and none indexed yet.
            ValueError: an empty question, ``top_k`` or ``max_new_tokens`` below 1, or an index made by
                another model.
            ConfigError: an unknown selector name.
            VideoError, CacheError: see :meth:`index`.
        """
        top_k, max_new_tokens = self.answer_limits(question, top_k, max_new_tokens)
        selector = self.selector(selector)
        started = time.perf_counter()
        if isinstance(video, VideoIndex):
            index = video
        elif video is not None:
            index = self.index(video, progress)
        elif self._current is not None:
            index = self._current
        else:
            raise NotIndexedError("no video has been indexed yet; index one or pass video=...")
        if index.identity_key != identity_key(self.identity()):
            raise ValueError(f"{index.video.name} was indexed by another model or with other settings; index it here")
        indexed = time.perf_counter()
        reply = self.pipeline.answer(index, question, history, top_k, max_new_tokens, selector=selector)
        timeline = tuple(
            ScoredSegment(i, start, end, score)
            for i, ((start, end), score) in enumerate(zip(index.spans, reply.scores, strict=True))
        )
        return Answer(
            text=reply.text,
            pipeline=self.pipeline.name,
            segments=tuple(timeline[i] for i in reply.selected),
            timeline=timeline,
            timings={
                "index": indexed - started,
                "route": reply.route_seconds,
                "generate": reply.generate_seconds,
                "total": time.perf_counter() - started,
            },
            video_sha256=index.sha256,
        )

    def answer_limits(self, question: str, top_k: int | None, max_new_tokens: int | None) -> tuple[int, int]:
        """``(top_k, max_new_tokens)`` of a call, the config's where ``None``, after checking the question.

        Raises:
            ValueError: an empty question, or a limit below 1.
        """
        if not question.strip():
            raise ValueError("the question is empty")
        top_k = self.config.top_k if top_k is None else top_k
        max_new_tokens = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        if top_k < 1 or max_new_tokens < 1:
            raise ValueError(f"top_k and max_new_tokens must be >= 1, got {top_k} and {max_new_tokens}")
        return top_k, max_new_tokens

    def selector(self, selector: str | SelectorConfig | None = None) -> SelectorConfig:
        """The selector settings of a call: ``config.selector``, renamed when ``selector`` is a name.

        Raises:
            ConfigError: an unknown selector name.
        """
        if isinstance(selector, SelectorConfig):
            return selector
        if selector is None:
            return self.config.selector
        return dataclasses.replace(self.config.selector, name=selector)

    def chat(self, video: str | os.PathLike | VideoIndex) -> ChatSession:
        """A multi-turn conversation about one video; every turn reuses its index."""
        index = video if isinstance(video, VideoIndex) else self.index(video)
        return ChatSession(self, index)


class ChatSession:
    """Turns of a conversation about one indexed video (see :meth:`VideoAssistant.chat`)."""

    def __init__(self, assistant: VideoAssistant, index: VideoIndex):
        self.assistant = assistant
        self.index = index
        self.history: list[tuple[str, str]] = []

    def ask(self, question: str, top_k: int | None = None) -> Answer:
        """Answer ``question`` in the light of the earlier turns, and remember the turn."""
        answer = self.assistant.ask(question, video=self.index, history=self.history, top_k=top_k)
        self.history.append((question, answer.text))
        return answer
