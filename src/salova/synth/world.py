"""Sampling the content of a synthetic video: scenes, their captions and questions.

Video ``i`` of a corpus draws everything from one random stream seeded by
``(config.seed, i)``, so videos are independent and can be generated in any order.

Scenes are laid out in lanes: one to three objects, each in its own horizontal row
(objects glide left or right, or stand still) or its own vertical column (up, down or
still), inside the safe square and above the text band when the scene shows a word.
Within a scene shapes and colours are all distinct and no object takes the background's
colour; across the video no two scenes (near-duplicates aside) share background and
objects, and no word is shown twice. Adjacent backgrounds always differ by at least
``config.min_cut_score`` in a content detector's HSV score, so every cut is unmistakable.
"""

from __future__ import annotations

import numpy as np

from salova.synth.language import describe_scene
from salova.synth.questions import make_questions
from salova.synth.render import TEXT_BAND_TOP, background_contrast, stands_out
from salova.synth.schema import SynthBackground, SynthConfig, SynthObject, SynthScene, SynthVideo
from salova.synth.vocab import COLORS, HORIZONTAL_MOTIONS, PATTERNS, SHAPES, SIZES, VERTICAL_MOTIONS, WORDS

__all__ = ["video_id", "split_frames", "sample_objects", "sample_scene_group", "generate_video"]

_MARGIN = 0.04
"""Gap between the safe square's edge and any object."""
_TEXT_GAP = 0.02
"""Gap between the lowest object and the text band."""
_MAX_OBJECTS_WITH_TEXT = 2
"""The text band leaves room for two rows of large objects."""
_STILL_SLOTS = (0.0, 0.5, 1.0)
"""Where along its lane a still object stands (share of the lane's free length)."""
_POSITION_MARGIN = 0.06
"""A still object's centre keeps this far from the 3x3 grid's lines, so its place word is clear."""
_COORD_DECIMALS = 4
"""Coordinates are rounded so that sidecars read cleanly (1e-4 of the side is far below a pixel)."""
_DUPLICATE_JITTER = 0.03
"""Largest shift of a near-duplicate's objects along their lane (safe-square units)."""
_MAX_TRIES = 200
"""Attempts to draw a scene that is new to the video before giving up."""
_QUESTION_STREAM = 1
"""Sub-stream of a video's seed that draws its questions."""


def video_id(seed: int, index: int) -> str:
    """The id of video ``index`` of the corpus with ``seed``, e.g. ``synth-0-00003``."""
    return f"synth-{seed}-{index:05d}"


def split_frames(total: int, min_frames: int, max_frames: int, rng: np.random.Generator) -> list[int]:
    """Split ``total`` frames into scene lengths within ``[min_frames, max_frames]``.

    Args:
        total: frames to split (>= ``min_frames``).
        min_frames: shortest scene.
        max_frames: longest scene (>= ``min_frames``).
        rng: random stream.

    Returns:
        Scene lengths summing to ``total``. Every length lies in the range, except that the
        last may exceed ``max_frames`` when the remainder cannot be split within it.

    Raises:
        ValueError: ``total < min_frames`` or ``max_frames < min_frames``.
    """
    if total < min_frames or max_frames < min_frames:
        raise ValueError(f"cannot split {total} frames into scenes of {min_frames}..{max_frames} frames")
    lengths: list[int] = []
    remaining = total
    while remaining > max_frames:
        high = min(max_frames, remaining - min_frames)
        if high < min_frames:
            break
        length = int(rng.integers(min_frames, high + 1))
        lengths.append(length)
        remaining -= length
    lengths.append(remaining)
    return lengths


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


def _sample_background(
    rng: np.random.Generator, previous: SynthBackground | None, min_cut_score: float
) -> SynthBackground:
    candidates = [
        SynthBackground(color, pattern)
        for color in COLORS
        for pattern in PATTERNS
        if previous is None or background_contrast(previous, SynthBackground(color, pattern)) >= min_cut_score
    ]
    if not candidates:
        raise ValueError(f"no background differs from {previous} by min_cut_score={min_cut_score}")
    return _pick(rng, candidates)


def _lane_objects(
    rng: np.random.Generator,
    attributes: list[tuple[str, str, str]],
    horizontal: bool,
    has_text: bool,
) -> tuple[SynthObject, ...]:
    """Place objects (shape, colour, size) in lanes and give each a motion."""
    low = _MARGIN
    high = (TEXT_BAND_TOP - _TEXT_GAP) if has_text else 1.0 - _MARGIN
    across_low, across_high = (low, high) if horizontal else (_MARGIN, 1.0 - _MARGIN)
    along_low, along_high = (_MARGIN, 1.0 - _MARGIN) if horizontal else (low, high)
    lane = (across_high - across_low) / len(attributes)
    motions = HORIZONTAL_MOTIONS if horizontal else VERTICAL_MOTIONS
    objects = []
    for i, (shape, color, size) in enumerate(attributes):
        radius = SIZES[size] / 2.0
        across = across_low + lane * (i + 0.5)
        first, last = along_low + radius, along_high - radius
        motion = _pick(rng, motions)
        if motion == "still":
            slots = [first + (last - first) * share for share in _STILL_SLOTS]
            clear = [s for s in slots if min(abs(s - 1 / 3), abs(s - 2 / 3)) >= _POSITION_MARGIN]
            begin = end = _pick(rng, clear)
        elif motion in ("right", "down"):
            begin, end = first, last
        else:
            begin, end = last, first
        begin, end, across = (round(v, _COORD_DECIMALS) for v in (begin, end, across))
        if horizontal:
            objects.append(SynthObject(shape, color, size, motion, (begin, across), (end, across)))
        else:
            objects.append(SynthObject(shape, color, size, motion, (across, begin), (across, end)))
    return tuple(objects)


def sample_objects(
    rng: np.random.Generator, background: SynthBackground, has_text: bool, max_objects: int
) -> tuple[SynthObject, ...]:
    """Draw one to ``max_objects`` objects with distinct shapes and colours, laid out in lanes.

    Args:
        rng: random stream.
        background: the scene's background (objects take only colours that stand out on it).
        has_text: whether the scene shows a word (objects then stay above the text band).
        max_objects: most objects (at most two when ``has_text``).

    Returns:
        The objects, each with its path through the scene.
    """
    count = _object_count(rng, max_objects, has_text)
    shapes = [SHAPES[s] for s in rng.choice(len(SHAPES), size=count, replace=False)]
    colors = [c for c in COLORS if stands_out(c, background)]
    picked = [colors[c] for c in rng.choice(len(colors), size=count, replace=False)]
    return _place(rng, shapes, picked, has_text)


def _object_count(rng: np.random.Generator, max_objects: int, has_text: bool) -> int:
    limit = min(max_objects, _MAX_OBJECTS_WITH_TEXT) if has_text else max_objects
    return int(rng.integers(1, limit + 1))


def _scene_frames(config: SynthConfig) -> tuple[int, int]:
    """Fewest and most frames of a scene."""
    min_frames = round(config.min_scene_sec * config.fps)
    return min_frames, max(min_frames, round(config.max_scene_sec * config.fps))


def _place(rng: np.random.Generator, shapes: list[str], colors: list[str], has_text: bool) -> tuple[SynthObject, ...]:
    sizes = tuple(SIZES)
    attributes = [(shape, color, _pick(rng, sizes)) for shape, color in zip(shapes, colors, strict=True)]
    return _lane_objects(rng, attributes, horizontal=bool(rng.integers(2)), has_text=has_text)


def _others(rng: np.random.Generator, pool: list[str], taken: str, count: int) -> list[str]:
    rest = [item for item in pool if item != taken]
    return [rest[i] for i in rng.choice(len(rest), size=count, replace=False)]


def sample_scene_group(config: SynthConfig, rng: np.random.Generator, size: int) -> list[SynthScene]:
    """Draw ``size`` fresh scenes of the world ``config`` describes that only an object's shape tells apart.

    The scenes share their background and the colour of their first object, whose shape
    differs from scene to scene; sizes, motions, further objects and words are drawn as in
    a video. Contrastive pre-training puts such a group in one batch, so that a caption can
    be matched to its frame only by what the objects look like (stage 0, ``world_group``).

    Args:
        config: the world (``max_objects``, ``text_probability``, scene lengths, ``fps``).
        rng: random stream.
        size: scenes in the group, 1 to ``len(SHAPES)``.

    Returns:
        The scenes, each starting at frame 0 and lasting a scene length of the world.

    Raises:
        ValueError: ``size`` is out of range.
    """
    if not 1 <= size <= len(SHAPES):
        raise ValueError(f"a scene group holds 1 to {len(SHAPES)} scenes, got {size}")
    background = _sample_background(rng, None, config.min_cut_score)
    colors = [c for c in COLORS if stands_out(c, background)]
    color = _pick(rng, colors)
    first_shapes = [SHAPES[s] for s in rng.choice(len(SHAPES), size=size, replace=False)]
    min_frames, max_frames = _scene_frames(config)
    scenes = []
    for shape in first_shapes:
        has_text = rng.random() < config.text_probability
        count = _object_count(rng, config.max_objects, has_text)
        objects = _place(
            rng,
            [shape, *_others(rng, list(SHAPES), shape, count - 1)],
            [color, *_others(rng, colors, color, count - 1)],
            has_text,
        )
        text = _pick(rng, WORDS) if has_text else None
        length = int(rng.integers(min_frames, max_frames + 1))
        scenes.append(
            SynthScene(
                index=0,
                start_frame=0,
                end_frame=length,
                start_sec=0.0,
                end_sec=length / config.fps,
                background=background,
                objects=objects,
                text=text,
                caption=describe_scene(background, objects, text, rng),
            )
        )
    return scenes


def _jitter(rng: np.random.Generator, obj: SynthObject) -> SynthObject:
    """Shift an object a little along its lane, keeping its grid cell and inside the square."""
    shift = float(rng.uniform(-_DUPLICATE_JITTER, _DUPLICATE_JITTER))
    radius = SIZES[obj.size] / 2.0
    axis = 0 if obj.start[1] == obj.end[1] else 1

    def moved(point: tuple[float, float]) -> tuple[float, float]:
        values = list(point)
        values[axis] = round(min(1.0 - radius, max(radius, values[axis] + shift)), _COORD_DECIMALS)
        return (values[0], values[1])

    shifted = SynthObject(obj.shape, obj.color, obj.size, obj.motion, moved(obj.start), moved(obj.end))
    return shifted if shifted.position == obj.position else obj


def _objects_key(background: SynthBackground, objects: tuple[SynthObject, ...]) -> tuple:
    return (background, tuple(sorted(o.key() for o in objects)))


def generate_video(config: SynthConfig, index: int) -> SynthVideo:
    """Sample the content of video ``index`` of the corpus ``config`` describes.

    Args:
        config: the corpus config.
        index: the video's number in the corpus, ``0 <= index < config.num_videos``.

    Returns:
        The video record (scenes with captions, questions); nothing is drawn or written.

    Raises:
        ValueError: ``index`` is out of range.

    Example:
        >>> from salova.synth import SynthConfig
        >>> video = generate_video(SynthConfig(minutes=1.0), 0)
        >>> video.scenes[0].start_frame, video.num_frames
        (0, 480)
    """
    if not 0 <= index < config.num_videos:
        raise ValueError(f"video index must be in [0, {config.num_videos}), got {index}")
    rng = np.random.default_rng([config.seed, index])
    min_frames, max_frames = _scene_frames(config)
    lengths = split_frames(config.num_frames, min_frames, max_frames, rng)
    words = [str(w) for w in rng.permutation(WORDS)]
    seen: set[tuple] = set()
    scenes: list[SynthScene] = []
    start = 0
    for i, length in enumerate(lengths):
        previous = scenes[-1].background if scenes else None
        original = _maybe_duplicate(rng, scenes, config) if i >= 2 else None
        if original is not None:
            background, text = original.background, original.text
            objects = tuple(_jitter(rng, o) for o in original.objects)
            duplicate_of = original.index
        else:
            background, objects, text = _new_content(rng, previous, seen, words, config)
            duplicate_of = None
            seen.add(_objects_key(background, objects))
        scenes.append(
            SynthScene(
                index=i,
                start_frame=start,
                end_frame=start + length,
                start_sec=start / config.fps,
                end_sec=(start + length) / config.fps,
                background=background,
                objects=objects,
                text=text,
                caption=describe_scene(background, objects, text, rng),
                duplicate_of=duplicate_of,
            )
        )
        start += length
    vid = video_id(config.seed, index)
    question_rng = np.random.default_rng([config.seed, index, _QUESTION_STREAM])
    return SynthVideo(
        id=vid,
        index=index,
        seed=config.seed,
        file=f"{vid}.mp4",
        fps=config.fps,
        width=config.width,
        height=config.height,
        num_frames=config.num_frames,
        scenes=tuple(scenes),
        questions=make_questions(tuple(scenes), config.questions_per_video, question_rng, vid),
    )


def _maybe_duplicate(rng: np.random.Generator, scenes: list[SynthScene], config: SynthConfig) -> SynthScene | None:
    """An earlier, non-adjacent original scene to repeat, or ``None``."""
    if config.duplicate_probability <= 0.0 or rng.random() >= config.duplicate_probability:
        return None
    previous = scenes[-1].background
    candidates = [
        s
        for s in scenes[:-1]
        if s.duplicate_of is None and background_contrast(previous, s.background) >= config.min_cut_score
    ]
    return _pick(rng, candidates) if candidates else None


def _new_content(
    rng: np.random.Generator,
    previous: SynthBackground | None,
    seen: set[tuple],
    words: list[str],
    config: SynthConfig,
) -> tuple[SynthBackground, tuple[SynthObject, ...], str | None]:
    has_text = bool(words) and rng.random() < config.text_probability
    for _ in range(_MAX_TRIES):
        background = _sample_background(rng, previous, config.min_cut_score)
        objects = sample_objects(rng, background, has_text, config.max_objects)
        if _objects_key(background, objects) not in seen:
            return background, objects, (words.pop() if has_text else None)
    raise RuntimeError(f"could not draw a new scene in {_MAX_TRIES} tries; the vocabulary is exhausted")
