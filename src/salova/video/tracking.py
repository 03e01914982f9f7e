"""Class-agnostic tracking of proposal boxes into tracklets, with SEAL's length rules.

:class:`Tracker` links the boxes of consecutive analysed frames greedily: by overlap first (IoU at
least ``iou_threshold``), then, for fast movers whose boxes no longer overlap, by the nearest centre
within ``max_center_shift`` of the frame diagonal. A track ends after ``max_missed`` frames without a
box, or at a cut. SEAL's rules (arXiv 2412.01798, section 3.1) are applied as tracks grow, so memory
holds at most ``L_max`` boxes per live track:

* a track longer than ``L_max`` is split: each time its current piece reaches ``L_max`` frames the
  piece becomes a tracklet and the track goes on in a new piece;
* a tracklet shorter than ``L_min`` is dropped (a whole short track, or the short tail of a split one).

Lengths are given in seconds and counted in analysed frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from salova.errors import ConfigError
from salova.video.proposals import Box

__all__ = ["TrackerConfig", "Tracklet", "Tracker"]


@dataclass(frozen=True)
class TrackerConfig:
    """Association and SEAL's tracklet length rules."""

    iou_threshold: float = 0.2
    """A box continues a track when it overlaps the track's last box at least this much."""
    max_center_shift: float = 0.08
    """...or when its centre lies within this share of the frame diagonal of the track's last centre."""
    max_missed: int = 3
    """Analysed frames a track may go without a box before it ends."""
    min_track_sec: float = 0.4
    """``L_min``: shorter tracklets are dropped."""
    max_track_sec: float = 3.0
    """``L_max``: longer tracks are split into tracklets of this length."""

    def __post_init__(self) -> None:
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ConfigError(f"iou_threshold must be in (0, 1], got {self.iou_threshold!r}")
        if self.max_center_shift < 0 or self.max_missed < 0:
            raise ConfigError("max_center_shift and max_missed must be >= 0")
        if not 0.0 < self.min_track_sec <= self.max_track_sec:
            raise ConfigError(
                f"tracklet lengths must satisfy 0 < min_track_sec <= max_track_sec, "
                f"got {self.min_track_sec} and {self.max_track_sec}"
            )


@dataclass(frozen=True)
class Tracklet:
    """A piece of one object's track: its box in each analysed frame where it was found."""

    track_id: int
    """The track; the pieces of a split track share it."""
    piece: int
    """0 for the first piece of a track, then 1, 2...: the order of the pieces of a split track."""
    frames: tuple[int, ...]
    """Analysed-frame numbers."""
    times: tuple[float, ...]
    """Seconds of those frames."""
    boxes: tuple[Box, ...]

    @property
    def start(self) -> float:
        return self.times[0]

    @property
    def end(self) -> float:
        return self.times[-1]

    @property
    def length(self) -> int:
        """Analysed frames from the first to the last box (gaps included)."""
        return self.frames[-1] - self.frames[0] + 1

    @property
    def union(self) -> Box:
        """The spatial union of its boxes (SEAL's action-token region)."""
        box = self.boxes[0]
        for other in self.boxes[1:]:
            box = box.union(other)
        return box

    def box_at(self, time: float) -> Box | None:
        """Its box at the analysed frame nearest ``time`` within its span, or ``None`` outside it."""
        if not self.start <= time <= self.end:
            return None
        return self.boxes[min(range(len(self.times)), key=lambda i: abs(self.times[i] - time))]


@dataclass
class _Track:
    track_id: int
    last: Box
    """The latest box (matching reads it; a new piece of a split track starts with its predecessor's)."""
    piece: int = 0
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    missed: int = 0

    def tracklet(self) -> Tracklet:
        return Tracklet(self.track_id, self.piece, tuple(self.frames), tuple(self.times), tuple(self.boxes))


class Tracker:
    """Greedy IoU/centre tracker emitting tracklets under SEAL's length rules.

    Args:
        config: association and length rules.
        fps: analysed frames per second (converts the lengths to frames).
        diagonal: the frame diagonal in pixels (scales ``max_center_shift``).
    """

    def __init__(self, config: TrackerConfig, fps: float, diagonal: float):
        if fps <= 0 or diagonal <= 0:
            raise ValueError(f"fps and diagonal must be > 0, got {fps} and {diagonal}")
        self.config = config
        self.min_frames = max(1, math.ceil(config.min_track_sec * fps - 1e-9))
        self.max_frames = max(self.min_frames, math.floor(config.max_track_sec * fps + 1e-9))
        self.max_shift = config.max_center_shift * diagonal
        self._tracks: list[_Track] = []
        self._next_id = 0
        self.dropped = 0
        """Tracklets dropped for being shorter than ``L_min``."""
        self.splits = 0
        """Times a track reached ``L_max`` and went on in a new piece."""

    @property
    def active(self) -> int:
        return len(self._tracks)

    def _close(self, track: _Track) -> list[Tracklet]:
        if not track.frames:
            return []
        if track.frames[-1] - track.frames[0] + 1 < self.min_frames:
            self.dropped += 1
            return []
        return [track.tracklet()]

    def _match(self, boxes: list[Box]) -> dict[int, int]:
        """Track position -> box index."""
        pairs = sorted(
            ((track.last.iou(box), t, b) for t, track in enumerate(self._tracks) for b, box in enumerate(boxes)),
            reverse=True,
        )
        matched: dict[int, int] = {}
        used: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.config.iou_threshold:
                break
            if t not in matched and b not in used:
                matched[t] = b
                used.add(b)
        distances = sorted(
            (math.dist(track.last.center, box.center), t, b)
            for t, track in enumerate(self._tracks)
            for b, box in enumerate(boxes)
            if t not in matched and b not in used
        )
        for distance, t, b in distances:
            if distance > self.max_shift:
                break
            if t not in matched and b not in used:
                matched[t] = b
                used.add(b)
        return matched

    def update(self, frame: int, time: float, boxes: list[Box] | None) -> list[Tracklet]:
        """Take the boxes of the next analysed frame (``None`` at a cut: every track ends).

        Returns:
            The tracklets finished by this frame.
        """
        if boxes is None:
            return self.finish()
        finished: list[Tracklet] = []
        matched = self._match(boxes)
        alive: list[_Track] = []
        for position, track in enumerate(self._tracks):
            if position in matched:
                box = boxes[matched[position]]
                track.frames.append(frame)
                track.times.append(time)
                track.boxes.append(box)
                track.last = box
                track.missed = 0
                if track.frames[-1] - track.frames[0] + 1 >= self.max_frames:
                    finished.append(track.tracklet())
                    self.splits += 1
                    track = _Track(track.track_id, box, track.piece + 1)
                alive.append(track)
                continue
            track.missed += 1
            if track.missed > self.config.max_missed:
                finished += self._close(track)
            else:
                alive.append(track)
        taken = set(matched.values())
        for index, box in enumerate(boxes):
            if index not in taken:
                alive.append(_Track(self._next_id, box, frames=[frame], times=[time], boxes=[box]))
                self._next_id += 1
        self._tracks = alive
        return finished

    def finish(self) -> list[Tracklet]:
        """End every track (the end of the video, or a cut)."""
        finished = [tracklet for track in self._tracks for tracklet in self._close(track)]
        self._tracks = []
        return finished
