"""The training-free text pipeline with the bundled OCR, MiniLM and SmolLM2, and SALOVA's aux-text channel.

Real models from the installed packages, real decoding of a synthetic video whose scenes render
words, and of the real sample clip ``bikes.mp4`` (a taxi's roof sign reads TAXI in its first
seconds).
"""

from __future__ import annotations

import pytest

from salova.infer import AssistantConfig, OcrConfig, VideoAssistant
from salova.infer import index as index_module
from salova.infer.text_pipeline import NO_TEXT_ANSWER


def _segment_at(index, seconds: float) -> int:
    return next(i for i, (start, end) in enumerate(index.spans) if start <= seconds < end)


def _midpoint(scene) -> float:
    return (scene.start_sec + scene.end_sec) / 2


def test_ocr_reads_each_word_in_its_scene(text_rag, text_video):
    path, truth = text_video
    index = text_rag.index(path)
    worded = [scene for scene in truth.scenes if scene.text]
    assert len(worded) >= 2
    for scene in worded:
        assert scene.text in index.texts[_segment_at(index, _midpoint(scene))].split()
    read = " ".join(index.texts).split()
    assert sorted(w for w in read if w.isupper() and len(w) > 2) == sorted(s.text for s in worded)
    assert index.tensors["text_embeddings"].shape == (index.num_segments, 384)


@pytest.mark.parametrize("which", [0, -1])
def test_question_about_a_word_retrieves_its_scene(text_rag, text_video, which):
    path, truth = text_video
    scene = [s for s in truth.scenes if s.text][which]
    answer = text_rag.ask(f"Which scene shows the word {scene.text}?", video=path)
    assert answer.pipeline == "text-rag" and answer.text.strip()
    best = max(answer.timeline, key=lambda s: s.score)
    assert best.start <= _midpoint(scene) < best.end
    assert best.start == pytest.approx(scene.start_sec, abs=1.0) and best.end == pytest.approx(scene.end_sec, abs=1.0)
    assert best in answer.segments
    assert all(s.score == 0.0 for s in answer.timeline if not text_rag.index(path).texts[s.index])


def test_real_clip_taxi_sign_is_found(text_rag, bikes_path, monkeypatch):
    index = text_rag.index(bikes_path)
    assert "TAXI" in index.texts[0]
    monkeypatch.setattr(index_module, "iter_segments", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    answer = text_rag.ask("Where does the word TAXI appear?")
    assert [(s.start, s.end) for s in answer.segments] == [index.spans[0]]
    assert answer.text.strip()


def test_chat_passes_earlier_turns_to_the_llm(text_rag, text_video, monkeypatch):
    path, truth = text_video
    word = next(s.text for s in truth.scenes if s.text)
    session = text_rag.chat(path)
    calls = []
    original = text_rag.pipeline.llm.chat

    def spy(messages, max_new_tokens):
        calls.append(list(messages))
        return original(messages, max_new_tokens)

    monkeypatch.setattr(text_rag.pipeline.llm, "chat", spy)
    first = session.ask(f"When is {word} shown?")
    session.ask("Is it shown again later?")
    assert [m["role"] for m in calls[1]] == ["system", "user", "assistant", "user"]
    assert calls[1][1]["content"] == f"When is {word} shown?" and calls[1][2]["content"] == first.text
    assert word in calls[0][-1]["content"]  # the retrieved screen text is in the prompt


def test_video_without_text_says_so(text_rag, three_scene_video):
    answer = text_rag.ask("What is written on screen?", video=three_scene_video)
    assert answer.text == NO_TEXT_ANSWER and answer.segments == ()
    assert answer.pipeline == "text-rag"


def test_salova_aux_text_puts_screen_text_in_the_prompt(text_video, tmp_path, monkeypatch):
    path, truth = text_video
    config = AssistantConfig(
        cache_dir=tmp_path, aux_text=True, top_k=9, max_new_tokens=4, ocr=OcrConfig(frames_per_segment=1)
    )
    assistant = VideoAssistant.from_model("tiny", config)
    index = assistant.index(path)
    assert [w for w in index.texts if w] == [s.text for s in truth.scenes if s.text]
    prompts = []
    original = assistant.pipeline.processor.tokenize_conversation
    monkeypatch.setattr(
        assistant.pipeline.processor,
        "tokenize_conversation",
        lambda conversation: prompts.append(conversation[-1]["content"]) or original(conversation),
    )
    answer = assistant.ask("What words are shown?")
    assert answer.pipeline == "salova"
    assert prompts[0].startswith("On-screen text:") and all(s.text in prompts[0] for s in truth.scenes if s.text)
    assert assistant.identity()["aux_text"] is not None  # OCR settings are part of the cache key
