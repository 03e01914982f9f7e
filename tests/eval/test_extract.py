"""Answer extraction: agreement with lmms-eval's own code, and the official Video-MME convention."""

from __future__ import annotations

import random

import pytest
from eval_helpers import lmms_eval_function, lmms_eval_module

from salova.errors import ConfigError
from salova.eval import extract_choice
from salova.eval.extract import longvideobench_choice, mvbench_choice, mvbench_is_correct

# Model responses of every kind seen in practice: a letter alone, with punctuation or brackets,
# answer phrases, sentences, lower case, several letters, none, reasoning, other languages.
RESPONSES = [
    "B",
    "B.",
    "(C)",
    "C)",
    "D:",
    " A ",
    "a",
    "b.",
    "The answer is (C).",
    "The answer is C",
    "The best answer is: D",
    "Answer: B",
    "answer: b",
    "The correct answer is B. Black shirts.",
    "B. Black shirts.",
    "(A) Moina Michael",
    "It was Moina Michael who used poppy first.",
    "I think the answer is B, not A.",
    "A and B are both wrong; the answer is D.",
    "Between A, B and C I choose C",
    "Options A and C.",
    "A or B",
    "ABCD",
    "None of the above.",
    "I don't know.",
    "",
    "   ",
    "The video shows a red car driving down a long road next to a river at sunset.",
    "Based on the video, a man is cooking.",
    "Option D is correct because the video shows it clearly.",
    "D) In Flanders Fields is written during WW1.",
    "E",
    "(E) none",
    "The answer is E.",
    "답은 C",
    "答案是B",
    "Let me think. First, A is about colour. B is about shape. So the final answer: C",
    "<answer>B</answer>",
    "**C**",
    "C\n\nExplanation: the car is red.",
    "Best option: (A",
    "A.",
    "The answer",
    "CD",
]


@pytest.fixture(scope="module")
def lmms_extract():
    return lmms_eval_module("tasks/_task_utils/mcq_extract.py").extract_mcq_answer


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("choices", ["ABCD", "ABCDE"])
def test_extractor_agrees_with_lmms_eval(lmms_extract, response, choices):
    assert extract_choice(response, choices) == lmms_extract(response, choices=list(choices))


def test_lmms_eval_convention_on_typical_responses():
    assert extract_choice("The answer is (C).") == "C"
    assert extract_choice("b.") == ""  # lmms-eval does not upper-case the response
    assert extract_choice("I think the answer is B, not A.") == "A"  # a trailing standalone letter wins
    assert extract_choice("None of the above.") == ""
    assert extract_choice("E") == ""  # only the given choices
    assert extract_choice("E", "ABCDE") == "E"


# The official Video-MME script (Video-MME/evaluation/eval_your_results.py@4e7566d): the first capital
# A-D after removing its answer prefixes; "" (unanswered) when there is none.
OFFICIAL_EXPECTED = {
    "B": "B",
    "The answer is (C).": "C",
    "The best answer is: D": "D",
    "Answer: B": "A",  # the capital A of "Answer" comes first
    "The answer: B": "B",  # "The answer" is one of the removed prefixes
    "I think the answer is B, not A.": "B",
    "A and B are both wrong; the answer is D.": "A",
    "a": "",
    "None of the above.": "",
    "I don't know.": "",
    "": "",
    "The video shows a red car driving down a long road next to a river at sunset.": "",
    "Best answer:Best option: C": "C",
    "Based on the video, a man is cooking.": "B",  # the B of "Based"
    "E": "",
}


@pytest.mark.parametrize(("response", "expected"), sorted(OFFICIAL_EXPECTED.items()))
def test_official_videomme_convention(response, expected):
    assert extract_choice(response, convention="videomme-official") == expected


def test_unknown_convention_names_the_known_ones():
    with pytest.raises(
        ConfigError, match=r"Unknown answer convention 'gpt'; choose from \['lmms-eval', 'videomme-official'\]"
    ):
        extract_choice("A", convention="gpt")


@pytest.mark.parametrize("choices", ["", "abcd", "AB1"])
def test_choices_must_be_capital_letters(choices):
    with pytest.raises(ValueError, match="choices must be capital letters"):
        extract_choice("A", choices)


@pytest.fixture(scope="module")
def lmms_longvideobench_parser():
    return lmms_eval_function(
        "tasks/longvideobench/utils.py", "parse_multi_choice_response", {"re": __import__("re"), "random": random}
    )


@pytest.mark.parametrize("response", RESPONSES)
def test_longvideobench_parser_agrees_with_lmms_eval(lmms_longvideobench_parser, response):
    choices = list("ABCDE")
    # Both draw the fallback from the same seeded stream, so even random picks agree.
    random.seed(5)
    theirs = lmms_longvideobench_parser(response, choices, {})
    assert longvideobench_choice(response, choices, random.Random(5)) == theirs


@pytest.fixture(scope="module")
def lmms_mvbench():
    return lmms_eval_module("tasks/mvbench/utils.py")


@pytest.mark.parametrize("response", RESPONSES)
@pytest.mark.parametrize("answer", ["A", "C", "D"])
def test_mvbench_scoring_agrees_with_lmms_eval(lmms_mvbench, response, answer):
    assert int(mvbench_is_correct(answer, response)) == lmms_mvbench.mcq_acc(answer, response)


def test_mvbench_normalisation_quirks():
    assert mvbench_choice("(B) the man jumps") == "B"
    assert mvbench_choice("it is a dog") == "A"  # the article "a" reads as option A, as in lmms-eval
    assert mvbench_choice("jumps") == "jumps"
