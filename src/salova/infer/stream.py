"""Streaming mode (SEAL, arXiv 2412.01798, section 3.3): answer questions about a live video from a
memory of bounded size.

A live source (a growing file, a pipe, a URL; see :mod:`salova.video.live`) is segmented online by
the same one-pass ingest as a file. Each completed segment goes through the pipeline's indexer
(SALOVA: vision tower and ST-Connector, giving its routing token and latents) and into a
:class:`StreamMemory`:

* the **window**: the last ``window`` segments, always kept;
* the **kept subset**: at most ``budget`` segments. At every step (every ``step`` new segments) it is
  re-selected from the window's segments plus the previous subset,
  ``T_sub(t) = select(T_window(t) + T_sub(t - 1))`` as in SEAL, with the ``seal`` selector by
  default: relevant to the standing queries (if any were given; otherwise all segments are
  equally relevant and the subset is simply the most diverse) and not redundant (similarity of the
  pipeline's segment features, :meth:`~salova.infer.index.Pipeline.features`).

Everything else is dropped, so memory holds at most ``window + budget`` segment encodings however
long the stream runs. A question can be asked at any time (:meth:`StreamSession.ask`, from any
thread): it is answered from the memory's segments exactly as from an indexed video (router,
``top_k`` focus segments, FocusFast, LLM), and the answer says how much of the stream it covers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch

from salova.errors import ConfigError, NotIndexedError
from salova.infer.assistant import Answer, ScoredSegment, VideoAssistant
from salova.infer.index import VideoIndex
from salova.model.selection import SelectorConfig, select_subset
from salova.video import Segment
from salova.video.live import LiveConfig, iter_live_segments

__all__ = ["StreamConfig", "MemoryItem", "StreamMemory", "StreamState", "StreamAnswer", "StreamSession"]

logger = logging.getLogger(__name__)

_DECIMALS = 3


@dataclass(frozen=True)
class StreamConfig:
    """The streaming memory and how a live source is read."""

    window: int = 8
    """Most recent segments always kept (SEAL's sliding window)."""
    budget: int = 24
    """Segments kept from the past (SEAL's fixed-size subset)."""
    step: int = 1
    """The subset is re-selected after this many new segments (at most ``window``, so every segment is
    a candidate at least once before it leaves the window)."""
    selector: SelectorConfig = field(default_factory=lambda: SelectorConfig(name="seal"))
    """How the kept subset is chosen (``seal``: relevant and not redundant; ``topk``: most relevant)."""
    live: LiveConfig = field(default_factory=LiveConfig)
    """Reading the live source (idle timeout of a growing file, format hint, probing)."""

    def __post_init__(self) -> None:
        if self.window < 1 or self.budget < 1:
            raise ConfigError(f"window and budget must be >= 1, got {self.window} and {self.budget}")
        if not 1 <= self.step <= self.window:
            raise ConfigError(f"step must be in [1, window = {self.window}], got {self.step}")
        if not isinstance(self.selector, SelectorConfig) or not isinstance(self.live, LiveConfig):
            raise ConfigError("selector must be a SelectorConfig and live a LiveConfig")

    @property
    def capacity(self) -> int:
        """Most segments the memory holds at once."""
        return self.window + self.budget


@dataclass(frozen=True)
class MemoryItem:
    """One segment of the stream as the memory holds it."""

    index: int
    """Position of the segment in the stream (0-based)."""
    start: float
    end: float
    tensors: dict[str, torch.Tensor]
    """The pipeline's stored features of this segment alone (leading dimension 1)."""
    text: str | None
    """On-screen text, when the pipeline reads it."""
    feature: torch.Tensor
    """``(dim,)`` the feature whose similarity measures redundancy."""
    relevance: float
    """Best raw relevance to the standing queries (0 without any)."""


class StreamMemory:
    """SEAL's streaming memory: a sliding window and a kept subset re-selected at every step.

    Not thread-safe by itself (:class:`StreamSession` guards it).

    Args:
        config: window, budget, step and selector.
    """

    def __init__(self, config: StreamConfig):
        self.config = config
        self._window: deque[MemoryItem] = deque(maxlen=config.window)
        self._kept: list[MemoryItem] = []
        self._pending = 0
        self.seen = 0
        """Segments added so far."""
        self.seen_until = 0.0
        """End of the last segment added (seconds of the stream)."""

    def add(self, item: MemoryItem) -> None:
        """Take the next segment; re-select the kept subset when a step is complete."""
        self._window.append(item)
        self.seen += 1
        self.seen_until = item.end
        self._pending += 1
        if self._pending >= self.config.step:
            self.reselect()

    def reselect(self) -> None:
        """``kept = select(window + kept)`` with at most ``budget`` segments."""
        self._pending = 0
        pool = {item.index: item for item in [*self._kept, *self._window]}
        items = [pool[i] for i in sorted(pool)]
        if len(items) > self.config.budget:
            features = torch.stack([item.feature for item in items])
            scores = [item.relevance for item in items]
            chosen = select_subset(features, scores, self.config.budget, self.config.selector).indices
            items = [items[i] for i in chosen]
        self._kept = items

    @property
    def window(self) -> tuple[MemoryItem, ...]:
        return tuple(self._window)

    @property
    def kept(self) -> tuple[MemoryItem, ...]:
        return tuple(self._kept)

    def candidates(self) -> list[MemoryItem]:
        """The kept subset and the window, in temporal order: what a question is answered from."""
        pool = {item.index: item for item in [*self._kept, *self._window]}
        return [pool[i] for i in sorted(pool)]


@dataclass(frozen=True)
class StreamState:
    """Where a stream stands."""

    segments_seen: int
    seen_until: float
    """Seconds of the stream that the memory has seen (end of the last completed segment)."""
    memory: tuple[tuple[int, float, float], ...]
    """``(index, start, end)`` of every segment held, in temporal order."""
    window: tuple[int, ...]
    """Indices of the window's segments."""
    finished: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segments_seen": self.segments_seen,
            "seen_until": round(self.seen_until, _DECIMALS),
            "memory": [
                {"index": i, "start": round(s, _DECIMALS), "end": round(e, _DECIMALS), "window": i in self.window}
                for i, s, e in self.memory
            ],
            "finished": self.finished,
            "error": self.error,
        }


@dataclass(frozen=True)
class StreamAnswer(Answer):
    """An :class:`~salova.infer.Answer` about a live stream, with how much of it the answer covers.

    ``segments`` and ``timeline`` give stream times and the segments' positions in the stream;
    ``timeline`` lists only the segments in memory.
    """

    seen_until: float = 0.0
    """Seconds of the stream seen when the question was asked."""
    segments_seen: int = 0

    def to_dict(self) -> dict[str, Any]:
        """:meth:`Answer.to_dict` plus ``seen_until`` and ``segments_seen``."""
        return {
            **super().to_dict(),
            "seen_until": round(self.seen_until, _DECIMALS),
            "segments_seen": self.segments_seen,
        }


SegmentCallback = Callable[[MemoryItem, StreamState], None]


class StreamSession:
    """Watch a live video and answer questions about what has been seen so far.

    Args:
        assistant: supplies the pipeline (SALOVA or text-rag) and its settings (``top_k``,
            ``max_new_tokens``, the answer's ``selector``, the ingest's scene rules).
        config: the streaming memory and live-source settings.
        queries: standing questions known in advance; the kept subset favours segments relevant to
            them (SEAL's query-aware streaming). Without any, it keeps the most diverse segments.

    Example:
        >>> from salova.infer import VideoAssistant
        >>> from salova.infer.stream import StreamSession
        >>> session = StreamSession(VideoAssistant.from_model("tiny"))  # doctest: +SKIP
        >>> worker = session.start("-")  # reads standard input in a thread  # doctest: +SKIP
        >>> session.ask("What is on screen?").to_dict()  # any time, from any thread  # doctest: +SKIP
    """

    def __init__(
        self,
        assistant: VideoAssistant,
        config: StreamConfig | None = None,
        queries: Sequence[str] = (),
    ):
        self.assistant = assistant
        self.pipeline = assistant.pipeline
        self.config = config or StreamConfig()
        self.queries = tuple(q for q in queries if q.strip())
        self.memory = StreamMemory(self.config)
        self.name = "stream"
        self.finished = threading.Event()
        self.error: str | None = None
        self._memory_lock = threading.Lock()
        self._model_lock = threading.Lock()

    # ----------------------------------------------------------------- feeding

    def _one_segment_index(self, start: float, end: float, tensors, texts) -> VideoIndex:
        return VideoIndex(
            video=Path(self.name),
            sha256="",
            pipeline=self.pipeline.name,
            identity_key="",
            duration=end,
            spans=((start, end),),
            tensors=tensors,
            texts=None if texts is None else tuple(texts),
            from_cache=False,
            build_seconds=0.0,
        )

    def feed(self, segment: Segment) -> MemoryItem:
        """Encode one completed segment and add it to the memory.

        Raises:
            ValueError: the segment holds no frames.
        """
        with self._model_lock, torch.no_grad():
            indexer = self.pipeline.new_indexer()
            indexer.add(segment)
            payload = indexer.finish()
            one = self._one_segment_index(segment.start_sec, segment.end_sec, payload.tensors, payload.texts)
            relevance = max((float(self.pipeline.scores(one, q)[0]) for q in self.queries), default=0.0)
            feature = self.pipeline.features(one)[0].detach().float().clone()
        item = MemoryItem(
            index=self.memory.seen,
            start=segment.start_sec,
            end=segment.end_sec,
            tensors={k: v.detach().clone() for k, v in payload.tensors.items()},
            text=None if payload.texts is None else payload.texts[0],
            feature=feature,
            relevance=relevance,
        )
        with self._memory_lock:
            self.memory.add(item)
        return item

    def _segments(
        self, source: str | BinaryIO, stop: threading.Event | None, finished: threading.Event | None
    ) -> Iterator[MemoryItem]:
        """Feed every completed segment of ``source``, yielding each item; marks the session finished."""
        name = source if isinstance(source, str) else getattr(source, "name", "stream")
        self.name = str(name)
        ingest = self.pipeline.ingest_config(self.assistant.config)
        try:
            segments = iter_live_segments(source, ingest, self.config.live, stop=stop, finished=finished)
            try:
                for segment in segments:
                    yield self.feed(segment)
                    if stop is not None and stop.is_set():
                        break
            finally:
                segments.close()
        except Exception as exc:
            self.error = str(exc)
            raise
        finally:
            self.finished.set()

    def run(
        self,
        source: str | BinaryIO,
        *,
        stop: threading.Event | None = None,
        finished: threading.Event | None = None,
        on_segment: SegmentCallback | None = None,
    ) -> StreamState:
        """Read ``source`` to its end (or until ``stop`` is set), feeding every completed segment.

        Args:
            source: ``-``, a URL, a growing file or a readable binary file object (see
                :func:`~salova.video.live.open_live`).
            stop: set to stop reading.
            finished: set by the writer of a growing file when it is done.
            on_segment: called after each segment with the item and the new state.

        Returns:
            The final :class:`StreamState`.

        Raises:
            VideoError: the source cannot be opened or decoded.
        """
        for item in self._segments(source, stop, finished):
            if on_segment is not None:
                on_segment(item, self.state())
        return self.state()

    def answers(
        self,
        source: str | BinaryIO,
        question: str,
        at: Sequence[float] = (),
        *,
        stop: threading.Event | None = None,
        finished: threading.Event | None = None,
        **ask_options: Any,
    ) -> Iterator[StreamAnswer]:
        """Read ``source`` and answer ``question`` as soon as the stream has been seen up to each time
        in ``at`` (seconds), then stop reading; without ``at``, answer once when the stream ends. A
        stream that ends before the last time gets one final answer.

        Args:
            source, stop, finished: see :meth:`run`.
            question: the question.
            at: stream times to answer at.
            **ask_options: passed to :meth:`ask` (``top_k``, ``max_new_tokens``, ``selector``, ``history``).

        Yields:
            :class:`StreamAnswer`, one per time reached (and at the end).

        Raises:
            VideoError: the source cannot be opened or decoded.
        """
        times = sorted(float(t) for t in at)
        with closing(self._segments(source, stop, finished)) as items:
            for _ in items:
                while times and self.memory.seen_until >= times[0]:
                    times.pop(0)
                    yield self.ask(question, **ask_options)
                if at and not times:
                    return
        yield self.ask(question, **ask_options)

    def start(self, source: str | BinaryIO, **kwargs: Any) -> threading.Thread:
        """:meth:`run` in a daemon thread (errors are logged and kept in ``error``); returns the thread."""

        def target() -> None:
            try:
                self.run(source, **kwargs)
            except Exception:
                logger.exception("stream %s failed", self.name)

        thread = threading.Thread(target=target, name=f"salova-stream-{self.name}", daemon=True)
        thread.start()
        return thread

    # ----------------------------------------------------------------- state and asking

    def state(self) -> StreamState:
        """A snapshot of the memory."""
        with self._memory_lock:
            return StreamState(
                segments_seen=self.memory.seen,
                seen_until=self.memory.seen_until,
                memory=tuple((m.index, m.start, m.end) for m in self.memory.candidates()),
                window=tuple(m.index for m in self.memory.window),
                finished=self.finished.is_set(),
                error=self.error,
            )

    def snapshot(self) -> tuple[VideoIndex, list[MemoryItem], int]:
        """The memory as a :class:`~salova.infer.index.VideoIndex` of its segments (temporal order),
        the items, and the segments seen.

        Raises:
            NotIndexedError: nothing has been seen yet.
        """
        with self._memory_lock:
            items = self.memory.candidates()
            seen, until = self.memory.seen, self.memory.seen_until
        if not items:
            raise NotIndexedError("no segment of the stream has been seen yet; ask again in a moment")
        tensors = {key: torch.cat([item.tensors[key] for item in items]) for key in items[0].tensors}
        texts = None if items[0].text is None else tuple(item.text or "" for item in items)
        index = VideoIndex(
            video=Path(self.name),
            sha256="",
            pipeline=self.pipeline.name,
            identity_key="",
            duration=until,
            spans=tuple((item.start, item.end) for item in items),
            tensors=tensors,
            texts=texts,
            from_cache=False,
            build_seconds=0.0,
        )
        return index, items, seen

    def ask(
        self,
        question: str,
        *,
        history: Iterable[tuple[str, str]] = (),
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        selector: str | SelectorConfig | None = None,
    ) -> StreamAnswer:
        """Answer ``question`` from what the stream has shown so far (the memory's segments).

        Args:
            question: the question.
            history: earlier ``(question, answer)`` turns.
            top_k: focus segments; the assistant's ``top_k`` when omitted.
            max_new_tokens: longest answer; the assistant's when omitted.
            selector: how the focus segments are chosen among the memory's (see
                :meth:`~salova.infer.VideoAssistant.ask`).

        Returns:
            :class:`StreamAnswer`.

        Raises:
            NotIndexedError: no segment completed yet.
            ValueError: an empty question, or ``top_k``/``max_new_tokens`` below 1.
        """
        top_k, max_new_tokens = self.assistant.answer_limits(question, top_k, max_new_tokens)
        started = time.perf_counter()
        index, items, seen = self.snapshot()
        with self._model_lock:
            reply = self.pipeline.answer(
                index, question, list(history), top_k, max_new_tokens, selector=self.assistant.selector(selector)
            )
        timeline = tuple(
            ScoredSegment(item.index, item.start, item.end, score)
            for item, score in zip(items, reply.scores, strict=True)
        )
        return StreamAnswer(
            text=reply.text,
            pipeline=self.pipeline.name,
            segments=tuple(timeline[i] for i in reply.selected),
            timeline=timeline,
            timings={
                "index": 0.0,
                "route": reply.route_seconds,
                "generate": reply.generate_seconds,
                "total": time.perf_counter() - started,
            },
            seen_until=index.duration,
            segments_seen=seen,
        )
