"""Training data: cached frames, samples drawn from data records, collation and the batch order.

Frames. Every stage reads the same videos at the same frame size, so each video is decoded once
(1 FPS, fitted to the vision tower's square input) and its frames are cached as one safetensors
file of ``uint8`` arrays (:class:`FrameCache`); a stage then cuts them into the record's segments
by time. The cache is checked against the video's size and modification time.

Samples. A data record (:mod:`salova.data.schema`) holds one video, its segments, one
human/gpt turn pair per query and a ``[num_queries][num_segments]`` 0/1 label matrix. With
``sample_unit: query`` every (video, query) pair is a sample: its turn pair is the conversation,
its query the router's text, its label row the ``segment_labels``; with ``video`` the whole record
is one multi-turn sample.

Order. :class:`BatchPlan` fixes which samples every micro-batch of every optimizer step holds:
epoch ``e`` is a permutation seeded by ``(seed, e)``; step ``s`` takes the next
``global_batch_size`` samples, cut into micro-batch *chunks*; process ``r`` of ``W`` runs chunks
``r, r + W, r + 2W, ...``. The chunks do not depend on the number of processes, so one process
and many compute the same gradients, and a step number alone says where in the data a run is.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from salova.data.build import MANIFEST_NAME, OUTPUT_FILES
from salova.data.pipeline import prompt_question
from salova.data.schema import GPT, HUMAN, Record, read_records
from salova.errors import ConfigError, DataError, PathError
from salova.fileio import atomic_path
from salova.model.choices import parse_options
from salova.train.config import DataConfig, FrameDataConfig
from salova.video import SamplingConfig, VideoDecoder
from salova.video.ingest import FrameSampler

__all__ = [
    "FRAME_CACHE_DIR",
    "FrameCache",
    "VideoFrames",
    "segment_frames",
    "RecordSource",
    "load_record_source",
    "Example",
    "RecordDataset",
    "RecordCollator",
    "BatchPlan",
    "MicroBatch",
    "micro_batches",
]

logger = logging.getLogger(__name__)

FRAME_CACHE_DIR = ".salova-frames"
"""Default cache folder, inside the videos folder (hidden, so video discovery skips it)."""
FRAME_CACHE_VERSION = "1"
"""Bumped when the same video and settings would cache different frames."""
FRAMES_IN_MEMORY = 8
"""Videos whose frames a dataset keeps in memory between samples (least recently used go first)."""
ROLES = {HUMAN: "user", GPT: "assistant"}
"""Record speakers -> chat roles of the LLM's template."""


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class VideoFrames:
    """The sampled frames of one video."""

    frames: np.ndarray
    """``(num_frames, size, size, 3)`` uint8 RGB."""
    times: np.ndarray
    """``(num_frames,)`` float64 seconds."""


class FrameCache:
    """Frames of videos at one size and rate, decoded once and kept as safetensors files.

    Args:
        folder: where the cache files live.
        frame_size: side of the square frames (the vision tower's input size).
        fps: frames kept per second.
        resize: how frames are fitted to the square (``salova.video.SamplingConfig.resize``).
    """

    def __init__(self, folder: str | Path, frame_size: int, fps: float, resize: str):
        self.folder = Path(folder)
        self.sampling = SamplingConfig(fps=fps, frame_size=frame_size, resize=resize)
        self._memory: OrderedDict[str, VideoFrames] = OrderedDict()

    def path_for(self, relative: str) -> Path:
        """Cache file of the video at ``relative`` (its path under the videos folder)."""
        s = self.sampling
        return self.folder / f"{quote(relative, safe='')}.{s.frame_size}px.{s.fps:g}fps.{s.resize}.safetensors"

    def _signature(self, video: Path) -> dict[str, str]:
        stat = video.stat()
        s = self.sampling
        return {
            "version": FRAME_CACHE_VERSION,
            "source_bytes": str(stat.st_size),
            "source_mtime_ns": str(stat.st_mtime_ns),
            "frame_size": str(s.frame_size),
            "fps": f"{s.fps:g}",
            "resize": s.resize,
        }

    def _is_fresh(self, cache: Path, video: Path) -> bool:
        if not cache.is_file():
            return False
        try:
            with safe_open(str(cache), framework="np") as handle:
                metadata = handle.metadata() or {}
        except (OSError, SafetensorError):
            return False
        return metadata == self._signature(video)

    def _decode(self, video: Path) -> VideoFrames:
        frames, times = [], []
        with VideoDecoder(video) as decoder:
            sampler = FrameSampler(self.sampling, decoder.info)
            for decoded in decoder:
                if sampler.wants(decoded.time):
                    frames.append(sampler.convert(decoded))
                    times.append(decoded.time)
        if not frames:
            raise DataError(f"{video}: no frame could be sampled")
        return VideoFrames(frames=np.stack(frames), times=np.asarray(times, dtype=np.float64))

    def ensure(self, videos_root: Path, relative: str) -> Path:
        """Decode the video into the cache unless a fresh cache file exists; returns the file.

        Raises:
            VideoError: the video cannot be decoded (missing, unreadable, corrupt).
        """
        video = videos_root / relative
        cache = self.path_for(relative)
        if not video.exists() and cache.is_file():
            return cache  # the source is gone; the cache is all there is
        if self._is_fresh(cache, video):
            return cache
        decoded = self._decode(video)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as temp:
            save_file({"frames": decoded.frames, "times": decoded.times}, str(temp), metadata=self._signature(video))
        return cache

    def prepare(self, videos_root: Path, relatives: Sequence[str], progress: bool = False) -> None:
        """Fill the cache for every video listed (a no-op for fresh entries)."""
        for relative in tqdm(sorted(set(relatives)), desc="frames", unit="video", disable=not progress, leave=False):
            self.ensure(videos_root, relative)

    def load(self, videos_root: Path, relative: str) -> VideoFrames:
        """The frames of one video (decoded into the cache first if needed)."""
        if relative in self._memory:
            self._memory.move_to_end(relative)
            return self._memory[relative]
        tensors = load_file(str(self.ensure(videos_root, relative)))
        frames = VideoFrames(frames=tensors["frames"], times=tensors["times"])
        self._memory[relative] = frames
        if len(self._memory) > FRAMES_IN_MEMORY:
            self._memory.popitem(last=False)
        return frames


def frame_cache_for(config: FrameDataConfig, videos_root: Path, frame_size: int) -> FrameCache:
    """The cache a data section asks for: ``frame_cache`` or ``<videos>/.salova-frames``."""
    folder = Path(config.frame_cache) if config.frame_cache else videos_root / FRAME_CACHE_DIR
    return FrameCache(folder, frame_size, config.fps, config.resize)


def _spread(count: int, keep: int) -> np.ndarray:
    return np.unique(np.linspace(0, count - 1, keep).round().astype(np.int64))


def segment_frames(video: VideoFrames, spans: Sequence[tuple[float, float]], max_frames: int = 0) -> list[np.ndarray]:
    """Cut a video's frames into segments by time.

    A segment takes the frames with ``start <= time < end``; one shorter than the sampling
    interval takes the frame nearest its middle. ``max_frames > 0`` keeps that many, spread evenly.

    Returns:
        One ``(frames, size, size, 3)`` uint8 array per span.
    """
    pieces = []
    for start, end in spans:
        (index,) = np.nonzero((video.times >= start) & (video.times < end))
        if index.size == 0:
            index = np.array([int(np.argmin(np.abs(video.times - (start + end) / 2)))])
        if max_frames and index.size > max_frames:
            index = index[_spread(index.size, max_frames)]
        pieces.append(video.frames[index])
    return pieces


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordSource:
    """Records of one task and the folder their ``video`` paths are relative to."""

    records: tuple[Record, ...]
    videos_root: Path
    file: Path


def _build_videos_root(folder: Path) -> Path | None:
    manifest = folder / MANIFEST_NAME
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    root = data.get("videos_root") if isinstance(data, dict) else None
    return Path(root) if isinstance(root, str) else None


def load_record_source(config: DataConfig) -> RecordSource:
    """Read and validate the records of ``config.task``.

    Raises:
        PathError: the records file or folder does not exist.
        RecordError: a record breaks the schema.
        DataError: no record of the task.
    """
    path = Path(config.records)
    if path.is_dir():
        file = path / OUTPUT_FILES[config.task]
        if not file.is_file():
            raise PathError(path, f"holds no {OUTPUT_FILES[config.task]} (build it with salova build-data --task)")
    elif path.is_file():
        file = path
    else:
        raise PathError(path, "no such records file or build folder")
    records = tuple(r for r in read_records(file) if r.task == config.task)
    if not records:
        raise DataError(f"{file}: holds no records of task {config.task!r}")
    if config.videos:
        root = Path(config.videos)
    else:
        root = _build_videos_root(file.parent) or file.parent
    return RecordSource(records=records, videos_root=root, file=file)


@dataclass(frozen=True)
class Example:
    """One training sample, ready for the processor."""

    frames: list[np.ndarray]
    """Per segment, ``(frames, size, size, 3)`` uint8."""
    conversation: list[dict[str, str]]
    """Chat messages ``{"role", "content"}``."""
    queries: list[str]
    """Router queries."""
    labels: np.ndarray
    """``(num_queries, num_segments)`` 0/1."""
    timestamps: list[tuple[float, float]]
    """``(start_sec, end_sec)`` per segment."""

    def answers(self) -> list[str]:
        """The assistant turns, one per query."""
        return [message["content"] for message in self.conversation if message["role"] == ROLES[GPT]]


class RecordDataset(Dataset):
    """Samples of data records (see the module docstring).

    Items are addressed by ``(epoch, index)`` keys (the batch order's unit); the epoch does not
    change a record sample.
    """

    def __init__(self, source: RecordSource, config: DataConfig, cache: FrameCache):
        self.source = source
        self.config = config
        self.cache = cache
        samples: list[tuple[int, tuple[int, ...]]] = []
        for index, record in enumerate(source.records):
            if config.sample_unit == "video":
                samples.append((index, tuple(range(record.num_queries))))
            else:
                samples.extend((index, (q,)) for q in range(record.num_queries))
        if config.max_samples is not None:
            samples = samples[: config.max_samples]
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def videos(self) -> list[str]:
        """Relative paths of the videos the samples read."""
        return sorted({self.source.records[index].video for index, _ in self.samples})

    def _query_texts(self, record: Record) -> list[str]:
        source = self.config.query_source
        if source == "auto":
            source = "queries" if record.task == "captions" else "questions"
        if source == "queries":
            return list(record.queries)
        if source == "questions":
            return [prompt_question(prompt) for prompt in record.prompts()]
        return record.prompts()

    def __getitem__(self, key: tuple[int, int]) -> Example:
        _, index = key
        record_index, queries = self.samples[index]
        record = self.source.records[record_index]
        spans = [(scene.start_sec, scene.end_sec) for scene in record.scenes]
        video = self.cache.load(self.source.videos_root, record.video)
        texts = self._query_texts(record)
        conversation = []
        for q in queries:
            human, answer = (turn.value for turn in record.conversations[2 * q : 2 * q + 2])
            if self.config.answer_format == "option":
                human, answer = option_turn(human, answer)
            conversation += [{"role": ROLES[HUMAN], "content": human}, {"role": ROLES[GPT], "content": answer}]
        return Example(
            frames=segment_frames(video, spans, self.config.max_frames_per_segment),
            conversation=conversation,
            queries=[texts[q] for q in queries],
            labels=np.asarray([record.labels[q] for q in queries], dtype=np.int64),
            timestamps=spans,
        )


def option_turn(prompt: str, answer: str) -> tuple[str, str]:
    """A multiple-choice turn as ``data.answer_format: option`` teaches it: the bare question -> the
    chosen option's text; any other turn unchanged."""
    options = parse_options(prompt)
    if answer.strip() not in options:
        return prompt, answer
    return prompt_question(prompt), options[answer.strip()]


class RecordCollator:
    """Examples -> model inputs through a :class:`~salova.model.SalovaProcessor`, plus ``segment_labels``.

    Args:
        processor: the model's processor.
        timestamps: pass segment time spans (models with ``focusfast_timestamps``).
        answers: add ``answer_ids``: per example, per query, the LLM token ids of the answer turn
            (the word-alignment objective, :mod:`salova.train.alignment`).
    """

    def __init__(self, processor: Any, timestamps: bool, answers: bool = False):
        self.processor = processor
        self.timestamps = timestamps
        self.answers = answers
        self._answer_ids: dict[str, torch.Tensor] = {}

    def __call__(self, examples: Sequence[Example]) -> dict[str, Any]:
        batch = self.processor(
            [e.frames for e in examples],
            conversations=[e.conversation for e in examples],
            queries=[e.queries for e in examples],
            timestamps=[e.timestamps for e in examples] if self.timestamps else None,
        )
        inputs = dict(batch)
        inputs["segment_labels"] = [torch.from_numpy(e.labels) for e in examples]
        if self.answers:
            inputs["answer_ids"] = [[self.answer_ids(text) for text in e.answers()] for e in examples]
        return inputs

    def answer_ids(self, text: str) -> torch.Tensor:
        """LLM token ids of an answer, without special tokens (each text tokenized once)."""
        if text not in self._answer_ids:
            ids = self.processor.tokenizer(text, add_special_tokens=False)["input_ids"]
            self._answer_ids[text] = torch.tensor(ids, dtype=torch.long)
        return self._answer_ids[text]


# --------------------------------------------------------------------------- order


@dataclass(frozen=True)
class BatchPlan:
    """Which samples every micro-batch of every optimizer step reads (see the module docstring)."""

    num_samples: int
    global_batch_size: int
    micro_batch_size: int
    world_size: int
    seed: int

    def __post_init__(self) -> None:
        if self.num_samples < self.global_batch_size:
            raise ConfigError(
                f"the data has {self.num_samples} samples, fewer than one global batch ({self.global_batch_size}); "
                "lower global_batch_size or add data"
            )
        if self.global_batch_size % (self.micro_batch_size * self.world_size):
            raise ConfigError(
                f"global_batch_size ({self.global_batch_size}) must be a multiple of micro_batch_size x processes "
                f"({self.micro_batch_size} x {self.world_size})"
            )

    @property
    def accumulation(self) -> int:
        """Micro-batches per process per optimizer step."""
        return self.global_batch_size // (self.micro_batch_size * self.world_size)

    @property
    def chunks_per_step(self) -> int:
        return self.global_batch_size // self.micro_batch_size

    @property
    def steps_per_epoch(self) -> int:
        """Full global batches in one pass (the remainder of an epoch is left out)."""
        return self.num_samples // self.global_batch_size

    def order(self, epoch: int) -> np.ndarray:
        """The permutation of the samples in ``epoch``."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def chunk(self, rank: int, micro: int) -> int:
        """Chunk of the step that process ``rank`` runs as its ``micro``-th micro-batch."""
        return micro * self.world_size + rank

    def chunk_samples(self, order: np.ndarray, step: int, chunk: int) -> list[int]:
        start = step * self.global_batch_size + chunk * self.micro_batch_size
        return [int(i) for i in order[start : start + self.micro_batch_size]]

    def micro_seed(self, epoch: int, step: int, chunk: int) -> int:
        """Seed of a micro-batch's random draws (token drop, dropout): the same whatever process runs it."""
        return int(np.random.SeedSequence([self.seed, epoch, step, chunk]).generate_state(1)[0])

    def position(self, global_step: int) -> tuple[int, int]:
        """``(epoch, step within the epoch)`` of an optimizer step."""
        return divmod(global_step, self.steps_per_epoch)


class _RunChunks(Sampler):
    """This process's micro-batches from optimizer step ``start`` on, epoch after epoch, without end,
    as lists of ``(epoch, index)`` keys (one sampler for the whole run, so loader workers live as long)."""

    def __init__(self, plan: BatchPlan, start: int, rank: int):
        self.plan, self.start, self.rank = plan, start, rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_step, order_epoch, order = self.start, None, None
        while True:
            epoch, step = self.plan.position(global_step)
            if epoch != order_epoch:
                order_epoch, order = epoch, self.plan.order(epoch)
            for micro in range(self.plan.accumulation):
                chunk = self.plan.chunk(self.rank, micro)
                yield [(epoch, i) for i in self.plan.chunk_samples(order, step, chunk)]
            global_step += 1


@dataclass(frozen=True)
class MicroBatch:
    """One micro-batch and where it sits in the run."""

    epoch: int
    step: int
    """Optimizer step within the epoch."""
    seed: int
    """Seed of its random draws (:meth:`BatchPlan.micro_seed`)."""
    inputs: Any


def micro_batches(
    plan: BatchPlan,
    dataset: Dataset,
    collate: Callable[[list], Any],
    *,
    rank: int,
    start_step: int,
    num_workers: int = 0,
) -> Iterator[MicroBatch]:
    """This process's micro-batches from optimizer step ``start_step`` on, epoch after epoch."""
    loader = DataLoader(
        dataset,
        batch_sampler=_RunChunks(plan, start_step, rank),
        collate_fn=collate,
        num_workers=num_workers,
        # Workers start clean instead of forking a process that holds a model and thread pools.
        multiprocessing_context="spawn" if num_workers else None,
    )
    for k, inputs in enumerate(loader):
        epoch, step = plan.position(start_step + k // plan.accumulation)
        chunk = plan.chunk(rank, k % plan.accumulation)
        yield MicroBatch(epoch=epoch, step=step, seed=plan.micro_seed(epoch, step, chunk), inputs=inputs)
