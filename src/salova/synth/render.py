"""Drawing the frames of a synthetic scene with NumPy and OpenCV.

A scene's background and text never change, so they are drawn once into a static layer;
each frame copies that layer into a reused buffer and draws the objects at their
interpolated positions with sub-pixel (fixed-point) anti-aliased polygons, so motion is
smooth and nothing inside a scene looks like a cut.

Frames are RGB ``uint8`` arrays of shape ``(height, width, 3)``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import cv2
import numpy as np

from salova.synth.schema import SynthBackground, SynthObject, SynthScene
from salova.synth.vocab import COLORS, SIZES

__all__ = [
    "TEXT_BAND_TOP",
    "safe_square",
    "draw_background",
    "content_score",
    "background_contrast",
    "stands_out",
    "render_scene_frames",
    "render_frame",
]

TEXT_BAND_TOP = 0.78
"""Top of the band (share of the safe square) that holds the text plate; objects stay above it."""
_TEXT_HEIGHT = 0.09
"""Cap height of on-screen text as a share of the safe square's side."""
_TEXT_MAX_WIDTH = 0.9
"""Widest text line as a share of the safe square's side."""
_TEXT_CENTER_Y = 0.885
"""Vertical centre of the text plate in the safe square."""
_TEXT_PADDING = 0.025
"""Plate margin around the text, as a share of the side."""
_TEXT_FONT = cv2.FONT_HERSHEY_DUPLEX
_PATTERN_CELLS = 6
"""Stripe periods / checker cells per frame height."""
_DOT_SPACING = 8
"""Dots per frame height."""
_SHADE_DARKEN = 0.7
"""The pattern's second tone of a bright colour: the colour times this."""
_SHADE_LIGHTEN = 0.3
"""The pattern's second tone of a dark colour: this share of the way to white."""
_DARK_VALUE = 100
"""A colour whose largest channel is below this gets a lighter (not darker) second tone."""
_MIN_OBJECT_CONTRAST = 80.0
"""Least RGB distance between an object's colour and either tone of its background."""
_OUTLINE_SHARE = 0.009
"""Object outline thickness as a share of the safe square's side."""
_ANALYSIS_SIZE = (160, 120)
"""Frame size at which background contrast is measured (resolution-independent patterns)."""
_SHIFT = 4
"""Fixed-point bits of OpenCV's drawing coordinates (1/16 px precision)."""


def safe_square(width: int, height: int) -> tuple[float, float, float]:
    """Return ``(x0, y0, side)`` of the centred square that holds all objects and text."""
    side = float(min(width, height))
    return (width - side) / 2.0, (height - side) / 2.0, side


def _shade(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    if max(rgb) < _DARK_VALUE:
        return tuple(round(c + (255 - c) * _SHADE_LIGHTEN) for c in rgb)
    return tuple(round(c * _SHADE_DARKEN) for c in rgb)


@functools.lru_cache(maxsize=128)
def _background_cached(background: SynthBackground, width: int, height: int) -> np.ndarray:
    base = COLORS[background.color]
    image = np.empty((height, width, 3), np.uint8)
    image[:] = base
    period = height / _PATTERN_CELLS
    ys, xs = np.mgrid[0:height, 0:width]
    if background.pattern == "horizontal stripes":
        mask = (ys // (period / 2)) % 2 == 1
    elif background.pattern == "vertical stripes":
        mask = (xs // (period / 2)) % 2 == 1
    elif background.pattern == "checkered":
        mask = ((ys // period) + (xs // period)) % 2 == 1
    elif background.pattern == "dotted":
        spacing = height / _DOT_SPACING
        dy = (ys % spacing) - spacing / 2
        dx = (xs % spacing) - spacing / 2
        mask = dx * dx + dy * dy <= (spacing * 0.25) ** 2
    else:
        mask = None
    if mask is not None:
        image[mask] = _shade(base)
    image.setflags(write=False)
    return image


def draw_background(background: SynthBackground, width: int, height: int) -> np.ndarray:
    """Draw a full-frame background.

    Args:
        background: colour and pattern.
        width: frame width in pixels.
        height: frame height in pixels.

    Returns:
        A read-only RGB array of shape ``(height, width, 3)`` (cached; copy it to draw on it).

    Example:
        >>> from salova.synth import SynthBackground
        >>> draw_background(SynthBackground("blue", "plain"), 32, 24)[0, 0].tolist()
        [30, 70, 220]
    """
    return _background_cached(background, width, height)


def content_score(left: np.ndarray, right: np.ndarray) -> float:
    """PySceneDetect's ``content_val`` between two RGB frames: mean |dH| + |dS| + |dV|, over 3.

    Args:
        left: RGB frame.
        right: RGB frame of the same shape.

    Returns:
        The mean per-pixel HSV change, in OpenCV's 8-bit HSV units.
    """
    a = cv2.cvtColor(left, cv2.COLOR_RGB2HSV).astype(np.int16)
    b = cv2.cvtColor(right, cv2.COLOR_RGB2HSV).astype(np.int16)
    return float(np.abs(a - b).mean())


@functools.lru_cache(maxsize=8192)
def background_contrast(first: SynthBackground, second: SynthBackground) -> float:
    """How strongly a hard cut from ``first`` to ``second`` registers with a content detector.

    Args:
        first: background before the cut.
        second: background after the cut.

    Returns:
        :func:`content_score` of the two backgrounds at a fixed analysis size (patterns scale
        with the frame, so the score hardly depends on the video's resolution).
    """
    width, height = _ANALYSIS_SIZE
    return content_score(draw_background(first, width, height), draw_background(second, width, height))


def stands_out(color: str, background: SynthBackground) -> bool:
    """Whether an object of ``color`` is clearly visible on ``background`` (both its tones).

    Example:
        >>> from salova.synth import SynthBackground
        >>> stands_out("gray", SynthBackground("white", "checkered"))
        False
    """
    rgb = np.asarray(COLORS[color], np.float64)
    base = COLORS[background.color]
    tones = [base] if background.pattern == "plain" else [base, _shade(base)]
    return all(np.linalg.norm(rgb - np.asarray(t, np.float64)) >= _MIN_OBJECT_CONTRAST for t in tones)


@functools.cache
def _unit_outline(shape: str) -> np.ndarray:
    """Polygon of a shape inside the unit disc, centred on the origin (y points down)."""
    if shape == "square":
        s = 0.82
        points = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif shape == "diamond":
        points = [(0, -1), (1, 0), (0, 1), (-1, 0)]
    elif shape == "triangle":
        angles = np.deg2rad([-90, 30, 150])
        points = [(np.cos(a), np.sin(a) + 0.18) for a in angles]
    elif shape == "star":
        angles = np.deg2rad(np.arange(10) * 36 - 90)
        radii = np.where(np.arange(10) % 2 == 0, 1.0, 0.45)
        points = list(zip(radii * np.cos(angles), radii * np.sin(angles) + 0.08, strict=True))
    elif shape == "hexagon":
        angles = np.deg2rad(np.arange(6) * 60)
        points = list(zip(np.cos(angles), np.sin(angles), strict=True))
    elif shape == "cross":
        a, b = 0.3, 0.9
        points = [
            (-a, -b),
            (a, -b),
            (a, -a),
            (b, -a),
            (b, a),
            (a, a),
            (a, b),
            (-a, b),
            (-a, a),
            (-b, a),
            (-b, -a),
            (-a, -a),
        ]
    elif shape == "heart":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        points = list(zip(x / 17.0, (y + 2.5) / 17.0, strict=True))
    elif shape == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        points = list(zip(np.cos(t), np.sin(t), strict=True))
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return np.asarray(points, dtype=np.float64)


def _outline_color(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (255, 255, 255) if luma < _DARK_VALUE else (0, 0, 0)


def _draw_object(frame: np.ndarray, obj: SynthObject, t: float, square: tuple[float, float, float]) -> None:
    x0, y0, side = square
    cx = x0 + side * (obj.start[0] + (obj.end[0] - obj.start[0]) * t)
    cy = y0 + side * (obj.start[1] + (obj.end[1] - obj.start[1]) * t)
    radius = side * SIZES[obj.size] / 2.0
    scale = 1 << _SHIFT
    points = np.round((_unit_outline(obj.shape) * radius + (cx, cy)) * scale).astype(np.int32)
    color = COLORS[obj.color]
    cv2.fillPoly(frame, [points], color, lineType=cv2.LINE_AA, shift=_SHIFT)
    thickness = max(1, round(side * _OUTLINE_SHARE))
    cv2.polylines(frame, [points], True, _outline_color(color), thickness, cv2.LINE_AA, shift=_SHIFT)


def _draw_text(frame: np.ndarray, text: str, square: tuple[float, float, float]) -> None:
    x0, y0, side = square
    thickness = max(1, round(side * _TEXT_HEIGHT / 9))
    (w1, h1), _ = cv2.getTextSize(text, _TEXT_FONT, 1.0, thickness)
    scale = min(side * _TEXT_HEIGHT / h1, side * _TEXT_MAX_WIDTH / w1)
    (w, h), baseline = cv2.getTextSize(text, _TEXT_FONT, scale, thickness)
    cx, cy = x0 + side / 2.0, y0 + side * _TEXT_CENTER_Y
    pad = side * _TEXT_PADDING
    top_left = (round(cx - w / 2 - pad), round(cy - h / 2 - pad))
    bottom_right = (round(cx + w / 2 + pad), round(cy + h / 2 + pad))
    cv2.rectangle(frame, top_left, bottom_right, (255, 255, 255), thickness=-1)
    cv2.rectangle(frame, top_left, bottom_right, (0, 0, 0), thickness=max(1, thickness // 2))
    origin = (round(cx - w / 2), round(cy + h / 2))
    cv2.putText(frame, text, origin, _TEXT_FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)


def _static_layer(scene: SynthScene, width: int, height: int) -> np.ndarray:
    layer = draw_background(scene.background, width, height).copy()
    if scene.text:
        _draw_text(layer, scene.text, safe_square(width, height))
    return layer


def render_scene_frames(
    scene: SynthScene, width: int, height: int, *, out: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Yield the frames of a scene, one per frame of ``[start_frame, end_frame)``.

    Args:
        scene: the scene to draw.
        width: frame width in pixels.
        height: frame height in pixels.
        out: optional ``(height, width, 3)`` uint8 buffer to draw into.

    Returns:
        An iterator over RGB frames. The same buffer is yielded each time (overwritten by
        the next frame): copy a frame to keep it.

    Example:
        >>> frames = render_scene_frames(scene, 320, 240)  # doctest: +SKIP
        >>> first = next(frames).copy()  # doctest: +SKIP
    """
    frame = np.empty((height, width, 3), np.uint8) if out is None else out
    if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
        raise ValueError(f"out must be a ({height}, {width}, 3) uint8 array, got {frame.shape} {frame.dtype}")
    layer = _static_layer(scene, width, height)
    square = safe_square(width, height)
    last = max(1, scene.num_frames - 1)
    for i in range(scene.num_frames):
        np.copyto(frame, layer)
        for obj in scene.objects:
            _draw_object(frame, obj, i / last, square)
        yield frame


def render_frame(scene: SynthScene, frame_index: int, width: int, height: int) -> np.ndarray:
    """Draw one frame of a scene.

    Args:
        scene: the scene.
        frame_index: absolute frame number inside ``[scene.start_frame, scene.end_frame)``.
        width: frame width in pixels.
        height: frame height in pixels.

    Returns:
        A new RGB array of shape ``(height, width, 3)``.

    Raises:
        IndexError: the frame is outside the scene.
    """
    if not scene.start_frame <= frame_index < scene.end_frame:
        raise IndexError(f"frame {frame_index} is outside scene {scene.index} [{scene.start_frame}, {scene.end_frame})")
    frame = _static_layer(scene, width, height)
    t = (frame_index - scene.start_frame) / max(1, scene.num_frames - 1)
    square = safe_square(width, height)
    for obj in scene.objects:
        _draw_object(frame, obj, t, square)
    return frame
