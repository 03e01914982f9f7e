"""Scene cuts with PySceneDetect's ``AdaptiveDetector``, and the segment rules on top.

:class:`CutDetector` feeds frames that the caller has already decoded to the real
``scenedetect.AdaptiveDetector``: downscaled to PySceneDetect's detection width, in BGR,
with PTS-based timecodes, exactly the inputs ``SceneManager`` gives it. So the cut frames
are the detector's own, without a second decode.

:class:`SegmentAssembler` turns accepted cuts into segments, streaming: a cut closer than
the minimum length to the previous boundary is dropped, an over-long segment is split, and
a short last piece is merged back. It holds at most the open segment and the one before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from av.video.reformatter import VideoReformatter
from scenedetect import AdaptiveDetector, FrameTimecode
from scenedetect.common import Timecode
from scenedetect.scene_manager import compute_downscale_factor

from salova.video.config import SceneConfig
from salova.video.decode import DecodedFrame, VideoInfo

__all__ = ["CutDetector", "SegmentAssembler", "Piece", "detection_size", "merge_to_cap"]


def detection_size(width: int, height: int, detect_width: int) -> tuple[int, int]:
    """Frame size PySceneDetect's ``SceneManager`` detects on (its auto-downscale rule)."""
    factor = compute_downscale_factor(max(width, height), detect_width)
    if factor <= 1:
        return width, height
    return max(1, round(width / factor)), max(1, round(height / factor))


class CutDetector:
    """Run ``AdaptiveDetector`` on already-decoded frames.

    ``process`` returns the cuts the detector emits for this frame; ``AdaptiveDetector``
    reports a cut ``window_width`` frames after the frame it belongs to, so the returned
    values are CFR frame numbers of earlier frames (``lag`` of them at most).
    """

    def __init__(self, config: SceneConfig, info: VideoInfo):
        self._detector = AdaptiveDetector(
            adaptive_threshold=config.adaptive_threshold,
            min_scene_len=config.min_scene_len,
            window_width=config.window_width,
            min_content_val=config.min_content_val,
            luma_only=config.luma_only,
        )
        self.lag = config.window_width
        self.size = detection_size(info.width, info.height, config.detect_width)
        self._fps = info.fps
        self._reformatter = VideoReformatter()
        self._last: FrameTimecode | None = None

    def _timecode(self, decoded: DecodedFrame) -> FrameTimecode:
        return FrameTimecode(timecode=Timecode(pts=decoded.pts, time_base=decoded.time_base), fps=self._fps)

    def process(self, decoded: DecodedFrame) -> list[int]:
        width, height = self.size
        small = self._reformatter.reformat(
            decoded.frame, width=width, height=height, format="bgr24", interpolation="FAST_BILINEAR", threads=1
        ).to_ndarray()
        self._last = self._timecode(decoded)
        return [cut.frame_num for cut in self._detector.process_frame(self._last, small)]

    def finish(self) -> list[int]:
        if self._last is None:
            return []
        return [cut.frame_num for cut in self._detector.post_process(self._last)]


@dataclass
class Piece:
    """A segment under construction: its span and the frames sampled inside it."""

    start_sec: float
    start_frame: int
    end_sec: float = 0.0
    end_frame: int = 0
    times: list[float] = field(default_factory=list)
    """Times of the sampled frames (seconds)."""
    images: list[np.ndarray] = field(default_factory=list)
    """Sampled frames, parallel to ``times`` (empty when frames are not kept)."""
    fallback: tuple[float, np.ndarray | None] | None = None
    """The first frame of the piece, used when no sampled frame falls inside it."""

    @property
    def duration(self) -> float:
        return self.end_sec - self.start_sec

    def merged_with(self, later: Piece) -> Piece:
        return Piece(
            start_sec=self.start_sec,
            start_frame=self.start_frame,
            end_sec=later.end_sec,
            end_frame=later.end_frame,
            times=self.times + later.times,
            images=self.images + later.images,
            fallback=self.fallback,
        )

    def split_at(self, index: int, fps: Fraction) -> tuple[Piece, Piece]:
        """Split before the ``index``-th sampled frame."""
        time = self.times[index]
        frame = round(time * float(fps))
        first = Piece(self.start_sec, self.start_frame, time, frame, self.times[:index], self.images[:index])
        second = Piece(time, frame, self.end_sec, self.end_frame, self.times[index:], self.images[index:])
        first.fallback = self.fallback
        return first, second


class SegmentAssembler:
    """Apply the segment rules to a stream of frames and detector cuts.

    Call :meth:`boundary` for every frame in order (it says whether the frame opens a new
    segment), then :meth:`add_frame` for the frames that are sampled or open a segment,
    and :meth:`finish` at the end. :meth:`pop_ready` hands out finished pieces; the most
    recent one is held back until the next boundary, because a too-short last piece is
    merged into it.

    Args:
        config: the segment rules.
        fps: the video's frame rate, for frame numbers of split points.
        duration_sec: the video's stated duration, used by ``max_segments``.
    """

    def __init__(self, config: SceneConfig, fps: Fraction, duration_sec: float | None):
        self.min_sec = config.min_segment_sec
        if config.max_segments and duration_sec:
            self.min_sec = max(self.min_sec, duration_sec / config.max_segments)
        self.max_sec = config.max_segment_sec
        if self.max_sec and self.min_sec:
            self.max_sec = max(self.max_sec, 2 * self.min_sec)
        self._fps = fps
        self._open: Piece | None = None
        self._held: Piece | None = None
        self._ready: list[Piece] = []

    def boundary(self, time: float, frame: int, is_cut: bool) -> bool:
        """Decide whether the frame at ``time`` opens a new segment, closing the open one."""
        if self._open is None:
            self._open = Piece(start_sec=time, start_frame=frame)
            return True
        length = time - self._open.start_sec
        long_enough = length >= self.min_sec - 1e-9
        too_long = bool(self.max_sec) and length >= self.max_sec - 1e-9
        if long_enough and self._held is not None:
            # The open piece can no longer be a too-short last piece, so the held one is final:
            # hand it out now rather than at the next boundary (live streams answer sooner).
            self._ready.append(self._held)
            self._held = None
        if not ((is_cut and long_enough) or too_long):
            return False
        self._close(time, frame)
        self._open = Piece(start_sec=time, start_frame=frame)
        return True

    def add_frame(self, time: float, image: np.ndarray | None, sampled: bool) -> None:
        """Record a frame of the open segment: a sampled one, or its first frame as fallback."""
        assert self._open is not None, "boundary() must be called first"
        if sampled:
            self._open.times.append(time)
            if image is not None:
                self._open.images.append(image)
        if self._open.fallback is None:
            self._open.fallback = (time, image)

    def _close(self, end_sec: float, end_frame: int) -> None:
        assert self._open is not None
        self._open.end_sec, self._open.end_frame = end_sec, end_frame
        if self._held is not None:
            self._ready.append(self._held)
        self._held = self._open
        self._open = None

    def finish(self, end_sec: float, end_frame: int) -> None:
        """Close the last segment at the end of the video and release everything."""
        if self._open is None:
            return
        last = self._open
        last.end_sec, last.end_frame = end_sec, end_frame
        self._open = None
        if self._held is not None and last.duration < self.min_sec - 1e-9:
            merged = self._held.merged_with(last)
            self._held = None
            if self.max_sec and merged.duration > self.max_sec + 1e-9 and len(merged.times) >= 2:
                middle = (merged.start_sec + merged.end_sec) / 2
                split = min(range(1, len(merged.times)), key=lambda i: abs(merged.times[i] - middle))
                self._ready.extend(merged.split_at(split, self._fps))
            else:
                self._ready.append(merged)
        else:
            if self._held is not None:
                self._ready.append(self._held)
                self._held = None
            self._ready.append(last)

    def pop_ready(self) -> list[Piece]:
        ready, self._ready = self._ready, []
        return ready


def merge_to_cap(pieces: list[Piece], cap: int) -> list[Piece]:
    """Merge neighbours, shortest pair first, until at most ``cap`` pieces remain.

    Needed only when the duration was unknown up front (the streaming rule then cannot
    raise the minimum length in advance).
    """
    pieces = list(pieces)
    while cap and len(pieces) > cap:
        pair = min(range(len(pieces) - 1), key=lambda i: pieces[i].duration + pieces[i + 1].duration)
        pieces[pair : pair + 2] = [pieces[pair].merged_with(pieces[pair + 1])]
    return pieces
