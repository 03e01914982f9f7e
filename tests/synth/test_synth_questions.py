"""Questions: one correct option among four, unique references, true evidence, no give-aways."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from salova.synth import QUESTION_TYPES, SynthConfig, generate_video
from salova.synth.language import place_phrase
from salova.synth.vocab import COLORS, SHAPES, SIZES, motion_option, pattern_phrase

CONFIG = SynthConfig(seed=11, num_videos=6, minutes=4.0, min_scene_sec=4.0, max_scene_sec=12.0, questions_per_video=16)
_MOTION_WORDS = {"to the left": "left", "to the right": "right", "moving up": "up", "moving down": "down"}


@pytest.fixture(scope="module")
def videos():
    return [generate_video(CONFIG, i) for i in range(CONFIG.num_videos)]


def _questions(videos):
    return [(v, q) for v in videos for q in v.questions]


def _fits(scene, reference: dict[str, str]) -> bool:
    """An independent reading of a question's reference."""
    if set(reference) == {"text"}:
        return scene.text == reference["text"]
    if set(reference) == {"background_color", "background_pattern"}:
        return (scene.background.color, scene.background.pattern) == (
            reference["background_color"],
            reference["background_pattern"],
        )
    assert set(reference) <= {"color", "shape", "size", "motion"} and {"color", "shape"} <= set(reference)
    return any(all(getattr(o, k) == v for k, v in reference.items()) for o in scene.objects)


def _describes(scene, text: str) -> bool:
    """Whether a temporal-order option (a noun phrase) fits ``scene``."""
    text = text.lower()
    if text.startswith("the word"):
        return scene.text is not None and f'"{scene.text.lower()}"' in text
    if "background" in text:
        return pattern_phrase(scene.background.color, scene.background.pattern) == text
    words = set(re.findall(r"[a-z]+", text))
    color, shape = (words & set(COLORS)).pop(), (words & set(SHAPES)).pop()
    size = next(iter(words & set(SIZES)), None)
    motion = next((m for phrase, m in _MOTION_WORDS.items() if phrase in text), "still" if "still" in text else None)
    return any(
        o.color == color and o.shape == shape and size in (None, o.size) and motion in (None, o.motion)
        for o in scene.objects
    )


def test_counts_and_types(videos):
    assert all(len(v.questions) == CONFIG.questions_per_video for v in videos)
    assert {q.type for _, q in _questions(videos)} == set(QUESTION_TYPES)
    ids = [q.id for _, q in _questions(videos)]
    assert len(set(ids)) == len(ids)


def test_four_distinct_options_and_balanced_answer_letters(videos):
    letters = Counter()
    for _, q in _questions(videos):
        assert sorted(q.options) == ["A", "B", "C", "D"]
        assert len(set(q.options.values())) == 4
        letters[q.answer] += 1
    total = sum(letters.values())
    assert all(0.12 <= letters[x] / total <= 0.38 for x in "ABCD"), letters


def test_references_single_out_the_evidence_scene(videos):
    referenced = 0
    for video, q in _questions(videos):
        if not q.reference:
            assert q.type in ("counting", "temporal_order")
            continue
        referenced += 1
        matching = [s.index for s in video.scenes if _fits(s, q.reference)]
        assert matching == list(q.evidence_scenes)
    assert referenced > 0


def _true_values(q, scene) -> set[str]:
    """Every value that would answer a single-scene question correctly."""
    objects = [o for o in scene.objects if all(getattr(o, k) == v for k, v in q.subject.items())]
    if q.subject:
        assert objects, (q, scene)
    if q.type == "object_color":
        return {o.color for o in objects}
    if q.type == "object_shape":
        return {o.shape for o in objects}
    if q.type == "object_position":
        return {place_phrase(o.position) for o in objects if o.position}
    if q.type == "motion":
        return {motion_option(o.motion) for o in objects}
    if q.type == "background_color":
        return {scene.background.color}
    if q.type == "background_pattern":
        return {scene.background.pattern}
    assert q.type == "text"
    return {scene.text}


def test_the_answer_is_true_of_the_evidence_and_no_distractor_is(videos):
    for video, q in _questions(videos):
        if q.type == "counting":
            holders = [
                s.index
                for s in video.scenes
                if any(o.color == q.subject["color"] and o.shape == q.subject["shape"] for o in s.objects)
            ]
            assert holders == list(q.evidence_scenes) and int(q.answer_text) == len(holders)
        elif q.type == "temporal_order":
            assert len(set(q.evidence_scenes)) == 4
            for text in q.options.values():
                fits = [s.index for s in video.scenes if _describes(s, text)]
                assert len(fits) == 1 and fits[0] in q.evidence_scenes, (text, fits)
            expected = min(q.evidence_scenes) if q.subject["order"] == "first" else max(q.evidence_scenes)
            assert _describes(video.scenes[expected], q.answer_text)
        else:
            assert len(q.evidence_scenes) == 1
            assert _true_values(q, video.scenes[q.evidence_scenes[0]]) == {q.answer_text}, q


def test_questions_never_give_the_answer_or_rule_out_options(videos):
    for _, q in _questions(videos):
        if q.attribute not in ("color", "shape", "background", "text"):
            continue
        question_words = set(re.findall(r"[a-z]+", q.question.lower()))
        for text in q.options.values():
            assert text.lower() not in question_words, q


def test_distractors_mostly_come_from_other_scenes_of_the_video(videos):
    from_video = total = 0
    for video, q in _questions(videos):
        values_of = {
            "color": {o.color for s in video.scenes for o in s.objects},
            "shape": {o.shape for s in video.scenes for o in s.objects},
            "background": {s.background.color for s in video.scenes},
            "pattern": {s.background.pattern for s in video.scenes},
            "text": {s.text for s in video.scenes if s.text},
        }
        if q.attribute not in values_of:
            continue
        for letter, text in q.options.items():
            if letter != q.answer:
                total += 1
                from_video += text in values_of[q.attribute]
    assert from_video / total >= 0.8


def test_short_videos_get_fewer_questions_not_wrong_ones():
    config = SynthConfig(seed=1, minutes=0.1, min_scene_sec=6.0, questions_per_video=50)
    video = generate_video(config, 0)
    assert len(video.scenes) == 1
    assert 0 < len(video.questions) < 50
    assert all(q.evidence_scenes == (0,) and q.type != "temporal_order" for q in video.questions)
    assert len({q.question for q in video.questions}) == len(video.questions)
