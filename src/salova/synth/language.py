"""Plain-English phrases for the synthetic world: captions and the phrases questions reuse.

Every caption names everything visible in its scene (background colour and pattern, each
object's size, colour, shape and motion or place, and the on-screen word) in one of a few
sentence templates, so captions vary in form but never leave anything out.
"""

from __future__ import annotations

import numpy as np

from salova.synth.schema import SynthBackground, SynthObject
from salova.synth.vocab import motion_phrase, pattern_phrase, with_article

__all__ = ["object_phrase", "place_phrase", "describe_scene", "join_phrases"]

_CAPTION_TEMPLATES: tuple[str, ...] = (
    "{Objects} on {background}.",
    "The scene shows {objects} on {background}.",
    "{Background} with {objects}.",
    "On {background} there is {objects}.",
    "A view of {background}: {objects}.",
)
_TEXT_TEMPLATES: tuple[str, ...] = (
    'The word "{text}" is written at the bottom.',
    'A sign at the bottom reads "{text}".',
    'The text "{text}" appears at the bottom.',
)


def join_phrases(phrases: list[str]) -> str:
    """Join phrases as English does: ``a``, ``a and b``, ``a, b and c``."""
    if len(phrases) <= 1:
        return "".join(phrases)
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def place_phrase(position: str) -> str:
    """Where a still object stands, e.g. ``"at the top left"`` or ``"in the center"``."""
    if position == "center":
        return "in the center"
    if position in ("left", "right"):
        return f"on the {position}"
    return f"at the {position}"


def object_phrase(obj: SynthObject) -> str:
    """Describe an object with all its attributes, e.g. ``"a large red star moving up"``."""
    head = with_article(f"{obj.size} {obj.color} {obj.shape}")
    if obj.motion == "still":
        return f"{head} standing still {place_phrase(obj.position or 'center')}"
    return f"{head} {motion_phrase(obj.motion)}"


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe_scene(
    background: SynthBackground, objects: tuple[SynthObject, ...], text: str | None, rng: np.random.Generator
) -> str:
    """Write the caption of a scene.

    Args:
        background: the scene's background.
        objects: the scene's objects (all are named, in order).
        text: the on-screen word, or ``None``.
        rng: picks the sentence templates.

    Returns:
        One or two sentences naming everything visible.

    Example:
        >>> import numpy as np
        >>> from salova.synth.schema import SynthBackground, SynthObject
        >>> star = SynthObject("star", "red", "large", "up", (0.5, 0.8), (0.5, 0.2))
        >>> describe_scene(SynthBackground("blue", "plain"), (star,), None, np.random.default_rng(1))
        'A plain blue background with a large red star moving up.'
    """
    objects_text = join_phrases([object_phrase(o) for o in objects])
    background_text = pattern_phrase(background.color, background.pattern)
    template = _CAPTION_TEMPLATES[int(rng.integers(len(_CAPTION_TEMPLATES)))]
    caption = template.format(
        objects=objects_text,
        Objects=_capitalize(objects_text),
        background=background_text,
        Background=_capitalize(background_text),
    )
    if text:
        caption += " " + _TEXT_TEMPLATES[int(rng.integers(len(_TEXT_TEMPLATES)))].format(text=text)
    return caption
