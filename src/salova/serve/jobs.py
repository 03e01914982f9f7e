"""Indexing off the event loop: a separate, lower-priority process indexes one video at a time.

Indexing decodes video and runs models for minutes; asks on indexed videos take milliseconds to
seconds. In a thread of the server's own process, the decoder's and the ingest's Python code would
hold the interpreter lock and torch would fight the asks for the cores. So indexing runs in a
worker process started with ``spawn``, with its own copy of the pipeline's indexing models, few
threads (``ServerSettings.index_threads``) and a raised niceness, so that the kernel gives the
cores to the asks first. The worker writes the index into the shared on-disk cache.

The server keeps the queue of waiting videos itself and hands the worker one video at a time over
a pipe; the worker reports progress over another. A reader thread keeps :class:`JobState` up to
date, loads a finished video's index from the cache (through ``on_done``) and hands over the next
video. A worker that dies is restarted; the job it held is marked failed, the queue is kept.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from salova.errors import SalovaError
from salova.infer import AssistantConfig, IndexProgress, ModelSpec

__all__ = ["JobState", "IndexingService"]

logger = logging.getLogger(__name__)

EVENT_WAIT_SECONDS = 0.25
"""How long the reader thread waits for an event before checking that the worker lives."""
WORKER_STOP_SECONDS = 10.0
"""Grace time for the worker to exit on shutdown before it is terminated."""


@dataclasses.dataclass
class JobState:
    """Where the indexing of one video stands (a snapshot; see :meth:`IndexingService.state`)."""

    video_id: str
    status: str = "queued"
    """``queued``, ``indexing``, ``ready`` or ``failed``."""
    stage: str | None = None
    progress: float | None = None
    segments: int = 0
    error: str | None = None
    version: int = 0
    """Increases with every change (progress streams compare it)."""

    @property
    def finished(self) -> bool:
        return self.status in ("ready", "failed")


def _worker_main(model: ModelSpec, config: AssistantConfig, threads: int, niceness: int, tasks, events) -> None:
    """The worker process: load the indexing pipeline, then index what ``tasks`` brings until ``None``."""
    import torch

    from salova.infer import VideoAssistant

    os.nice(niceness)
    torch.set_num_threads(threads)
    config = dataclasses.replace(config, memory_indexes=1, ocr=dataclasses.replace(config.ocr, threads=threads))
    try:
        assistant = VideoAssistant.from_model(model, config, answering=False)
    except Exception as exc:  # reported to the server, which fails the jobs
        events.send(("", "crashed", f"the indexing worker cannot load the model: {exc}"))
        return
    events.send(("", "idle", None))
    while (task := tasks.recv()) is not None:
        video_id, path = task

        def report(progress: IndexProgress, video_id: str = video_id) -> None:
            events.send((video_id, "progress", (progress.stage, progress.fraction, progress.segments)))

        try:
            assistant.index(path, progress=report)
        except SalovaError as exc:
            events.send((video_id, "failed", str(exc)))
        except Exception as exc:  # a bug must fail the job, not the worker
            logger.exception("indexing %s failed", path)
            events.send((video_id, "failed", f"internal error while indexing: {type(exc).__name__}"))
        else:
            events.send((video_id, "done", None))


class IndexingService:
    """Runs indexing jobs in a worker process, one at a time, and tracks their state.

    Args:
        model: the model the server answers with (the worker loads its indexing parts).
        config: the assistant settings (the same cache folder as the server's assistant).
        threads: torch/OCR threads of the worker.
        niceness: CPU niceness added to the worker.
        on_done: called in the reader thread as ``on_done(video_id, path)`` when the worker has
            stored a video's index; a :class:`~salova.errors.SalovaError` it raises fails the job.
    """

    def __init__(
        self,
        model: ModelSpec,
        config: AssistantConfig,
        *,
        threads: int,
        niceness: int,
        on_done: Callable[[str, Path], None],
    ):
        self._args = (model, config, threads, niceness)
        self._on_done = on_done
        self._context = multiprocessing.get_context("spawn")
        self._jobs: dict[str, JobState] = {}
        self._waiting: collections.deque[tuple[str, Path]] = collections.deque()
        self._running: tuple[str, Path] | None = None
        self._idle = False
        self._broken: str | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._tasks: Connection | None = None
        self._events: Connection | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker process and the reader thread."""
        self._start_worker()
        self._reader = threading.Thread(target=self._read_events, name="salova-index-events", daemon=True)
        self._reader.start()

    def _start_worker(self) -> None:
        task_reader, self._tasks = self._context.Pipe(duplex=False)
        self._events, event_writer = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=_worker_main, args=(*self._args, task_reader, event_writer), name="salova-indexer", daemon=True
        )
        self._process.start()
        task_reader.close()  # the child holds its own copies
        event_writer.close()
        self._idle = False

    def submit(self, video_id: str, path: Path) -> JobState:
        """Queue a video for indexing (again, if it was done before)."""
        with self._lock:
            if self._broken is not None:
                self._jobs[video_id] = JobState(video_id, "failed", error=self._broken, version=1)
            else:
                self._jobs[video_id] = JobState(video_id)
                self._waiting.append((video_id, path))
            self._dispatch()
            return dataclasses.replace(self._jobs[video_id])

    def _dispatch(self) -> None:
        """Hand the worker the next waiting video when it is idle (call with the lock held)."""
        if self._idle and self._running is None and self._waiting:
            self._running = self._waiting.popleft()
            self._idle = False
            self._set(self._running[0], status="indexing", stage="hashing")
            self._tasks.send((self._running[0], str(self._running[1])))

    def state(self, video_id: str) -> JobState | None:
        """A snapshot of a video's job, or ``None`` when none was submitted."""
        with self._lock:
            job = self._jobs.get(video_id)
            return None if job is None else dataclasses.replace(job)

    def _set(self, video_id: str, **changes) -> None:
        job = self._jobs.get(video_id)
        if job is not None:
            for key, value in changes.items():
                setattr(job, key, value)
            job.version += 1

    def _read_events(self) -> None:
        while not self._closing.is_set():
            try:
                if not self._events.poll(EVENT_WAIT_SECONDS):
                    continue
                video_id, kind, payload = self._events.recv()
            except (EOFError, OSError):  # the worker is gone
                if not self._closing.is_set():
                    self._worker_died()
                continue
            self._handle(video_id, kind, payload)

    def _handle(self, video_id: str, kind: str, payload) -> None:
        if kind == "done":
            try:
                self._on_done(video_id, self._running[1])
            except SalovaError as exc:
                kind, payload = "failed", str(exc)
        with self._lock:
            if kind == "progress":
                stage, fraction, segments = payload
                self._set(video_id, stage=stage, progress=fraction, segments=segments)
                return
            if kind == "crashed":
                logger.error("%s", payload)
                self._broken = payload
                for job in self._jobs.values():
                    if not job.finished:
                        self._set(job.video_id, status="failed", error=payload)
                self._waiting.clear()
                return
            if kind == "failed":
                self._set(video_id, status="failed", error=payload)
            elif kind == "done":
                self._set(video_id, status="ready", stage="done", progress=1.0)
            self._running = None
            self._idle = True
            self._dispatch()

    def _worker_died(self) -> None:
        reason = f"the indexing worker exited (code {self._process.exitcode if self._process else None})"
        with self._lock:
            if self._broken is not None:
                self._closing.set()
                return
            logger.error("%s; restarting it", reason)
            if self._running is not None:
                self._set(self._running[0], status="failed", error=reason)
                self._running = None
            self._events.close()
            self._tasks.close()
            self._start_worker()

    def close(self) -> None:
        """Stop the worker (after its current video) and the reader thread."""
        self._closing.set()
        if self._reader is not None:
            self._reader.join()
        if self._process is not None and self._process.is_alive():
            try:
                self._tasks.send(None)
            except OSError:
                pass
            self._process.join(WORKER_STOP_SECONDS)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()
        for connection in (self._tasks, self._events):
            if connection is not None:
                connection.close()
