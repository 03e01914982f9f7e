"""What indexing a video produces, and the one decode pass that produces it.

A *pipeline* (:class:`Pipeline`) answers questions about a video from its :class:`VideoIndex`.
It says how the video is to be decoded (:meth:`Pipeline.sampling`), what identifies the features
it stores (:meth:`Pipeline.identity`) and supplies a :class:`SegmentIndexer` that turns segments
into stored features one segment at a time, as :func:`~salova.video.iter_segments` yields them:
memory holds the frames of a segment or two and the features, never the decoded video.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from salova.infer.config import AssistantConfig
from salova.model.selection import SelectorConfig
from salova.video import IngestConfig, SamplingConfig, Segment, iter_segments

__all__ = [
    "IndexProgress",
    "IndexPayload",
    "IndexBuild",
    "VideoIndex",
    "Reply",
    "SegmentIndexer",
    "Pipeline",
    "ProgressCallback",
    "build_index",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexProgress:
    """How far indexing of one video has come (handed to progress callbacks)."""

    stage: str
    """``hashing`` (reading the file for its content hash), ``decoding`` (segments streaming through
    the models), ``cached`` (found in the cache) or ``done``."""
    segments: int = 0
    """Segments indexed so far."""
    seconds: float = 0.0
    """Video time indexed so far."""
    duration: float | None = None
    """The video's stated duration, when known."""

    @property
    def fraction(self) -> float | None:
        """Share of the video indexed, in ``[0, 1]``, when the duration is known."""
        if self.stage in ("cached", "done"):
            return 1.0
        if not self.duration:
            return None
        return min(1.0, self.seconds / self.duration)


ProgressCallback = Callable[[IndexProgress], None]


@dataclass
class IndexPayload:
    """What a :class:`SegmentIndexer` hands back: tensors to store and on-screen text per segment."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    texts: list[str] | None = None


class SegmentIndexer(ABC):
    """Turns the segments of one video, in order, into stored features."""

    @abstractmethod
    def add(self, segment: Segment) -> None:
        """Take the next segment (its frames at :meth:`Pipeline.sampling`'s size)."""

    @abstractmethod
    def finish(self) -> IndexPayload:
        """Features of all segments added, in order."""


@dataclass(frozen=True)
class VideoIndex:
    """A video indexed for one pipeline: segment spans and the pipeline's stored features."""

    video: Path
    sha256: str
    """SHA-256 of the video file's bytes."""
    pipeline: str
    identity_key: str
    """Hash of the pipeline identity the features were made with (the cache key's second half)."""
    duration: float
    spans: tuple[tuple[float, float], ...]
    """``(start_sec, end_sec)`` of each segment, in order."""
    tensors: Mapping[str, torch.Tensor]
    texts: tuple[str, ...] | None
    """On-screen text read in each segment (``""`` when none), when the pipeline reads text."""
    from_cache: bool
    build_seconds: float
    """Seconds spent producing this index (decoding and encoding, or loading the cache entry)."""

    @property
    def num_segments(self) -> int:
        return len(self.spans)

    def segments_json(self) -> list[dict[str, Any]]:
        """Per segment: ``index``, ``start``, ``end`` and (when read) ``text``."""
        rows = []
        for index, (start, end) in enumerate(self.spans):
            row: dict[str, Any] = {"index": index, "start": round(start, 3), "end": round(end, 3)}
            if self.texts is not None:
                row["text"] = self.texts[index]
            rows.append(row)
        return rows


@dataclass(frozen=True)
class Reply:
    """A pipeline's answer before the assistant adds spans and timings."""

    text: str
    scores: tuple[float, ...]
    """Score of every segment of the video for the question (router logits or retrieval scores)."""
    selected: tuple[int, ...]
    """Segments the answer was generated from, ascending."""
    route_seconds: float
    generate_seconds: float


class Pipeline(ABC):
    """A way of answering questions about indexed videos (SALOVA, or the training-free text pipeline)."""

    name: ClassVar[str]
    """Reported in every answer (``Answer.pipeline``)."""

    @abstractmethod
    def describe(self) -> str:
        """One line naming the models, for logs and ``--help`` output."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-ready description of everything that shapes the stored features (cache key)."""

    @abstractmethod
    def sampling(self, config: AssistantConfig) -> SamplingConfig:
        """How frames are sampled and sized for this pipeline's indexer."""

    @abstractmethod
    def new_indexer(self) -> SegmentIndexer:
        """A fresh indexer for one video."""

    @abstractmethod
    def scores(self, index: VideoIndex, question: str) -> torch.Tensor:
        """``(num_segments,)`` relevance of every segment of an indexed video to ``question``."""

    @abstractmethod
    def features(self, index: VideoIndex) -> torch.Tensor:
        """``(num_segments, dim)`` one feature vector per segment, whose cosine similarity measures
        redundancy between segments (the ``seal`` selector's ``S``)."""

    @abstractmethod
    def answer(
        self,
        index: VideoIndex,
        question: str,
        history: Sequence[tuple[str, str]],
        top_k: int,
        max_new_tokens: int,
        *,
        selector: SelectorConfig | None = None,
    ) -> Reply:
        """Answer ``question`` about an indexed video after the ``(question, answer)`` turns of ``history``,
        reading ``top_k`` segments chosen by ``selector`` (``topk`` when ``None``: the best scored) and
        generating at most ``max_new_tokens`` tokens."""

    def ingest_config(self, config: AssistantConfig) -> IngestConfig:
        return IngestConfig(scenes=config.scenes, sampling=self.sampling(config), decode_threads=config.decode_threads)


@dataclass(frozen=True)
class IndexBuild:
    """What one decode pass produced (see :func:`build_index`)."""

    spans: list[tuple[float, float]]
    payload: IndexPayload
    duration: float
    """End of the last segment (seconds)."""
    damaged_frames: int
    truncated: bool


def build_index(
    path: Path,
    pipeline: Pipeline,
    config: AssistantConfig,
    progress: ProgressCallback | None = None,
) -> IndexBuild:
    """Decode ``path`` once and run every segment through the pipeline's indexer.

    Returns:
        :class:`IndexBuild`: the segments' ``(start, end)``, the indexer's features and facts about the decode.

    Raises:
        VideoError: the file cannot be decoded (see :func:`~salova.video.iter_segments`).
    """
    started = time.perf_counter()
    segments = iter_segments(path, pipeline.ingest_config(config))
    duration = segments.info.duration_sec
    indexer = pipeline.new_indexer()
    spans: list[tuple[float, float]] = []
    try:
        for segment in segments:
            indexer.add(segment)
            spans.append((segment.start_sec, segment.end_sec))
            if progress is not None:
                progress(IndexProgress("decoding", len(spans), segment.end_sec, duration))
    finally:
        segments.close()
    payload = indexer.finish()
    if segments.damaged_frames:
        logger.warning("%s: skipped %d damaged frames", path, segments.damaged_frames)
    logger.info("indexed %s: %d segments in %.1f s", path.name, len(spans), time.perf_counter() - started)
    return IndexBuild(
        spans=spans,
        payload=payload,
        duration=spans[-1][1] if spans else (duration or 0.0),
        damaged_frames=segments.damaged_frames,
        truncated=segments.truncated,
    )
