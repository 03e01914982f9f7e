"""Multiple-choice questions whose answers lie in known scenes of a synthetic video.

A question names its scene by attributes no other scene of the video shares (its word,
its background, or an object described precisely enough) and asks for a *different*
attribute of that scene, so it cannot be answered without finding the scene. Distractors
are drawn first from values that occur elsewhere in the same video, then from the whole
vocabulary; values the question itself rules out (for example the colour it uses to name
the scene) are never offered. Counting and temporal-order questions span several scenes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from salova.synth.language import place_phrase
from salova.synth.schema import OPTION_LETTERS, SynthObject, SynthQuestion, SynthScene
from salova.synth.vocab import (
    COLORS,
    MOTIONS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    WORDS,
    motion_option,
    motion_phrase,
    pattern_phrase,
    with_article,
)

__all__ = [
    "QUESTION_TYPES",
    "MAX_COUNT",
    "QuestionAsk",
    "QuestionDraft",
    "matches_reference",
    "reference_phrases",
    "finish_question",
    "make_questions",
]

MAX_COUNT = 4
"""Largest answer of a counting question (its evidence must fit a router's top-K)."""
_TRIES_PER_QUESTION = 30
"""Attempts (type x scene draws) per requested question before giving up on it."""
_TEMPORAL_CHOICES = len(OPTION_LETTERS)
"""Scenes compared by a temporal-order question."""


@dataclass(frozen=True)
class _Reference:
    """A way of naming one scene that no other scene of the video matches."""

    attrs: tuple[tuple[str, str], ...]
    phrase: str
    """E.g. ``the scene with a large red star``."""
    noun: str
    """E.g. ``a large red star`` (for temporal-order options)."""
    object_index: int | None
    """The object of the scene the reference names, if any."""


@dataclass
class QuestionDraft:
    """A question before its options are drawn: the answer and where distractors come from."""

    question: str
    answer: str
    preferred: list[str]
    fallback: list[str]
    evidence: tuple[int, ...]
    attribute: str
    subject: dict[str, str] = field(default_factory=dict)
    reference: dict[str, str] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)


def matches_reference(scene: SynthScene, reference: dict[str, str]) -> bool:
    """Whether ``scene`` fits a question's ``reference`` (see :class:`SynthQuestion`)."""
    if "text" in reference:
        return scene.text == reference["text"]
    if "background_color" in reference:
        return (scene.background.color, scene.background.pattern) == (
            reference["background_color"],
            reference["background_pattern"],
        )
    return any(all(getattr(o, k) == v for k, v in reference.items()) for o in scene.objects)


def _candidate_references(scene: SynthScene) -> list[_Reference]:
    bg = scene.background
    refs = [
        _Reference(
            (("background_color", bg.color), ("background_pattern", bg.pattern)),
            f"the scene with {pattern_phrase(bg.color, bg.pattern)}",
            pattern_phrase(bg.color, bg.pattern),
            None,
        )
    ]
    if scene.text:
        refs.append(
            _Reference(
                (("text", scene.text),), f'the scene with the word "{scene.text}"', f'the word "{scene.text}"', None
            )
        )
    for i, o in enumerate(scene.objects):
        plain = with_article(f"{o.color} {o.shape}")
        sized = with_article(f"{o.size} {o.color} {o.shape}")
        moving = f"{plain} {motion_phrase(o.motion)}"
        refs += [
            _Reference((("color", o.color), ("shape", o.shape)), f"the scene with {plain}", plain, i),
            _Reference((("color", o.color), ("shape", o.shape), ("size", o.size)), f"the scene with {sized}", sized, i),
            _Reference(
                (("color", o.color), ("motion", o.motion), ("shape", o.shape)), f"the scene with {moving}", moving, i
            ),
        ]
    return refs


def reference_phrases(scene: SynthScene) -> list[str]:
    """Every partial description a question may name ``scene`` by (``"a blue diamond moving up"``...):
    its background, its word, and each object by colour and shape, alone or with size or motion."""
    return [ref.noun for ref in _candidate_references(scene)]


class _Context:
    """Per-video lookups shared by the question makers."""

    def __init__(self, scenes: tuple[SynthScene, ...]):
        self.scenes = scenes
        candidates = [_candidate_references(s) for s in scenes]
        counts = Counter(key for refs in candidates for key in {r.attrs for r in refs})
        self.unique = [[r for r in refs if counts[r.attrs] == 1] for refs in candidates]

    def others(self, scene: SynthScene) -> list[SynthScene]:
        return [s for s in self.scenes if s.index != scene.index]


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))] if items else None


def _mentioned(ref: _Reference) -> set[str]:
    return {value for key, value in ref.attrs if key in ("color", "background_color", "shape")}


@dataclass(frozen=True)
class QuestionAsk:
    """How one question type reads, what it asks and where its distractors come from."""

    template: str
    """Question text; ``{ref}`` names the scene, ``{color}``/``{shape}`` the asked-about object."""
    attribute: str
    value: Callable[[SynthScene, SynthObject | None], str | None]
    """The answer, read from the scene (and object); ``None`` when the question does not apply."""
    vocabulary: tuple[str, ...]
    subject: tuple[str, ...] = ()
    """Object attributes that name the asked-about object inside the scene."""
    avoid: str = ""
    """Reference attribute that would give the answer away."""


_OBJECT_ASKS: dict[str, QuestionAsk] = {
    "object_color": QuestionAsk(
        "In {ref}, what color is the {shape}?", "color", lambda s, o: o.color, tuple(COLORS), ("shape",)
    ),
    "object_shape": QuestionAsk(
        "In {ref}, what shape is the {color} object?", "shape", lambda s, o: o.shape, SHAPES, ("color",)
    ),
    "motion": QuestionAsk(
        "In {ref}, how does the {color} {shape} move?",
        "motion",
        lambda s, o: motion_option(o.motion),
        tuple(motion_option(m) for m in MOTIONS),
        ("color", "shape"),
    ),
    "object_position": QuestionAsk(
        "In {ref}, where is the {color} {shape}?",
        "position",
        lambda s, o: place_phrase(o.position) if o.position else None,
        tuple(place_phrase(p) for p in POSITIONS),
        ("color", "shape"),
    ),
}
_SCENE_ASKS: dict[str, QuestionAsk] = {
    "text": QuestionAsk("Which word is written on screen in {ref}?", "text", lambda s, o: s.text, WORDS, avoid="text"),
    "background_color": QuestionAsk(
        "What color is the background in {ref}?",
        "background",
        lambda s, o: s.background.color,
        tuple(COLORS),
        avoid="background_color",
    ),
    "background_pattern": QuestionAsk(
        "What pattern does the background have in {ref}?",
        "pattern",
        lambda s, o: s.background.pattern,
        PATTERNS,
        avoid="background_color",
    ),
}


def _object_question(ctx: _Context, scene: SynthScene, rng: np.random.Generator, kind: str) -> QuestionDraft | None:
    """Ask about one object of ``scene``, naming the scene without naming that object.

    Distractors prefer the values of objects elsewhere in the video that share the
    asked-about object's naming attributes (e.g. the colours of other scenes' stars)."""
    ask = _OBJECT_ASKS[kind]
    index = int(rng.integers(len(scene.objects)))
    obj = scene.objects[index]
    answer = ask.value(scene, obj)
    ref = _pick(rng, [r for r in ctx.unique[scene.index] if r.object_index != index])
    if answer is None or ref is None:
        return None
    subject = {key: getattr(obj, key) for key in ask.subject}
    related = [
        (s, o) for s in ctx.others(scene) for o in s.objects if any(getattr(o, k) == v for k, v in subject.items())
    ]
    return QuestionDraft(
        ask.template.format(ref=ref.phrase, color=obj.color, shape=obj.shape),
        answer,
        [v for s, o in related if (v := ask.value(s, o)) is not None],
        list(ask.vocabulary),
        evidence=(scene.index,),
        attribute=ask.attribute,
        subject=subject,
        reference=dict(ref.attrs),
        excluded=_mentioned(ref),
    )


def _scene_question(ctx: _Context, scene: SynthScene, rng: np.random.Generator, kind: str) -> QuestionDraft | None:
    """Ask about the background or the word of ``scene``; distractors prefer its neighbours' values."""
    ask = _SCENE_ASKS[kind]
    answer = ask.value(scene, None)
    ref = _pick(rng, [r for r in ctx.unique[scene.index] if ask.avoid not in dict(r.attrs)])
    if answer is None or ref is None:
        return None
    others = ctx.others(scene)
    neighbours = [s for s in others if abs(s.index - scene.index) == 1]
    return QuestionDraft(
        ask.template.format(ref=ref.phrase),
        answer,
        [v for s in neighbours + others if (v := ask.value(s, None)) is not None],
        list(ask.vocabulary),
        evidence=(scene.index,),
        attribute=ask.attribute,
        reference=dict(ref.attrs),
        excluded=_mentioned(ref),
    )


def _counting_question(ctx: _Context, rng: np.random.Generator) -> QuestionDraft | None:
    holders: dict[tuple[str, str], list[int]] = {}
    for scene in ctx.scenes:
        for o in scene.objects:
            holders.setdefault((o.color, o.shape), []).append(scene.index)
    pairs = sorted(k for k, v in holders.items() if len(v) <= MAX_COUNT)
    if not pairs:
        return None
    color, shape = _pick(rng, pairs)
    count = len(holders[(color, shape)])
    numbers = [str(n) for n in range(max(0, count - 3), count + 4)]
    return QuestionDraft(
        f"In how many scenes does {with_article(color)} {shape} appear?",
        str(count),
        [],
        numbers,
        evidence=tuple(holders[(color, shape)]),
        attribute="count",
        subject={"color": color, "shape": shape},
    )


def _temporal_question(ctx: _Context, rng: np.random.Generator) -> QuestionDraft | None:
    named = [s.index for s in ctx.scenes if ctx.unique[s.index]]
    if len(named) < _TEMPORAL_CHOICES:
        return None
    chosen = sorted(int(i) for i in rng.choice(named, size=_TEMPORAL_CHOICES, replace=False))
    nouns = {i: _pick(rng, ctx.unique[i]).noun for i in chosen}
    if len(set(nouns.values())) < _TEMPORAL_CHOICES:
        return None
    order = "first" if rng.integers(2) == 0 else "last"
    answer = chosen[0] if order == "first" else chosen[-1]
    return QuestionDraft(
        f"Which of these is shown {order} in the video?",
        _capitalize(nouns[answer]),
        [_capitalize(nouns[i]) for i in chosen if i != answer],
        [],
        evidence=tuple(chosen),
        attribute="order",
        subject={"order": order},
    )


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


_SCENE_MAKERS: dict[str, Callable[[_Context, SynthScene, np.random.Generator, str], QuestionDraft | None]] = {
    **dict.fromkeys(_OBJECT_ASKS, _object_question),
    **dict.fromkeys(_SCENE_ASKS, _scene_question),
}
_VIDEO_MAKERS: dict[str, Callable[[_Context, np.random.Generator], QuestionDraft | None]] = {
    "counting": _counting_question,
    "temporal_order": _temporal_question,
}
QUESTION_TYPES: tuple[str, ...] = (*_SCENE_MAKERS, *_VIDEO_MAKERS)
"""Every question family, as recorded in ``SynthQuestion.type``."""


def finish_question(draft: QuestionDraft, kind: str, qid: str, rng: np.random.Generator) -> SynthQuestion | None:
    """Pick three distractors and shuffle the options; ``None`` if too few values exist.

    Distractors come from ``draft.preferred`` first, then ``draft.fallback`` (each in random
    order), never repeating the answer, each other or a value in ``draft.excluded``.
    """
    banned = {draft.answer} | draft.excluded
    distractors: list[str] = []
    for pool in (draft.preferred, draft.fallback):
        for value in (pool[i] for i in rng.permutation(len(pool))):
            if value not in banned and value not in distractors and len(distractors) < len(OPTION_LETTERS) - 1:
                distractors.append(value)
    if len(distractors) < len(OPTION_LETTERS) - 1:
        return None
    texts = [draft.answer, *distractors]
    order = rng.permutation(len(texts))
    options = {letter: texts[j] for letter, j in zip(OPTION_LETTERS, order, strict=True)}
    answer = OPTION_LETTERS[int(np.flatnonzero(order == 0)[0])]
    return SynthQuestion(
        id=qid,
        type=kind,
        question=draft.question,
        options=options,
        answer=answer,
        evidence_scenes=draft.evidence,
        attribute=draft.attribute,
        subject=draft.subject,
        reference=draft.reference,
    )


def make_questions(
    scenes: tuple[SynthScene, ...], count: int, rng: np.random.Generator, video_id: str
) -> tuple[SynthQuestion, ...]:
    """Write up to ``count`` distinct questions about a video's scenes.

    Question types rotate through ``QUESTION_TYPES`` in a shuffled order and target scenes
    are drawn uniformly, so evidence is spread over the whole video.

    Args:
        scenes: the video's scenes.
        count: questions wanted.
        rng: random stream.
        video_id: prefix of the question ids (``<video_id>-q000`` ...).

    Returns:
        The questions; fewer than ``count`` when the video is too short to name enough
        scenes uniquely.
    """
    ctx = _Context(scenes)
    types = [str(t) for t in rng.permutation(QUESTION_TYPES)]
    questions: list[SynthQuestion] = []
    asked: set[str] = set()
    turn = 0
    for _ in range(count * _TRIES_PER_QUESTION):
        if len(questions) >= count:
            break
        kind = types[turn % len(types)]
        turn += 1
        if kind in _SCENE_MAKERS:
            scene = scenes[int(rng.integers(len(scenes)))]
            draft = _SCENE_MAKERS[kind](ctx, scene, rng, kind)
        else:
            draft = _VIDEO_MAKERS[kind](ctx, rng)
        if draft is None or draft.question in asked:
            continue
        question = finish_question(draft, kind, f"{video_id}-q{len(questions):03d}", rng)
        if question is not None:
            questions.append(question)
            asked.add(draft.question)
    return tuple(questions)
