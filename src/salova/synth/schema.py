"""The records of the synthetic world: its config, scenes, questions, videos and corpora.

All records are frozen dataclasses with ``to_dict``/``from_dict``; ``from_dict`` checks
the structure and raises :class:`~salova.errors.DataError` on a malformed record, so a
sidecar that was edited by hand or cut short is caught when it is read.

Object coordinates are given in the *safe square*: the centred square of side
``min(width, height)``, with (0, 0) its top-left corner and (1, 1) its bottom-right. All
objects and text stay inside it, so a centre crop to a square keeps everything visible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from salova.errors import ConfigError, DataError
from salova.synth.vocab import COLORS, MOTIONS, PATTERNS, SHAPES, SIZES, position_word

__all__ = [
    "SYNTH_FORMAT",
    "SYNTH_FORMAT_VERSION",
    "OPTION_LETTERS",
    "MIN_SCENE_FRAMES",
    "SynthConfig",
    "SynthBackground",
    "SynthObject",
    "SynthScene",
    "SynthQuestion",
    "SynthVideo",
    "SynthCorpus",
]

SYNTH_FORMAT = "salova-synth"
"""Format tag of manifests and sidecars."""
SYNTH_FORMAT_VERSION = 1
"""Bumped whenever the same config would generate different content."""
OPTION_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")
"""Letters of the multiple-choice options."""
MIN_SCENE_FRAMES = 16
"""PySceneDetect's default ``min_scene_len`` is 15 frames: a shorter scene would be merged."""
MAX_FPS = 60.0
"""Upper bound of ``SynthConfig.fps``."""
MAX_CUT_SCORE = 60.0
"""Upper bound of ``SynthConfig.min_cut_score``: every background still has 20 or more possible
successors at this contrast."""
MIN_FRAME_SIDE = 64
"""Smallest frame side that still draws recognisable objects and readable text."""
MAX_FRAME_SIDE = 4096
"""Largest frame side accepted."""


def _check(ok: bool, name: str, value: Any, expected: str) -> None:
    if not ok:
        raise ConfigError(f"SynthConfig.{name} must be {expected}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic corpus; equal configs give equal corpora."""

    seed: int = 0
    """Seed of the corpus; video ``i`` depends only on ``(seed, i)``."""
    num_videos: int = 1
    """Number of videos."""
    minutes: float = 5.0
    """Length of each video in minutes."""
    fps: float = 8.0
    """Frame rate of the videos. Low rates keep hour-long videos cheap; ingest samples 1 FPS."""
    width: int = 320
    """Frame width in pixels (even, for yuv420p)."""
    height: int = 240
    """Frame height in pixels (even, for yuv420p)."""
    min_scene_sec: float = 6.0
    """Shortest scene in seconds."""
    max_scene_sec: float = 20.0
    """Longest scene in seconds (the last scene may run longer when the video cannot be split)."""
    text_probability: float = 0.35
    """Share of scenes that show a word on screen. No word repeats within a video, so once the
    240-word list is used up (after several hours of video) later scenes show none."""
    questions_per_video: int = 10
    """Multiple-choice questions per video (fewer when a short video has too few scenes)."""
    duplicate_probability: float = 0.0
    """Chance that a scene repeats an earlier, non-adjacent scene as a near-duplicate."""
    max_objects: int = 3
    """Most objects in one scene (scenes with text show at most two)."""
    min_cut_score: float = 30.0
    """Least HSV content change between adjacent backgrounds, in PySceneDetect's ``content_val``
    units (its AdaptiveDetector needs 15 by default); adjacent scenes are drawn to exceed it."""
    crf: int = 23
    """x264 constant rate factor (0 = lossless, 51 = worst)."""
    keyframe_sec: float = 2.0
    """Largest gap between keyframes in seconds; every scene also starts on a keyframe."""

    def __post_init__(self) -> None:
        _check(_is_int(self.seed) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(_is_int(self.num_videos) and self.num_videos >= 1, "num_videos", self.num_videos, "an integer >= 1")
        _check(_is_number(self.fps) and 1.0 <= self.fps <= MAX_FPS, "fps", self.fps, f"in [1, {MAX_FPS:g}]")
        for name in ("width", "height"):
            value = getattr(self, name)
            _check(
                _is_int(value) and MIN_FRAME_SIDE <= value <= MAX_FRAME_SIDE and value % 2 == 0,
                name,
                value,
                f"an even integer in [{MIN_FRAME_SIDE}, {MAX_FRAME_SIDE}]",
            )
        min_scene = MIN_SCENE_FRAMES / self.fps
        _check(
            _is_number(self.min_scene_sec) and self.min_scene_sec * self.fps >= MIN_SCENE_FRAMES,
            "min_scene_sec",
            self.min_scene_sec,
            f">= {min_scene:g} s ({MIN_SCENE_FRAMES} frames at {self.fps:g} fps, below which cuts merge)",
        )
        _check(
            _is_number(self.max_scene_sec) and self.max_scene_sec >= self.min_scene_sec,
            "max_scene_sec",
            self.max_scene_sec,
            f">= min_scene_sec ({self.min_scene_sec:g})",
        )
        _check(
            _is_number(self.minutes) and self.minutes * 60.0 >= self.min_scene_sec,
            "minutes",
            self.minutes,
            f"long enough for one scene (>= {self.min_scene_sec / 60.0:g})",
        )
        for name in ("text_probability", "duplicate_probability"):
            value = getattr(self, name)
            _check(_is_number(value) and 0.0 <= value <= 1.0, name, value, "in [0, 1]")
        _check(
            _is_int(self.questions_per_video) and self.questions_per_video >= 0,
            "questions_per_video",
            self.questions_per_video,
            "an integer >= 0",
        )
        _check(_is_int(self.max_objects) and 1 <= self.max_objects <= 3, "max_objects", self.max_objects, "1, 2 or 3")
        _check(
            _is_number(self.min_cut_score) and 0.0 <= self.min_cut_score <= MAX_CUT_SCORE,
            "min_cut_score",
            self.min_cut_score,
            f"in [0, {MAX_CUT_SCORE:g}]",
        )
        _check(_is_int(self.crf) and 0 <= self.crf <= 51, "crf", self.crf, "an integer in [0, 51]")
        _check(_is_number(self.keyframe_sec) and self.keyframe_sec > 0, "keyframe_sec", self.keyframe_sec, "> 0")

    @property
    def num_frames(self) -> int:
        """Frames per video."""
        return round(self.minutes * 60.0 * self.fps)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Build from ``to_dict`` output; unknown keys raise :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown SynthConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**data)


def _require(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise DataError(f"{where}: missing field {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise DataError(f"{where}: field {key!r} has type {type(value).__name__}, expected {kind}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _choice(value: str, allowed: Any, what: str, where: str) -> str:
    if value not in allowed:
        raise DataError(f"{where}: unknown {what} {value!r}")
    return value


@dataclass(frozen=True)
class SynthBackground:
    """A full-frame background: a colour from ``COLORS`` drawn in a pattern from ``PATTERNS``."""

    color: str
    pattern: str

    def to_dict(self) -> dict[str, Any]:
        return {"color": self.color, "pattern": self.pattern}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "background") -> SynthBackground:
        return cls(
            color=_choice(_require(data, "color", str, where), COLORS, "colour", where),
            pattern=_choice(_require(data, "pattern", str, where), PATTERNS, "pattern", where),
        )


@dataclass(frozen=True)
class SynthObject:
    """One drawn object gliding in a straight line from ``start`` to ``end`` during its scene."""

    shape: str
    color: str
    size: str
    motion: str
    """One of ``MOTIONS``; ``still`` objects have ``start == end``."""
    start: tuple[float, float]
    """Centre (x, y) in safe-square coordinates at the scene's first frame."""
    end: tuple[float, float]
    """Centre (x, y) at the scene's last frame."""

    @property
    def position(self) -> str | None:
        """Grid cell of a still object (see ``POSITIONS``); ``None`` for a moving one."""
        return position_word(*self.start) if self.motion == "still" else None

    def key(self) -> tuple[str, str, str, str, str]:
        """What a viewer can name: shape, colour, size, motion and (if still) grid cell."""
        return (self.shape, self.color, self.size, self.motion, self.position or "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": self.shape,
            "color": self.color,
            "size": self.size,
            "motion": self.motion,
            "position": self.position,
            "start": list(self.start),
            "end": list(self.end),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "object") -> SynthObject:
        points = []
        for key in ("start", "end"):
            point = _require(data, key, list, where)
            if len(point) != 2 or not all(_is_number(v) for v in point):
                raise DataError(f"{where}: {key} must be two numbers, got {point!r}")
            points.append((float(point[0]), float(point[1])))
        return cls(
            shape=_choice(_require(data, "shape", str, where), SHAPES, "shape", where),
            color=_choice(_require(data, "color", str, where), COLORS, "colour", where),
            size=_choice(_require(data, "size", str, where), SIZES, "size", where),
            motion=_choice(_require(data, "motion", str, where), MOTIONS, "motion", where),
            start=points[0],
            end=points[1],
        )


@dataclass(frozen=True)
class SynthScene:
    """One scene: frames ``[start_frame, end_frame)`` between two hard cuts."""

    index: int
    start_frame: int
    end_frame: int
    """Exclusive."""
    start_sec: float
    end_sec: float
    background: SynthBackground
    objects: tuple[SynthObject, ...]
    text: str | None
    """Word written on screen, or ``None``."""
    caption: str
    duplicate_of: int | None = None
    """Index of the earlier scene this one repeats as a near-duplicate, or ``None``."""

    @property
    def num_frames(self) -> int:
        return self.end_frame - self.start_frame

    def content_key(self) -> tuple:
        """What a viewer can tell apart; near-duplicates share it, other scenes never do."""
        return (self.background, tuple(sorted(o.key() for o in self.objects)), self.text)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_sec": self.start_sec,
            "end_sec": self.end_sec,
            "caption": self.caption,
            "background": self.background.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
            "text": self.text,
            "duplicate_of": self.duplicate_of,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "scene") -> SynthScene:
        text = data.get("text") if isinstance(data, dict) else None
        duplicate_of = data.get("duplicate_of") if isinstance(data, dict) else None
        if text is not None and not isinstance(text, str):
            raise DataError(f"{where}: text must be a string or null, got {text!r}")
        if duplicate_of is not None and not _is_int(duplicate_of):
            raise DataError(f"{where}: duplicate_of must be an integer or null, got {duplicate_of!r}")
        return cls(
            index=_require(data, "index", int, where),
            start_frame=_require(data, "start_frame", int, where),
            end_frame=_require(data, "end_frame", int, where),
            start_sec=float(_require(data, "start_sec", (int, float), where)),
            end_sec=float(_require(data, "end_sec", (int, float), where)),
            caption=_require(data, "caption", str, where),
            background=SynthBackground.from_dict(_require(data, "background", dict, where), where),
            objects=tuple(
                SynthObject.from_dict(o, f"{where} object {i}")
                for i, o in enumerate(_require(data, "objects", list, where))
            ),
            text=text,
            duplicate_of=duplicate_of,
        )


@dataclass(frozen=True)
class SynthQuestion:
    """A multiple-choice question whose evidence lies in known scenes."""

    id: str
    type: str
    """Question family: object_color, object_shape, object_position, motion, background, text,
    counting or temporal_order."""
    question: str
    options: dict[str, str]
    """Letter (A-D) -> option text; four distinct texts."""
    answer: str
    """Letter of the one correct option."""
    evidence_scenes: tuple[int, ...]
    """Indices of the scenes that hold the answer."""
    attribute: str
    """What is asked: color, shape, position, motion, background, text, count or order."""
    subject: dict[str, str] = field(default_factory=dict)
    """Attributes naming the object asked about or counted (e.g. ``{"shape": "star"}``)."""
    reference: dict[str, str] = field(default_factory=dict)
    """Attributes that single out the evidence scene within the video (empty when none is singled
    out): ``{"text": w}``, ``{"color": c, "pattern": p}`` or object attributes."""

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "question": self.question,
            "options": dict(self.options),
            "answer": self.answer,
            "evidence_scenes": list(self.evidence_scenes),
            "attribute": self.attribute,
            "subject": dict(self.subject),
            "reference": dict(self.reference),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "question") -> SynthQuestion:
        options = _require(data, "options", dict, where)
        if sorted(options) != list(OPTION_LETTERS) or len(set(options.values())) != len(OPTION_LETTERS):
            raise DataError(f"{where}: options must map A-D to four distinct texts, got {options!r}")
        answer = _require(data, "answer", str, where)
        if answer not in options:
            raise DataError(f"{where}: answer {answer!r} is not one of {OPTION_LETTERS}")
        evidence = _require(data, "evidence_scenes", list, where)
        if not evidence or not all(_is_int(i) for i in evidence):
            raise DataError(f"{where}: evidence_scenes must be a non-empty list of scene indices")
        return cls(
            id=_require(data, "id", str, where),
            type=_require(data, "type", str, where),
            question=_require(data, "question", str, where),
            options={k: str(options[k]) for k in OPTION_LETTERS},
            answer=answer,
            evidence_scenes=tuple(evidence),
            attribute=_require(data, "attribute", str, where),
            subject={str(k): str(v) for k, v in data.get("subject", {}).items()},
            reference={str(k): str(v) for k, v in data.get("reference", {}).items()},
        )


@dataclass(frozen=True)
class SynthVideo:
    """One synthetic video as its sidecar describes it."""

    id: str
    index: int
    seed: int
    file: str
    """File name of the mp4, relative to the sidecar's folder."""
    fps: float
    width: int
    height: int
    num_frames: int
    scenes: tuple[SynthScene, ...]
    questions: tuple[SynthQuestion, ...]

    @property
    def duration_sec(self) -> float:
        return self.num_frames / self.fps

    def scene_at(self, frame: int) -> SynthScene:
        """The scene that holds frame number ``frame``."""
        for scene in self.scenes:
            if scene.start_frame <= frame < scene.end_frame:
                return scene
        raise IndexError(f"frame {frame} is outside the video's {self.num_frames} frames")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SYNTH_FORMAT,
            "version": SYNTH_FORMAT_VERSION,
            "id": self.id,
            "index": self.index,
            "seed": self.seed,
            "file": self.file,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "num_frames": self.num_frames,
            "duration_sec": self.duration_sec,
            "scenes": [s.to_dict() for s in self.scenes],
            "questions": [q.to_dict() for q in self.questions],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "video") -> SynthVideo:
        if not isinstance(data, dict) or data.get("format") != SYNTH_FORMAT:
            raise DataError(f"{where}: not a {SYNTH_FORMAT} sidecar")
        if data.get("version") != SYNTH_FORMAT_VERSION:
            raise DataError(f"{where}: format version {data.get('version')!r}, expected {SYNTH_FORMAT_VERSION}")
        video = cls(
            id=_require(data, "id", str, where),
            index=_require(data, "index", int, where),
            seed=_require(data, "seed", int, where),
            file=_require(data, "file", str, where),
            fps=float(_require(data, "fps", (int, float), where)),
            width=_require(data, "width", int, where),
            height=_require(data, "height", int, where),
            num_frames=_require(data, "num_frames", int, where),
            scenes=tuple(
                SynthScene.from_dict(s, f"{where} scene {i}")
                for i, s in enumerate(_require(data, "scenes", list, where))
            ),
            questions=tuple(
                SynthQuestion.from_dict(q, f"{where} question {i}")
                for i, q in enumerate(_require(data, "questions", list, where))
            ),
        )
        video.validate(where)
        return video

    def validate(self, where: str = "video") -> None:
        """Check that the scenes tile the video and the questions point at real scenes.

        Raises:
            DataError: the first inconsistency found.
        """
        frame = 0
        for i, scene in enumerate(self.scenes):
            if scene.index != i or scene.start_frame != frame or scene.end_frame <= scene.start_frame:
                raise DataError(f"{where}: scene {i} does not follow on at frame {frame}")
            frame = scene.end_frame
        if frame != self.num_frames:
            raise DataError(f"{where}: scenes cover {frame} frames, the video has {self.num_frames}")
        for question in self.questions:
            if not all(0 <= i < len(self.scenes) for i in question.evidence_scenes):
                raise DataError(f"{where}: question {question.id} cites a scene outside 0..{len(self.scenes) - 1}")


@dataclass(frozen=True)
class SynthCorpus:
    """A written corpus: its folder, config and videos."""

    root: Path
    config: SynthConfig
    videos: tuple[SynthVideo, ...]

    def video_path(self, video: SynthVideo | str) -> Path:
        """Path of a video's mp4 (by record or id)."""
        video_id = video if isinstance(video, str) else video.id
        return self.root / "videos" / f"{video_id}.mp4"

    def sidecar_path(self, video: SynthVideo | str) -> Path:
        """Path of a video's JSON sidecar (by record or id)."""
        video_id = video if isinstance(video, str) else video.id
        return self.root / "videos" / f"{video_id}.json"
