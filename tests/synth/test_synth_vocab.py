"""The vocabularies: distinct names, separated colours, words that never read as attributes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from salova.synth.vocab import (
    COLORS,
    MOTIONS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    SIZES,
    WORDS,
    pattern_phrase,
    position_word,
    with_article,
)

MIN_COLOR_DISTANCE = 60.0  # RGB distance between any two named colours


def test_words_are_unique_upper_case_and_never_attribute_words():
    assert len(WORDS) == len(set(WORDS)) >= 200
    assert all(w.isalpha() and w.isupper() and 4 <= len(w) <= 8 for w in WORDS)
    attribute_words = {w.upper() for w in [*COLORS, *SHAPES, *SIZES, *MOTIONS, *POSITIONS, *PATTERNS]}
    assert not attribute_words & set(WORDS)


def test_colours_are_well_separated():
    closest = min(
        np.linalg.norm(np.subtract(COLORS[a], COLORS[b], dtype=float)) for a, b in itertools.combinations(COLORS, 2)
    )
    assert closest >= MIN_COLOR_DISTANCE


def test_sizes_grow_by_a_visible_ratio():
    values = sorted(SIZES.values())
    assert all(b / a >= 1.3 for a, b in itertools.pairwise(values))


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [(0.1, 0.1, "top left"), (0.5, 0.1, "top"), (0.5, 0.5, "center"), (0.9, 0.5, "right"), (0.2, 0.9, "bottom left")],
)
def test_position_word_names_the_grid_cell(x, y, expected):
    assert position_word(x, y) == expected


def test_articles_follow_the_first_sound():
    assert with_article("orange star") == "an orange star"
    assert with_article("red star") == "a red star"
    assert pattern_phrase("orange", "checkered") == "an orange checkered background"
    assert pattern_phrase("blue", "dotted") == "a blue background with dots"
