"""Multiple-choice answer extraction: the letter a free-form response chose.

Two conventions, named in every report:

* ``lmms-eval`` (default): lmms-eval's shared extractor (``extract_mcq_answer``), which its
  Video-MME and MLVU tasks use. Letters are looked for in ten formats ("(B)", "B.", "B:",
  "B)", "B ", "the answer is B", a leading or trailing standalone letter, any occurrence);
  the highest-priority format wins and, within a format, the last occurrence. A question
  whose response names no letter counts as wrong.
* ``videomme-official``: the regex of Video-MME's own ``evaluation/eval_your_results.py``:
  after removing a few answer prefixes, the *first* capital choice letter anywhere in the
  response; nothing when there is none or when a response of more than ten words names no
  letter. Such unanswered questions are left out of the accuracy (the official script only
  counts answered questions).

Task-specific parsers of lmms-eval (LongVideoBench's parser with its random fallback,
MVBench's ``mcq_acc``) live beside them so that each benchmark scores exactly as lmms-eval
scores it (see :mod:`salova.eval.tasks`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from salova.errors import ConfigError

__all__ = [
    "CONVENTIONS",
    "DEFAULT_CONVENTION",
    "OFFICIAL_CONVENTION",
    "extract_choice",
    "lmms_eval_choice",
    "videomme_official_choice",
    "longvideobench_choice",
    "mvbench_choice",
    "mvbench_is_correct",
]

DEFAULT_CONVENTION = "lmms-eval"
OFFICIAL_CONVENTION = "videomme-official"

# Adapted from lmms-eval/lmms_eval/tasks/_task_utils/mcq_extract.py@0.7.3 (extract_mcq_answer).
_ANSWER_PHRASES: tuple[str, ...] = (
    "the answer is",
    "answer is",
    "the correct answer is",
    "correct answer is",
    "the best answer is",
    "best answer is",
    "the correct option is",
    "correct option is",
    "the best option is",
    "best option is",
    "the choice is",
    "choice is",
    "the correct choice is",
    "correct choice is",
    "i choose",
    "i select",
    "i pick",
    "my answer is",
    "my choice is",
    "옵션",
    "정답은",
    "답은",
    "답:",
    "答案是",
    "答案为",
    "选",
    "答えは",
)
"""Phrases after which the first choice letter is taken (lmms-eval's list, in its order)."""
_FORMAT_PRIORITY: dict[str, int] = {
    "start": 10,
    "end": 9,
    "phrase": 7,
    "parentheses": 6,
    "period": 5,
    "colon": 4,
    "right_paren": 3,
    "space": 2,
    "fallback": 0,
}
"""Higher wins; within one format the later position wins."""
_EDGE_PUNCTUATION: tuple[str, ...] = (",", ".", "!", "?", ";", ":", "'", '"')
"""Stripped from both ends, one character class after the other, before matching."""
# (format, template) pairs searched with str.rfind, in lmms-eval's order.
_SUFFIX_FORMATS: tuple[tuple[str, str], ...] = (
    ("parentheses", "({})"),
    ("period", "{}."),
    ("colon", "{}:"),
    ("right_paren", "{})"),
    ("space", "{} "),
)

# Adapted from Video-MME/evaluation/eval_your_results.py@4e7566d (extract_characters_regex).
# Two pairs of the script's prefixes lack a comma, so Python joins them into one string each;
# the joined strings are kept, which is what the script actually removes.
_VIDEOMME_OFFICIAL_PREFIXES: tuple[str, ...] = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
)

# Adapted from lmms-eval/lmms_eval/tasks/longvideobench/utils.py@0.7.3 (parse_multi_choice_response).
_LONGVIDEOBENCH_PREFIXES: tuple[str, ...] = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)
_LONGVIDEOBENCH_LETTERS = "ABCDE"
_LONGVIDEOBENCH_MAX_WORDS = 10


def _letters(choices: str | Sequence[str]) -> list[str]:
    letters = list(choices)
    if not letters or any(len(letter) != 1 or not letter.isupper() for letter in letters):
        raise ValueError(f"choices must be capital letters such as 'ABCD', got {choices!r}")
    return letters


def lmms_eval_choice(response: str, choices: str | Sequence[str] = "ABCD") -> str:
    """The letter lmms-eval's shared extractor finds in ``response``, or ``""``."""
    if not response or not response.strip():
        return ""
    letters = _letters(choices)
    text = response.strip()
    for char in _EDGE_PUNCTUATION:
        text = text.strip(char)
    text = f" {text} "  # spaces make word boundaries at both ends
    candidates: list[tuple[str, int, str]] = []
    for name, template in _SUFFIX_FORMATS:
        for letter in letters:
            needle = template.format(letter)
            if needle in text:
                candidates.append((letter, text.rfind(needle), name))
    lower = text.lower()
    for phrase in _ANSWER_PHRASES:
        found = lower.find(phrase)
        if found != -1:
            after = found + len(phrase)
            for letter in letters:
                position = text.find(letter, after)
                if position != -1:
                    candidates.append((letter, position, "phrase"))
    stripped = text.strip()
    for letter in letters:
        if stripped.startswith(letter) and (len(stripped) == 1 or not stripped[1].isalpha()):
            candidates.append((letter, 0, "start"))
    for letter in letters:
        if stripped.endswith(letter) and (len(stripped) == 1 or not stripped[-2].isalpha()):
            candidates.append((letter, len(text) - 1, "end"))
    if not candidates:
        candidates = [(letter, text.rfind(letter), "fallback") for letter in letters if letter in text]
    if not candidates:
        return ""
    return max(candidates, key=lambda c: (_FORMAT_PRIORITY[c[2]], c[1]))[0]


def videomme_official_choice(response: str, choices: str | Sequence[str] = "ABCD") -> str:
    """The letter Video-MME's official script finds in ``response``, or ``""`` (unanswered)."""
    letters = "".join(_letters(choices))
    text = response.strip()
    for prefix in _VIDEOMME_OFFICIAL_PREFIXES:
        text = text.replace(prefix, "")
    # The script also returns "" for a response of more than ten words without a letter, which the
    # search below already does.
    match = re.search(f"[{letters}]", text)
    return "" if match is None else match[0]


def longvideobench_choice(response: str, choices: str | Sequence[str], rng: random.Random) -> str:
    """LongVideoBench's parser in lmms-eval: the first of A-E after removing answer prefixes.

    When none is found (or a long response holds none) lmms-eval picks a random letter among the
    question's ``choices``, as the benchmark's authors do; ``rng`` draws it.
    """
    letters = _letters(choices)
    text = response.strip()
    for prefix in _LONGVIDEOBENCH_PREFIXES:
        text = text.replace(prefix, "")
    pattern = f"[{_LONGVIDEOBENCH_LETTERS}]"
    if len(text.split()) > _LONGVIDEOBENCH_MAX_WORDS and not re.search(pattern, text):
        return rng.choice(letters)
    match = re.search(pattern, text)
    return rng.choice(letters) if match is None else match[0]


# Adapted from lmms-eval/lmms_eval/tasks/mvbench/utils.py@0.7.3 (mcq_acc), which compares the
# processed ground-truth letter with the processed response.
_MVBENCH_PUNCTUATION: tuple[str, ...] = (
    ";",
    r"/",
    "[",
    "]",
    '"',
    "{",
    "}",
    "(",
    ")",
    "=",
    "+",
    "\\",
    "_",
    "-",
    ">",
    "<",
    "@",
    "`",
    ",",
    "?",
    "!",
)
_MVBENCH_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_MVBENCH_COMMA = re.compile(r"(\d)(\,)(\d)")
_MVBENCH_OPTION = re.compile(r"^([A-E])\.\s*(.+)$", re.IGNORECASE)
_MVBENCH_LETTER = re.compile(r"\b([A-E])\b", re.IGNORECASE)
_MVBENCH_PERIOD_COUNT = re.UNICODE
"""lmms-eval passes ``re.UNICODE`` as ``sub``'s *count* argument, so at most 32 periods go."""


def _mvbench_punctuation(text: str) -> str:
    out = text
    for mark in _MVBENCH_PUNCTUATION:
        if (mark + " " in text or " " + mark in text) or _MVBENCH_COMMA.search(text) is not None:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _MVBENCH_PERIOD.sub("", out, _MVBENCH_PERIOD_COUNT)


def mvbench_choice(response: str) -> str:
    """MVBench's normalisation in lmms-eval: a letter when one is found, else the cleaned text."""
    match = _MVBENCH_OPTION.match(response.strip())
    if match:
        return match.group(1).upper()
    text = response.replace("\n", " ").replace("\t", " ").strip()
    text = _mvbench_punctuation(text)
    text = text.strip("'").strip('"').strip(")").strip("(").strip().lower()
    letter = _MVBENCH_LETTER.search(text)
    return letter.group(1).upper() if letter else text


def mvbench_is_correct(answer_letter: str, response: str) -> bool:
    """lmms-eval's MVBench score: both sides normalised by :func:`mvbench_choice`, then compared."""
    return mvbench_choice(response) == mvbench_choice(answer_letter)


CONVENTIONS: dict[str, Callable[[str, str | Sequence[str]], str]] = {
    DEFAULT_CONVENTION: lmms_eval_choice,
    OFFICIAL_CONVENTION: videomme_official_choice,
}
"""Convention name -> extractor ``(response, choices) -> letter or ""``."""


def extract_choice(response: str, choices: str | Sequence[str] = "ABCD", convention: str = DEFAULT_CONVENTION) -> str:
    """The option letter a model's response chose, or ``""`` when it names none.

    Args:
        response: the model's free-form answer.
        choices: the option letters, e.g. ``"ABCD"``.
        convention: ``"lmms-eval"`` (lmms-eval's extractor) or ``"videomme-official"``
            (Video-MME's ``eval_your_results.py``).

    Returns:
        One letter of ``choices``, or ``""``.

    Raises:
        ConfigError: an unknown convention.
        ValueError: ``choices`` is not a string of capital letters.

    Example:
        >>> extract_choice("The answer is (C).")
        'C'
        >>> extract_choice("c")
        ''
        >>> extract_choice("I think B, not A", convention="videomme-official")
        'B'
    """
    if convention not in CONVENTIONS:
        raise ConfigError(f"Unknown answer convention {convention!r}; choose from {sorted(CONVENTIONS)}")
    return CONVENTIONS[convention](response, choices)
