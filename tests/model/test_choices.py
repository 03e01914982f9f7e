"""The options of a multiple-choice prompt."""

from __future__ import annotations

import pytest

from salova.model.choices import parse_options

VIDEOMME = (
    "Select the best answer to the following multiple-choice question based on the video.\n"
    "What colour is the ball?\nA. red\nB. blue\nC. green\nD. A brown diamond moving up\n\n"
    "Answer with the option's letter from the given choices directly."
)


@pytest.mark.parametrize(
    ("prompt", "options"),
    [
        (VIDEOMME, {"A": "red", "B": "blue", "C": "green", "D": "A brown diamond moving up"}),
        ("Which?\n(A) one\n(B) two\nthen more text\nC. three", {"A": "one", "B": "two"}),
        ("Which?\nA) one  \nB) two", {"A": "one", "B": "two"}),
        ("Which?\nA. only one option", {}),
        ("Which?\nB. starts at B\nC. then C", {}),
        ("Which?\nA. one\nC. skips B", {}),
        ("Describe the video.", {}),
    ],
)
def test_options_are_the_first_run_of_lettered_lines(prompt, options):
    assert parse_options(prompt) == options
