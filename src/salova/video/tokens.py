"""SEAL's semantic tokens (arXiv 2412.01798, section 3.1): scene, action and object tokens of a video.

* **scene tokens**: ``scene_tokens`` frames sampled uniformly over the video (the "where");
* **action tokens**: class-agnostic tracklets of moving things (the "how"). Boxes come from a
  pluggable motion source (default: camera-motion-compensated frame differencing, see
  :mod:`salova.video.proposals`), are linked into tracks (:mod:`salova.video.tracking`), tracks
  shorter than ``L_min`` are dropped and longer than ``L_max`` split; the token is the crop of the
  spatial union of the tracklet's boxes, taken from its middle frame;
* **object tokens**: class-agnostic regions of ``object_keyframes`` keyframes (the "what"), from a
  pluggable region source (default: spectral-residual saliency).

Every token carries a ``uint8`` RGB image (a frame or a crop) that the vision tower can encode
(:func:`salova.infer.semantic.select_tokens` does, and lets SEAL choose among them), its time span
and its box in the video's pixels. One decode pass; memory holds the frames of the live tracks
(at most ``L_max`` plus a few analysed frames), never the video.
"""

from __future__ import annotations

import colorsys
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from salova.errors import ConfigError, VideoDecodeError
from salova.video.decode import DecodedFrame, VideoDecoder, VideoInfo
from salova.video.proposals import (
    Box,
    MotionConfig,
    MotionSource,
    RegionSource,
    SaliencyConfig,
    build_motion_source,
    build_region_source,
)
from salova.video.tracking import Tracker, TrackerConfig, Tracklet

__all__ = ["TOKEN_KINDS", "SemanticConfig", "SemanticToken", "SemanticTokens", "semantic_tokens", "draw_tracklets"]

TOKEN_KINDS = ("scene", "action", "object")
"""The three token kinds, SEAL's "where", "how" and "what"."""
_TRACK_BUFFER_SLACK = 2
"""Analysed frames kept beyond ``L_max + max_missed`` (the frame being analysed and rounding)."""
_LINE = cv2.LINE_AA


@dataclass(frozen=True)
class SemanticConfig:
    """How a video is decomposed into semantic tokens."""

    scene_tokens: int = 16
    """``N_scene``: frames sampled uniformly over the video."""
    object_keyframes: int = 8
    """Keyframes (uniformly spaced) whose regions become object tokens."""
    max_objects_per_keyframe: int = 6
    """Most object regions kept per keyframe (the most salient)."""
    analysis_fps: float = 10.0
    """Frames per second analysed for motion and tracking (every frame when the video is slower)."""
    analysis_width: int = 320
    """Width motion is analysed at: boxes are found on frames this wide, then scaled back."""
    token_width: int = 640
    """Width of token images' source frames (the original when narrower): crops stay sharp enough
    for a vision tower without holding full-resolution frames."""
    crop_margin: float = 0.1
    """Boxes grow by this share of their size on each side before cropping (context)."""
    motion_source: str = "motion"
    """Key of :data:`~salova.video.proposals.MOTION_SOURCES` used when no source object is given."""
    region_source: str = "saliency"
    """Key of :data:`~salova.video.proposals.REGION_SOURCES` used when no source object is given."""
    motion: MotionConfig = field(default_factory=MotionConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    saliency: SaliencyConfig = field(default_factory=SaliencyConfig)

    def __post_init__(self) -> None:
        if self.scene_tokens < 0 or self.object_keyframes < 0 or self.max_objects_per_keyframe < 0:
            raise ConfigError("scene_tokens, object_keyframes and max_objects_per_keyframe must be >= 0")
        if self.analysis_fps <= 0:
            raise ConfigError(f"analysis_fps must be > 0, got {self.analysis_fps!r}")
        if self.analysis_width < 32 or self.token_width < self.analysis_width:
            raise ConfigError(
                f"need 32 <= analysis_width <= token_width, got {self.analysis_width} and {self.token_width}"
            )
        if self.crop_margin < 0:
            raise ConfigError(f"crop_margin must be >= 0, got {self.crop_margin!r}")


@dataclass(frozen=True)
class SemanticToken:
    """One semantic token: what it shows (an image for the vision tower), where and when."""

    kind: str
    """One of :data:`TOKEN_KINDS`."""
    start: float
    """Seconds (the frame's time for scene and object tokens)."""
    end: float
    box: Box
    """Region in the video's pixels (the whole frame for scene tokens; the union for action tokens)."""
    image: np.ndarray
    """``(h, w, 3)`` uint8 RGB: the frame or the crop."""
    tracklet: Tracklet | None = None
    """Action tokens: the boxes over time, in the video's pixels."""

    def to_dict(self) -> dict:
        row = {"kind": self.kind, "start": round(self.start, 3), "end": round(self.end, 3), "box": self.box.to_list()}
        if self.tracklet is not None:
            row["track"] = {
                "id": self.tracklet.track_id,
                "piece": self.tracklet.piece,
                "boxes": len(self.tracklet.boxes),
            }
        return row


@dataclass(frozen=True)
class SemanticTokens:
    """The semantic tokens of a video."""

    info: VideoInfo
    scene: tuple[SemanticToken, ...]
    action: tuple[SemanticToken, ...]
    object: tuple[SemanticToken, ...]
    dropped_tracklets: int
    """Tracklets dropped as shorter than ``L_min``."""
    split_tracks: int
    """Times a track was split at ``L_max``."""
    cuts: int
    """Frames where the motion source saw a cut (tracks ended there)."""

    def all(self) -> list[SemanticToken]:
        """Every token: scene, then action, then object tokens."""
        return [*self.scene, *self.action, *self.object]

    def counts(self) -> dict[str, int]:
        return {"scene": len(self.scene), "action": len(self.action), "object": len(self.object)}


def _uniform_times(count: int, duration: float) -> list[float]:
    """Centres of ``count`` equal parts of ``[0, duration)``."""
    return [(i + 0.5) * duration / count for i in range(count)]


def _rgb(decoded: DecodedFrame, width: int, height: int) -> np.ndarray:
    """The frame upright, ``width`` x ``height`` (upright), RGB."""
    turns = decoded.rotation // 90
    coded_width, coded_height = (height, width) if turns % 2 else (width, height)
    image = decoded.frame.reformat(width=coded_width, height=coded_height, format="rgb24").to_ndarray()
    return np.ascontiguousarray(np.rot90(image, k=turns)) if turns else image


def _grown(box: Box, margin: float) -> Box:
    dx, dy = box.width * margin, box.height * margin
    return Box(box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy)


def _scaled_tracklet(tracklet: Tracklet, factor: float) -> Tracklet:
    return Tracklet(
        tracklet.track_id,
        tracklet.piece,
        tracklet.frames,
        tracklet.times,
        tuple(box.scaled(factor) for box in tracklet.boxes),
    )


class _Decomposer:
    """The state of one pass: frames to sample, the motion source, the tracker, the frame buffer."""

    def __init__(
        self, config: SemanticConfig, info: VideoInfo, rotation: int, motion: MotionSource, regions: RegionSource
    ):
        self.config = config
        self.info = info
        self.motion = motion
        self.regions = regions
        self.width, self.height = (info.height, info.width) if rotation % 180 else (info.width, info.height)
        self.token_size = self._size(min(config.token_width, self.width))
        self.analysis_size = self._size(min(config.analysis_width, self.token_size[0]))
        self.to_video = self.width / self.analysis_size[0]
        self.to_token = self.token_size[0] / self.analysis_size[0]
        self.analysis_fps = min(config.analysis_fps, float(info.fps))
        self.tracker = Tracker(config.tracker, self.analysis_fps, math.hypot(*self.analysis_size))
        self.buffer: deque[tuple[int, np.ndarray]] = deque(
            maxlen=self.tracker.max_frames + config.tracker.max_missed + _TRACK_BUFFER_SLACK
        )
        duration = info.duration_sec or 0.0
        self.scene_times = deque(_uniform_times(config.scene_tokens, duration)) if duration else deque()
        self.key_times = deque(_uniform_times(config.object_keyframes, duration)) if duration else deque()
        self.next_analysis = 0.0
        self.analysed = 0
        self.cuts = 0
        self.scene: list[SemanticToken] = []
        self.action: list[SemanticToken] = []
        self.object: list[SemanticToken] = []

    def _size(self, width: int) -> tuple[int, int]:
        height = max(2, round(self.height * width / self.width))
        return int(width), int(height)

    def _whole(self) -> Box:
        return Box(0.0, 0.0, float(self.width), float(self.height))

    def frame(self, decoded: DecodedFrame) -> None:
        token_frame = None
        if self.scene_times and decoded.time >= self.scene_times[0]:
            self.scene_times.popleft()
            token_frame = _rgb(decoded, *self.token_size)
            self.scene.append(SemanticToken("scene", decoded.time, decoded.time, self._whole(), token_frame))
        if self.key_times and decoded.time >= self.key_times[0]:
            self.key_times.popleft()
            token_frame = token_frame if token_frame is not None else _rgb(decoded, *self.token_size)
            self._objects(token_frame, decoded.time)
        if decoded.time + 1e-9 >= self.next_analysis:
            self.next_analysis = decoded.time + 1.0 / self.analysis_fps
            token_frame = token_frame if token_frame is not None else _rgb(decoded, *self.token_size)
            self._analyse(token_frame, decoded.time)

    def _objects(self, image: np.ndarray, time: float) -> None:
        scale = self.width / image.shape[1]
        for box in self.regions.propose(image)[: self.config.max_objects_per_keyframe]:
            crop = _grown(box, self.config.crop_margin).clipped(image.shape[1], image.shape[0]).crop(image)
            self.object.append(SemanticToken("object", time, time, box.scaled(scale), crop))

    def _analyse(self, token_frame: np.ndarray, time: float) -> None:
        frame_number = self.analysed
        self.analysed += 1
        small = cv2.resize(token_frame, self.analysis_size, interpolation=cv2.INTER_AREA)
        self.buffer.append((frame_number, token_frame))
        boxes = self.motion.propose(small)
        if boxes is None:
            self.cuts += 1
        for tracklet in self.tracker.update(frame_number, time, boxes):
            self._action(tracklet)

    def _action(self, tracklet: Tracklet) -> None:
        middle = tracklet.frames[len(tracklet.frames) // 2]
        frames = dict(self.buffer)
        image = frames.get(middle)
        if image is None:  # cannot happen while the buffer spans L_max + max_missed frames
            raise AssertionError(f"frame {middle} of tracklet {tracklet.track_id} left the buffer")
        region = _grown(tracklet.union.scaled(self.to_token), self.config.crop_margin)
        crop = region.clipped(image.shape[1], image.shape[0]).crop(image)
        in_video = _scaled_tracklet(tracklet, self.to_video)
        self.action.append(SemanticToken("action", tracklet.start, tracklet.end, in_video.union, crop, in_video))

    def finish(self) -> None:
        for tracklet in self.tracker.finish():
            self._action(tracklet)


def semantic_tokens(
    path: str | Path,
    config: SemanticConfig | None = None,
    *,
    motion: MotionSource | None = None,
    regions: RegionSource | None = None,
) -> SemanticTokens:
    """Decompose a video into scene, action and object tokens in one decode pass.

    Args:
        path: the video file.
        config: token counts, analysis rate and size, proposal and tracking settings.
        motion: a motion proposal source (any object with ``reset()`` and ``propose(frame)``, e.g. a
            wrapper around a segmentation model); ``config.motion_source`` when omitted.
        regions: a region source (``propose(frame)``); ``config.region_source`` when omitted.

    Returns:
        :class:`SemanticTokens`, action tokens in the order their tracklets ended.

    Raises:
        VideoError: the file cannot be decoded.
        ConfigError: an unknown source name.

    Example:
        >>> from salova.video import sample_video_path
        >>> from salova.video.tokens import semantic_tokens
        >>> tokens = semantic_tokens(sample_video_path("bikes"))  # doctest: +SKIP
        >>> tokens.counts()  # doctest: +SKIP
        {'scene': 16, 'action': 20, 'object': 31}
    """
    config = config or SemanticConfig()
    motion = motion or build_motion_source(config.motion_source, config.motion)
    regions = regions or build_region_source(config.region_source, config.saliency)
    motion.reset()
    with VideoDecoder(path) as decoder:
        if not decoder.info.duration_sec:
            raise VideoDecodeError(decoder.path, "semantic tokens need the video's duration, which the container lacks")
        state = None
        for decoded in decoder:
            if state is None:  # the first frame tells the rotation, hence the upright size
                state = _Decomposer(config, decoder.info, decoded.rotation, motion, regions)
            state.frame(decoded)
        state.finish()
    return SemanticTokens(
        info=decoder.info,
        scene=tuple(state.scene),
        action=tuple(state.action),
        object=tuple(state.object),
        dropped_tracklets=state.tracker.dropped,
        split_tracks=state.tracker.splits,
        cuts=state.cuts,
    )


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 0.618033988749895) % 1.0  # golden-ratio hues: neighbours differ
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 1.0)
    return round(r * 255), round(g * 255), round(b * 255)


def draw_tracklets(
    path: str | Path,
    tokens: SemanticTokens,
    *,
    frames: int = 6,
    columns: int = 3,
    tile_width: int = 480,
    crop_height: int = 96,
) -> np.ndarray:
    """Draw the action tracklets on ``frames`` frames sampled uniformly over the video.

    On each frame, every tracklet alive at that time shows its box there (solid, labelled with the
    track and piece), the path of its box centre so far, and the union of all its boxes (thin): the
    region its action token crops. Below the frames, a strip shows every action token's crop
    (``crop_height`` pixels high; 0 leaves it out).

    Returns:
        An RGB ``uint8`` image (a grid of ``columns`` tiles ``tile_width`` wide, then the crops).

    Raises:
        VideoError: the file cannot be decoded.
    """
    if frames < 1 or columns < 1:
        raise ValueError(f"frames and columns must be >= 1, got {frames} and {columns}")
    times = deque(_uniform_times(frames, tokens.info.duration_sec or 0.0))
    tiles: list[np.ndarray] = []
    scale = tile_width / tokens.scene[0].box.width if tokens.scene else tile_width / tokens.info.width
    with VideoDecoder(path) as decoder:
        for decoded in decoder:
            if not times or decoded.time < times[0]:
                continue
            times.popleft()
            width = tile_width
            height = round((tokens.info.height if not decoded.rotation % 180 else tokens.info.width) * scale)
            tile = np.ascontiguousarray(_rgb(decoded, width, height))
            _draw_tile(tile, tokens, decoded.time, scale)
            tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    if crop_height and tokens.action:
        rows += _crop_strip(tokens.action, rows[0].shape[1], crop_height)
    return np.vstack(rows)


def _crop_strip(actions: tuple[SemanticToken, ...], width: int, height: int) -> list[np.ndarray]:
    """Rows of the action tokens' crops, each scaled to ``height`` and labelled, wrapped at ``width``."""
    rows: list[np.ndarray] = []
    row = np.zeros((height + 4, width, 3), np.uint8)
    x = 0
    for token in actions:
        crop = token.image
        scaled_width = max(1, min(width, round(crop.shape[1] * height / crop.shape[0])))
        tile = cv2.resize(crop, (scaled_width, height), interpolation=cv2.INTER_AREA)
        if x + scaled_width > width:
            rows.append(row)
            row, x = np.zeros_like(row), 0
        row[2 : 2 + height, x : x + scaled_width] = tile
        colour = _colour(token.tracklet.track_id)
        cv2.rectangle(row, (x, 2), (x + scaled_width - 1, height + 1), colour, 2, _LINE)
        cv2.putText(row, f"#{token.tracklet.track_id}", (x + 3, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, _LINE)
        x += scaled_width + 4
    rows.append(row)
    return rows


def _draw_tile(tile: np.ndarray, tokens: SemanticTokens, time: float, scale: float) -> None:
    def point(x: float, y: float) -> tuple[int, int]:
        return round(x * scale), round(y * scale)

    alive = 0
    for token in tokens.action:
        tracklet = token.tracklet
        box = tracklet.box_at(time)
        if box is None:
            continue
        alive += 1
        colour = _colour(tracklet.track_id)
        union = tracklet.union
        cv2.rectangle(tile, point(union.x0, union.y0), point(union.x1, union.y1), colour, 1, _LINE)
        path = [point(*b.center) for t, b in zip(tracklet.times, tracklet.boxes, strict=True) if t <= time]
        if len(path) > 1:
            cv2.polylines(tile, [np.array(path, np.int32)], False, colour, 2, _LINE)
        cv2.rectangle(tile, point(box.x0, box.y0), point(box.x1, box.y1), colour, 2, _LINE)
        label = f"#{tracklet.track_id}" + (f".{tracklet.piece}" if tracklet.piece else "")
        origin = point(box.x0, box.y0)
        cv2.putText(
            tile, label, (origin[0] + 2, max(12, origin[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, _LINE
        )
    caption = f"{time:5.2f} s  {alive} tracklet(s)"
    cv2.rectangle(tile, (0, 0), (8 * len(caption) + 8, 20), (0, 0, 0), -1)
    cv2.putText(tile, caption, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, _LINE)
