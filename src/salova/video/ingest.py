"""One-pass ingest: decode a video once into scene cuts and per-segment 1 FPS frames.

Each decoded frame is used twice before it is released: a small BGR copy goes to the
scene detector, and, when it falls on the sampling grid, an RGB copy at the vision
tower's input size is kept for its segment. Memory holds only the kept frames of the open
segment and the one before it (:func:`iter_segments`), or of every segment when the
caller asks for the whole list (:func:`segment_video`).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from av.video.reformatter import VideoReformatter
from tqdm.auto import tqdm

from salova.video.config import IngestConfig, SamplingConfig
from salova.video.decode import DecodedFrame, VideoDecoder, VideoInfo
from salova.video.scenes import CutDetector, Piece, SegmentAssembler, merge_to_cap

__all__ = [
    "Segment",
    "VideoSegments",
    "SegmentIterator",
    "FrameSampler",
    "fit_frame",
    "iter_segments",
    "segment_video",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    """One segment of a video and the frames sampled from it."""

    index: int
    start_sec: float
    end_sec: float
    start_frame: int
    """First frame, 0-based, CFR-equivalent (as PySceneDetect counts)."""
    end_frame: int
    """One past the last frame (exclusive, as PySceneDetect counts)."""
    frame_times: np.ndarray
    """(num_frames,) float64 seconds of the sampled frames."""
    frames: np.ndarray | None
    """(num_frames, frame_size, frame_size, 3) uint8 RGB, or ``None`` when not kept."""

    @property
    def num_frames(self) -> int:
        return len(self.frame_times)

    @property
    def duration_sec(self) -> float:
        return self.end_sec - self.start_sec

    def to_dict(self) -> dict:
        """JSON form: seconds, frame numbers (end exclusive) and the sampled-frame count."""
        return {
            "index": self.index,
            "start": round(self.start_sec, 3),
            "end": round(self.end_sec, 3),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "frames": self.num_frames,
        }


@dataclass(frozen=True)
class VideoSegments:
    """Everything :func:`segment_video` learned from one pass over a video."""

    info: VideoInfo
    segments: list[Segment]
    cut_frames: list[int]
    """Frames where the detector itself cut, before the segment rules."""
    damaged_frames: int
    """Frames that failed to decode and were skipped."""
    truncated: bool
    """The stream ended well before its stated duration."""

    @property
    def path(self) -> Path:
        return self.info.path


class FrameSampler:
    """Pick the first frame of every ``1 / fps`` interval and convert it for the tower."""

    def __init__(self, config: SamplingConfig, info: VideoInfo):
        self.config = config
        self._next_slot = 0
        self._reformatter = VideoReformatter()
        self._width, self._height = info.width, info.height

    def wants(self, time: float) -> bool:
        slot = math.floor(time * self.config.fps + 1e-9)
        if slot < self._next_slot:
            return False
        self._next_slot = slot + 1
        return True

    def convert(self, decoded: DecodedFrame) -> np.ndarray:
        """(frame_size, frame_size, 3) uint8 RGB, upright, resized as configured."""
        size = self.config.frame_size
        quarter_turns = decoded.rotation // 90
        upright_w, upright_h = (self._height, self._width) if quarter_turns % 2 else (self._width, self._height)
        if self.config.resize == "stretch":
            scaled_w = scaled_h = size
        else:
            pick = min if self.config.resize == "center_crop" else max
            scale = size / pick(upright_w, upright_h)
            # Scale the stored frame; the rotation below does not change the scale.
            scaled_w = max(1, round(self._width * scale))
            scaled_h = max(1, round(self._height * scale))
        image = self._reformatter.reformat(
            decoded.frame, width=scaled_w, height=scaled_h, format="rgb24", interpolation="BICUBIC", threads=1
        ).to_ndarray()
        if quarter_turns:
            image = np.rot90(image, k=quarter_turns)
        return _fit_square(image, size, self.config.resize)


def fit_frame(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    """Fit an upright RGB ``image`` to the ``size`` square as :meth:`FrameSampler.convert` fits a
    decoded frame (bicubic scaling, then ``mode``: ``center_crop``, ``stretch`` or ``pad``).

    Example:
        >>> fit_frame(np.zeros((240, 320, 3), np.uint8), 64, "center_crop").shape
        (64, 64, 3)
    """
    height, width = image.shape[:2]
    if mode == "stretch":
        scaled = (size, size)
    else:
        scale = size / (min if mode == "center_crop" else max)(width, height)
        scaled = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _fit_square(cv2.resize(image, scaled, interpolation=cv2.INTER_CUBIC), size, mode)


def _fit_square(image: np.ndarray, size: int, mode: str) -> np.ndarray:
    height, width = image.shape[:2]
    if mode == "center_crop":
        top, left = (height - size) // 2, (width - size) // 2
        return np.ascontiguousarray(image[top : top + size, left : left + size])
    if mode == "pad":
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        top, left = (size - height) // 2, (size - width) // 2
        canvas[top : top + height, left : left + width] = image
        return canvas
    return np.ascontiguousarray(image)


@dataclass
class _Pending:
    """A decoded frame waiting until the detector has looked far enough past it."""

    decoded: DecodedFrame
    sampled: bool


class SegmentIterator:
    """Iterator over the segments of a video, each yielded as soon as it is final.

    Attributes are filled in as decoding proceeds: ``info`` at once, ``cut_frames``,
    ``damaged_frames`` and ``truncated`` when iteration has finished.

    Args:
        path: the video file.
        config: scene, segment and sampling settings.
        progress: show a progress bar on stderr.
        decoder: an already open decoder to read instead of opening ``path`` (a live source,
            see :mod:`salova.video.live`).

    Raises:
        VideoNotFoundError, VideoPermissionError, VideoDecodeError, NoVideoStreamError,
        VideoTooLargeError: the file cannot be used (raised at construction).
        CorruptVideoError: damaged data while iterating with ``strict=True``.
    """

    def __init__(
        self,
        path: str | Path,
        config: IngestConfig | None = None,
        *,
        progress: bool = False,
        decoder: VideoDecoder | None = None,
    ):
        self.config = config or IngestConfig()
        self._decoder = decoder or VideoDecoder(
            path,
            strict=self.config.strict,
            threads=self.config.decode_threads,
            max_frame_pixels=self.config.max_frame_pixels,
        )
        self.info = self._decoder.info
        self.cut_frames: list[int] = []
        self._progress = progress
        self._count = 0
        self._generator = self._run()

    @property
    def damaged_frames(self) -> int:
        return self._decoder.damaged_frames

    @property
    def truncated(self) -> bool:
        return self._decoder.truncated

    def __iter__(self) -> SegmentIterator:
        return self

    def __next__(self) -> Segment:
        return next(self._generator)

    def close(self) -> None:
        self._generator.close()
        self._decoder.close()

    def _run(self) -> Iterator[Segment]:
        config, info = self.config, self.info
        detector = CutDetector(config.scenes, info)
        sampler = FrameSampler(config.sampling, info)
        assembler = SegmentAssembler(config.scenes, info.fps, info.duration_sec)
        pending: deque[_Pending] = deque()
        cuts: set[int] = set()
        last: DecodedFrame | None = None
        bar = tqdm(
            total=info.num_frames,
            unit="frame",
            desc=info.path.name,
            disable=not self._progress,
            leave=False,
            dynamic_ncols=True,
        )
        try:
            with self._decoder:
                for decoded in self._decoder:
                    new_cuts = detector.process(decoded)
                    cuts.update(new_cuts)
                    self.cut_frames.extend(new_cuts)
                    pending.append(_Pending(decoded, sampler.wants(decoded.time)))
                    # AdaptiveDetector decides about a frame `lag` frames later.
                    while len(pending) > detector.lag:
                        self._place(pending.popleft(), cuts, assembler, sampler)
                    yield from self._emit(assembler.pop_ready())
                    last = decoded
                    bar.update(1)
                final_cuts = detector.finish()
                cuts.update(final_cuts)
                self.cut_frames.extend(final_cuts)
                while pending:
                    self._place(pending.popleft(), cuts, assembler, sampler)
                assert last is not None  # the decoder raises when no frame decodes
                frame_sec = 1.0 / float(info.fps)
                assembler.finish(last.time + frame_sec, last.index + 1)
                yield from self._emit(assembler.pop_ready())
        finally:
            bar.close()
        self.cut_frames.sort()

    def _place(self, item: _Pending, cuts: set[int], assembler: SegmentAssembler, sampler: FrameSampler) -> None:
        decoded = item.decoded
        opens = assembler.boundary(decoded.time, decoded.index, decoded.index in cuts)
        image = None
        if self.config.keep_frames and (item.sampled or opens):
            image = sampler.convert(decoded)
        if item.sampled or opens:
            assembler.add_frame(decoded.time, image, item.sampled)

    def _emit(self, pieces: list[Piece]) -> Iterator[Segment]:
        for piece in pieces:
            yield _to_segment(piece, self._count, self.config.keep_frames)
            self._count += 1


def _to_segment(piece: Piece, index: int, keep_frames: bool) -> Segment:
    times, images = piece.times, piece.images
    if not times:
        # Shorter than the sampling interval: its first frame stands for it.
        assert piece.fallback is not None
        fallback_time, fallback_image = piece.fallback
        times = [fallback_time]
        images = [fallback_image] if fallback_image is not None else []
    frames = np.stack(images) if keep_frames and images else None
    return Segment(
        index=index,
        start_sec=piece.start_sec,
        end_sec=piece.end_sec,
        start_frame=piece.start_frame,
        end_frame=piece.end_frame,
        frame_times=np.asarray(times, dtype=np.float64),
        frames=frames,
    )


def iter_segments(path: str | Path, config: IngestConfig | None = None, *, progress: bool = False) -> SegmentIterator:
    """Decode ``path`` once and yield its segments as they are completed.

    Memory stays bounded by the kept frames of two segments, whatever the video's length,
    which suits hour-long videos. The ``max_segments`` cap applies through the stated
    duration; use :func:`segment_video` for a guaranteed cap on streams without one.

    Args:
        path: the video file.
        config: scene, segment and sampling settings (defaults: paper settings, 1 FPS).
        progress: show a progress bar on stderr.

    Returns:
        A :class:`SegmentIterator` (also exposes ``info``, ``cut_frames``,
        ``damaged_frames`` and ``truncated``).

    Raises:
        VideoNotFoundError, VideoPermissionError, VideoDecodeError, NoVideoStreamError,
        VideoTooLargeError, CorruptVideoError: see :class:`SegmentIterator`.

    Example:
        >>> from salova.video import iter_segments, sample_video_path
        >>> for segment in iter_segments(sample_video_path("bikes")):
        ...     print(segment.index, segment.start_sec, segment.frames.shape)  # doctest: +SKIP
    """
    return SegmentIterator(path, config, progress=progress)


def segment_video(path: str | Path, config: IngestConfig | None = None, *, progress: bool = False) -> VideoSegments:
    """Decode ``path`` once into its segments and their sampled frames.

    Args:
        path: the video file.
        config: scene, segment and sampling settings (defaults: paper settings, 1 FPS).
        progress: show a progress bar on stderr.

    Returns:
        :class:`VideoSegments`: the stream info, the segments (at least one), the detector's
        raw cut frames and the number of damaged frames skipped.

    Raises:
        VideoNotFoundError, VideoPermissionError, VideoDecodeError, NoVideoStreamError,
        VideoTooLargeError, CorruptVideoError: see :class:`SegmentIterator`.

    Example:
        >>> from salova.video import IngestConfig, SceneConfig, sample_video_path, segment_video
        >>> rules_off = IngestConfig(scenes=SceneConfig(min_segment_sec=0, max_segment_sec=0))
        >>> [s.start_frame for s in segment_video(sample_video_path("bikes"), rules_off).segments]
        [0, 30, 76, 137, 187, 242]
    """
    config = config or IngestConfig()
    iterator = SegmentIterator(path, config, progress=progress)
    segments = list(iterator)
    cap = config.scenes.max_segments
    if cap and len(segments) > cap:
        segments = _recap(segments, cap, config.keep_frames)
    if iterator.damaged_frames:
        logger.warning("%s: skipped %d damaged frames", iterator.info.path, iterator.damaged_frames)
    return VideoSegments(
        info=iterator.info,
        segments=segments,
        cut_frames=list(iterator.cut_frames),
        damaged_frames=iterator.damaged_frames,
        truncated=iterator.truncated,
    )


def _recap(segments: list[Segment], cap: int, keep_frames: bool) -> list[Segment]:
    pieces = [
        Piece(
            start_sec=s.start_sec,
            start_frame=s.start_frame,
            end_sec=s.end_sec,
            end_frame=s.end_frame,
            times=list(s.frame_times),
            images=list(s.frames) if s.frames is not None else [],
        )
        for s in segments
    ]
    return [_to_segment(p, i, keep_frames) for i, p in enumerate(merge_to_cap(pieces, cap))]
