"""Multiple-choice prompts: the options a prompt lists, and answering by the options' likelihood.

A model trained to answer a multiple-choice question with the chosen option's *text* (training
``data.answer_format: option``) answers a multiple-choice prompt by scoring each option's text as
the answer to the bare question and replying with the letter of the most likely one
(``SalovaConfig.choice_answer = "option"``), as lmms-eval scores its ``multiple_choice`` tasks by
log-likelihood. The reply is still a letter, so the benchmark's own parser scores it unchanged.
"""

from __future__ import annotations

import re

__all__ = ["CHOICE_ANSWERS", "parse_options"]

CHOICE_ANSWERS = ("letter", "option")
"""How a model answers a multiple-choice prompt: ``letter``, it generates the option's letter (the
paper); ``option``, each option's text is scored as the answer to the bare question."""

_OPTION_LINE = re.compile(r"^\(?([A-Z])[.)]\s+(.+?)\s*$")


def parse_options(prompt: str) -> dict[str, str]:
    """The options of a multiple-choice prompt: the first run of lines ``A. text``, ``B. text``...
    (also ``(A) text`` or ``A) text``), letters in order from ``A``; empty unless it holds two or more.

    >>> parse_options("Which colour?\\nA. red\\nB. blue\\nAnswer with the letter.")
    {'A': 'red', 'B': 'blue'}
    """
    options: dict[str, str] = {}
    for line in prompt.splitlines():
        match = _OPTION_LINE.match(line.strip())
        if match and match.group(1) == chr(ord("A") + len(options)):
            options[match.group(1)] = match.group(2)
        elif options:
            break
    return options if len(options) >= 2 else {}
