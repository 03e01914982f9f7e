"""Class-agnostic region proposals from classical vision (OpenCV), for SEAL's semantic tokens.

SEAL (arXiv 2412.01798) takes its action tracklets from SAM-2 and its object regions from SAM. No
such model is available here, so the proposal source is pluggable (:data:`MOTION_SOURCES`,
:data:`REGION_SOURCES`; any object with the same methods works) and the defaults are classical:

* ``motion`` (:class:`CompensatedDifference`): moving regions after cancelling the camera's own
  motion. Corners are tracked from the previous frame (pyramidal Lucas-Kanade), a similarity
  transform is fitted to them with RANSAC, the previous frame is warped onto the current one, and
  what still differs is thresholded, cleaned with morphology and split into connected components.
  A frame that cannot be aligned, or where most pixels change, is a cut: no proposals, and the
  tracker starts over.
* ``mog2`` (:class:`BackgroundSubtraction`): OpenCV's Gaussian-mixture background model, for fixed
  cameras.
* ``saliency`` (:class:`SpectralResidualRegions`): static regions that stand out, from the
  spectral-residual saliency map (Hou and Zhang, CVPR 2007), thresholded at a multiple of its mean.

Frames are RGB ``uint8`` arrays; boxes are in the pixel coordinates of the frame given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from salova.errors import ConfigError

__all__ = [
    "Box",
    "MotionConfig",
    "SaliencyConfig",
    "MotionSource",
    "RegionSource",
    "CompensatedDifference",
    "BackgroundSubtraction",
    "SpectralResidualRegions",
    "MOTION_SOURCES",
    "REGION_SOURCES",
    "build_motion_source",
    "build_region_source",
    "components_to_boxes",
    "non_max_suppression",
]


@dataclass(frozen=True)
class Box:
    """An axis-aligned box ``[x0, x1) x [y0, y1)`` in pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return max(0.0, self.x1 - self.x0)

    @property
    def height(self) -> float:
        return max(0.0, self.y1 - self.y0)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0)

    def iou(self, other: Box) -> float:
        """Intersection over union (0 for disjoint or empty boxes)."""
        width = min(self.x1, other.x1) - max(self.x0, other.x0)
        height = min(self.y1, other.y1) - max(self.y0, other.y0)
        if width <= 0 or height <= 0:
            return 0.0
        inter = width * height
        return inter / (self.area + other.area - inter)

    def union(self, other: Box) -> Box:
        """The smallest box holding both."""
        return Box(min(self.x0, other.x0), min(self.y0, other.y0), max(self.x1, other.x1), max(self.y1, other.y1))

    def scaled(self, factor: float) -> Box:
        """The box in a frame ``factor`` times larger."""
        return Box(self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor)

    def clipped(self, width: int, height: int) -> Box:
        return Box(max(0.0, self.x0), max(0.0, self.y0), min(float(width), self.x1), min(float(height), self.y1))

    def crop(self, frame: np.ndarray) -> np.ndarray:
        """The pixels of ``frame`` inside the box (whole pixels, at least one)."""
        height, width = frame.shape[:2]
        x0, y0 = int(np.floor(max(0.0, self.x0))), int(np.floor(max(0.0, self.y0)))
        x1 = max(x0 + 1, int(np.ceil(min(float(width), self.x1))))
        y1 = max(y0 + 1, int(np.ceil(min(float(height), self.y1))))
        return np.ascontiguousarray(frame[y0:y1, x0:x1])

    def to_list(self) -> list[float]:
        return [round(self.x0, 1), round(self.y0, 1), round(self.x1, 1), round(self.y1, 1)]


def components_to_boxes(mask: np.ndarray, min_area: float, max_area: float) -> list[Box]:
    """Boxes of the connected components of a binary mask whose box area (a share of the frame) lies
    in ``[min_area, max_area]``, largest first."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    frame_area = float(mask.shape[0] * mask.shape[1])
    boxes = []
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label, :4])
        share = w * h / frame_area
        if min_area <= share <= max_area:
            boxes.append(Box(float(x), float(y), float(x + w), float(y + h)))
    return sorted(boxes, key=lambda b: -b.area)


def non_max_suppression(boxes: list[Box], scores: list[float], iou_threshold: float) -> list[int]:
    """Indices of the boxes kept by greedy non-maximum suppression, best score first."""
    kept: list[int] = []
    for index in sorted(range(len(boxes)), key=lambda i: -scores[i]):
        if all(boxes[index].iou(boxes[other]) < iou_threshold for other in kept):
            kept.append(index)
    return kept


@dataclass(frozen=True)
class MotionConfig:
    """Settings of the motion proposal sources (frames as analysed, see ``SemanticConfig.analysis_width``)."""

    blur: int = 5
    """Side of the Gaussian blur applied before comparing frames (odd)."""
    corners: int = 300
    """Most corners tracked to estimate the camera's motion."""
    corner_quality: float = 0.01
    """OpenCV ``goodFeaturesToTrack`` quality level."""
    corner_spacing: int = 8
    """Least distance between tracked corners (pixels)."""
    ransac_pixels: float = 2.0
    """RANSAC inlier threshold of the camera-motion fit (pixels)."""
    min_inliers: int = 12
    """Fewer inliers mean the frames cannot be aligned: a cut."""
    difference_threshold: int = 25
    """Grey-level change (0-255) that counts as motion after alignment."""
    border: int = 8
    """Pixels along the warped frame's edge ignored (interpolation artefacts)."""
    open_size: int = 3
    """Opening kernel side: removes isolated noise pixels."""
    close_size: int = 15
    """Closing kernel side: joins the parts of one moving thing (edges of a walking person)."""
    min_area: float = 0.004
    """Smallest box kept, as a share of the frame."""
    max_area: float = 0.6
    """Largest box kept, as a share of the frame (larger ones are misalignment)."""
    cut_fraction: float = 0.35
    """A frame where more than this share of pixels changes is a cut."""
    background_history: int = 120
    """``mog2``: frames of history of the background model."""
    background_threshold: float = 32.0
    """``mog2``: variance threshold of the background model."""

    def __post_init__(self) -> None:
        for name in ("blur", "open_size", "close_size"):
            value = getattr(self, name)
            if value < 1 or value % 2 == 0:
                raise ConfigError(f"motion {name} must be an odd number >= 1, got {value!r}")
        if not 0.0 <= self.min_area < self.max_area <= 1.0:
            raise ConfigError(
                f"motion areas must satisfy 0 <= min_area < max_area <= 1, got {self.min_area}, {self.max_area}"
            )
        if not 0.0 < self.cut_fraction <= 1.0:
            raise ConfigError(f"motion cut_fraction must be in (0, 1], got {self.cut_fraction!r}")
        for name in ("corners", "min_inliers", "difference_threshold", "background_history"):
            if getattr(self, name) < 1:
                raise ConfigError(f"motion {name} must be >= 1, got {getattr(self, name)!r}")


class MotionSource(Protocol):
    """Proposes the boxes of moving things, frame after frame."""

    def reset(self) -> None:
        """Forget the past (a new video)."""

    def propose(self, frame: np.ndarray) -> list[Box] | None:
        """Boxes of the moving regions of the next frame, or ``None`` at a cut (tracks must end)."""


class RegionSource(Protocol):
    """Proposes class-agnostic regions of a single frame."""

    def propose(self, frame: np.ndarray) -> list[Box]:
        """Boxes of the frame's salient regions, best first."""


class CompensatedDifference:
    """Moving regions after compensating the camera's motion (the default ``motion`` source)."""

    def __init__(self, config: MotionConfig | None = None):
        self.config = config or MotionConfig()
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.open_size,) * 2)
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.close_size,) * 2)
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        return cv2.GaussianBlur(grey, (self.config.blur,) * 2, 0)

    def _camera_motion(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
        config = self.config
        corners = cv2.goodFeaturesToTrack(previous, config.corners, config.corner_quality, config.corner_spacing)
        if corners is None or len(corners) < config.min_inliers:
            # A frame without texture: assume a still camera.
            return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None)
        found = status.ravel() == 1
        if int(found.sum()) < config.min_inliers:
            return None
        matrix, inliers = cv2.estimateAffinePartial2D(
            corners[found], moved[found], method=cv2.RANSAC, ransacReprojThreshold=config.ransac_pixels
        )
        if matrix is None or int(inliers.sum()) < config.min_inliers:
            return None
        return matrix

    def propose(self, frame: np.ndarray) -> list[Box] | None:
        config = self.config
        current = self._grey(frame)
        previous, self._previous = self._previous, current
        if previous is None:
            return []
        matrix = self._camera_motion(previous, current)
        if matrix is None:
            return None
        height, width = current.shape
        warped = cv2.warpAffine(previous, matrix, (width, height), flags=cv2.INTER_LINEAR)
        valid = cv2.warpAffine(np.full_like(previous, 255), matrix, (width, height), flags=cv2.INTER_NEAREST)
        valid = cv2.erode(valid, np.ones((2 * config.border + 1,) * 2, np.uint8))
        changed = (cv2.absdiff(current, warped) > config.difference_threshold) & (valid > 0)
        if changed.mean() > config.cut_fraction:
            return None
        mask = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        return components_to_boxes(mask, config.min_area, config.max_area)


class BackgroundSubtraction:
    """Moving regions from OpenCV's MOG2 background model (``mog2``; fixed cameras)."""

    def __init__(self, config: MotionConfig | None = None):
        self.config = config or MotionConfig()
        self._open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.open_size,) * 2)
        self._close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (self.config.close_size,) * 2)
        self.reset()

    def reset(self) -> None:
        self._model = cv2.createBackgroundSubtractorMOG2(
            history=self.config.background_history,
            varThreshold=self.config.background_threshold,
            detectShadows=False,
        )
        self._frames = 0

    def propose(self, frame: np.ndarray) -> list[Box] | None:
        foreground = self._model.apply(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self._frames += 1
        if self._frames == 1:
            return []
        changed = foreground > 0
        if changed.mean() > self.config.cut_fraction:
            self.reset()
            return None
        mask = cv2.morphologyEx(changed.astype(np.uint8), cv2.MORPH_OPEN, self._open)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        return components_to_boxes(mask, self.config.min_area, self.config.max_area)


@dataclass(frozen=True)
class SaliencyConfig:
    """Settings of the spectral-residual region source."""

    map_width: int = 64
    """Width the saliency map is computed at (Hou and Zhang: 64)."""
    average_size: int = 3
    """Side of the box filter that estimates the average log spectrum (Hou and Zhang: 3)."""
    smooth_sigma: float = 2.5
    """Gaussian smoothing of the saliency map, in map pixels."""
    threshold: float = 3.0
    """A pixel is salient above this multiple of the map's mean (Hou and Zhang: 3)."""
    close_size: int = 5
    """Closing kernel side (map pixels) joining the parts of one region."""
    min_area: float = 0.005
    """Smallest region kept, as a share of the frame."""
    max_area: float = 0.5
    """Largest region kept, as a share of the frame."""
    nms_iou: float = 0.5
    """Regions overlapping a better one this much are dropped."""

    def __post_init__(self) -> None:
        if self.map_width < 16 or self.average_size < 1 or self.close_size < 1:
            raise ConfigError("saliency map_width must be >= 16 and average_size, close_size >= 1")
        if not 0.0 <= self.min_area < self.max_area <= 1.0:
            raise ConfigError(
                f"saliency areas must satisfy 0 <= min_area < max_area <= 1, got {self.min_area}, {self.max_area}"
            )
        if self.threshold <= 0 or self.smooth_sigma <= 0:
            raise ConfigError("saliency threshold and smooth_sigma must be > 0")


class SpectralResidualRegions:
    """Salient regions of a frame from its spectral residual (the default ``saliency`` region source)."""

    def __init__(self, config: SaliencyConfig | None = None):
        self.config = config or SaliencyConfig()

    def saliency(self, frame: np.ndarray) -> np.ndarray:
        """The saliency map at the frame's size, ``float32`` in ``[0, 1]``."""
        config = self.config
        height, width = frame.shape[:2]
        map_height = max(8, round(config.map_width * height / width))
        grey = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), (config.map_width, map_height), cv2.INTER_AREA)
        spectrum = np.fft.fft2(grey.astype(np.float64))
        log_amplitude = np.log(np.abs(spectrum) + 1e-9)
        residual = log_amplitude - cv2.blur(log_amplitude, (config.average_size,) * 2)
        result = np.abs(np.fft.ifft2(np.exp(residual + 1j * np.angle(spectrum)))) ** 2
        result = cv2.GaussianBlur(result.astype(np.float32), (0, 0), config.smooth_sigma)
        result /= max(float(result.max()), 1e-12)
        return cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)

    def propose(self, frame: np.ndarray) -> list[Box]:
        config = self.config
        saliency = self.saliency(frame)
        mask = (saliency > config.threshold * float(saliency.mean())).astype(np.uint8)
        scale = frame.shape[1] / config.map_width
        side = max(1, round(config.close_size * scale)) | 1
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
        boxes = components_to_boxes(mask, config.min_area, config.max_area)
        scores = [float(box.crop(saliency).mean()) for box in boxes]
        return [boxes[i] for i in non_max_suppression(boxes, scores, config.nms_iou)]


MOTION_SOURCES: dict[str, Callable[[MotionConfig], MotionSource]] = {
    "motion": CompensatedDifference,
    "mog2": BackgroundSubtraction,
}
"""Name -> factory of the proposal sources of action tracklets."""
REGION_SOURCES: dict[str, Callable[[SaliencyConfig], RegionSource]] = {"saliency": SpectralResidualRegions}
"""Name -> factory of the region sources of object tokens."""


def build_motion_source(name: str, config: MotionConfig | None = None) -> MotionSource:
    """The motion source registered as ``name``.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in MOTION_SOURCES:
        raise ConfigError(f"Unknown motion source {name!r}; choose from {sorted(MOTION_SOURCES)}")
    return MOTION_SOURCES[name](config or MotionConfig())


def build_region_source(name: str, config: SaliencyConfig | None = None) -> RegionSource:
    """The region source registered as ``name``.

    Raises:
        ConfigError: an unknown name.
    """
    if name not in REGION_SOURCES:
        raise ConfigError(f"Unknown region source {name!r}; choose from {sorted(REGION_SOURCES)}")
    return REGION_SOURCES[name](config or SaliencyConfig())
