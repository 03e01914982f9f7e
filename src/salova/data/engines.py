"""Engines that run the per-video pipeline over many videos.

- ``local`` (default, no Ray needed): ``workers=1`` builds in the calling process;
  ``workers=N`` starts N worker processes (``spawn``), each loading the models once. A worker
  exits by itself when its parent process dies, so a killed build leaves nothing running.
- ``ray``: the same work as a Ray Data pipeline (``map_batches`` over an actor pool of
  ``workers`` actors, one video per call), on a local Ray instance started for the build, or
  on a running cluster when an address is given (every node then needs salova installed and
  the videos and output folder on a shared path).

Both call :func:`salova.data.pipeline.process_video` in every worker, which writes each
video's result itself; an engine only yields the outcomes as videos finish.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from salova.data.pipeline import BuildConfig, VideoBuilder, VideoOutcome, process_video
from salova.data.sources import VideoInput
from salova.errors import ConfigError, EngineError

__all__ = ["Engine", "LocalEngine", "RayEngine", "ENGINES", "build_engine"]

logger = logging.getLogger(__name__)

PARENT_POLL_SEC = 0.5
"""How often a local worker checks that the build process that started it is still alive."""
RAY_OBJECT_STORE_BYTES = 256 * 2**20
"""Object store of a local Ray instance started for a build; only small outcome rows pass through it."""


class Engine(ABC):
    """Runs :func:`~salova.data.pipeline.process_video` over videos and yields the outcomes."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    @abstractmethod
    def run(self, config: BuildConfig, videos: Sequence[VideoInput], out_dir: Path) -> Iterator[VideoOutcome]:
        """Build every video into ``out_dir``, yielding outcomes in completion order.

        Raises:
            EngineError: the workers cannot start or were lost.
        """


# -- local ---------------------------------------------------------------------------------------

_worker_builder: VideoBuilder | None = None
_worker_error: str | None = None


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SEC)
        os._exit(1)  # the build was killed: stop at once, finished results are already on disk

    threading.Thread(target=watch, name="salova-parent-watch", daemon=True).start()


def _init_worker(config: BuildConfig, parent_pid: int) -> None:
    global _worker_builder, _worker_error
    _exit_with_parent(parent_pid)
    try:
        _worker_builder = VideoBuilder(config)
    except Exception as exc:  # reported with the first task; some errors do not pickle
        _worker_error = f"{type(exc).__name__}: {exc}"


def _work(video: dict[str, str], out_dir: str) -> VideoOutcome:
    if _worker_builder is None:
        raise EngineError(f"a worker could not load the models: {_worker_error}")
    return process_video(_worker_builder, VideoInput.from_dict(video), out_dir)


class LocalEngine(Engine):
    """The calling process (``workers=1``) or ``workers`` spawned processes on this machine."""

    def run(self, config: BuildConfig, videos: Sequence[VideoInput], out_dir: Path) -> Iterator[VideoOutcome]:
        if not videos:
            return
        if self.workers == 1:
            builder = VideoBuilder(config)
            try:
                for video in videos:
                    yield process_video(builder, video, out_dir)
            finally:
                builder.close()
            return
        context = multiprocessing.get_context("spawn")  # fork would copy torch's threads and locks
        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, len(videos)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(config, os.getpid()),
        )
        try:
            futures = [pool.submit(_work, video.to_dict(), str(out_dir)) for video in videos]
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool as exc:
            raise EngineError(f"a worker process died ({exc}); run the build again to resume") from exc
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


# -- Ray -----------------------------------------------------------------------------------------


class _RayBuilder:
    """Ray Data callable class: one per actor, models loaded once."""

    def __init__(self, config: BuildConfig, out_dir: str):
        self.builder = VideoBuilder(config)
        self.out_dir = out_dir

    def __call__(self, batch: dict) -> dict:
        outcomes = [
            process_video(self.builder, VideoInput(id=str(i), path=Path(str(p)), relative=str(r)), self.out_dir)
            for i, p, r in zip(batch["id"], batch["path"], batch["relative"], strict=True)
        ]
        return {
            "id": [o.id for o in outcomes],
            "status": [o.status for o in outcomes],
            "error": [o.error or "" for o in outcomes],
        }


class RayEngine(Engine):
    """Ray Data: local Ray by default, or the cluster at ``address``."""

    def __init__(self, workers: int = 1, address: str | None = None, *, progress: bool = False):
        super().__init__(workers)
        self.address = address
        self.progress = progress

    def _start(self):
        try:
            import ray
            import ray.data
        except ImportError as exc:
            raise EngineError("--engine ray needs Ray Data: pip install 'ray[data]' (or salova[ray])") from exc
        if ray.is_initialized():
            return ray, False
        options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
        if self.address is None:
            options.update(num_cpus=self.workers, object_store_memory=RAY_OBJECT_STORE_BYTES)
        try:
            ray.init(address=self.address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise EngineError(f"cannot start or reach Ray at {self.address or 'a new local instance'}: {exc}") from exc
        return ray, True

    def run(self, config: BuildConfig, videos: Sequence[VideoInput], out_dir: Path) -> Iterator[VideoOutcome]:
        if not videos:
            return
        ray, started = self._start()
        try:
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = self.progress
            context.print_on_execution_start = self.progress
            items = [video.to_dict() for video in videos]
            dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                _RayBuilder,
                fn_constructor_args=(config, str(out_dir)),
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=min(self.workers, len(items))),
                num_cpus=1,
            )
            try:
                for row in dataset.iter_rows():
                    yield VideoOutcome(str(row["id"]), str(row["status"]), str(row["error"]) or None)
            except ray.exceptions.RayError as exc:
                raise EngineError(f"the Ray pipeline failed: {exc}") from exc
        finally:
            if started:
                ray.shutdown()


ENGINES: dict[str, type[Engine]] = {"local": LocalEngine, "ray": RayEngine}
"""Engine name -> class."""


def build_engine(name: str, *, workers: int = 1, address: str | None = None, progress: bool = False) -> Engine:
    """The engine called ``name``.

    Args:
        name: ``local`` or ``ray``.
        workers: worker processes (local) or actors (Ray).
        address: Ray only: a cluster address; ``None`` starts a local instance.
        progress: Ray only: show Ray Data's own progress bars.

    Raises:
        ConfigError: unknown name, ``workers < 1``, or an address given to the local engine.
    """
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; choose from {sorted(ENGINES)}")
    if name == "local":
        if address is not None:
            raise ConfigError("a Ray address needs --engine ray")
        return LocalEngine(workers)
    return RayEngine(workers, address, progress=progress)
