"""SEAL over semantic tokens (a finer set than segments), and the assistant's selector option."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from salova.errors import ConfigError
from salova.infer import AssistantConfig, VideoAssistant
from salova.infer.semantic import encode_tokens, select_tokens, square_image
from salova.model.selection import SelectorConfig
from salova.video.tokens import semantic_tokens


@pytest.fixture(scope="module")
def bikes_semantic(bikes_path):
    return semantic_tokens(bikes_path).all()


def test_square_image_keeps_the_aspect():
    image = np.full((10, 40, 3), 200, np.uint8)
    square = square_image(image, 16)
    assert square.shape == (16, 16, 3)
    assert square[0, 8].tolist() == [0, 0, 0] and square[8, 8].tolist() == [200, 200, 200]


def test_seal_keeps_one_of_repeated_tokens_where_topk_keeps_both(tiny_assistant, bikes_semantic):
    pipeline = tiny_assistant.pipeline
    tokens = list(bikes_semantic)
    question = "Who is walking past the bicycle?"
    encoding = encode_tokens(pipeline, tokens)
    first = select_tokens(pipeline, tokens, question, 6, "topk", encoding=encoding)
    # Repeat the two most relevant tokens three times: a video that shows the same thing again.
    best = sorted(range(len(tokens)), key=lambda i: -first.scores[i])[:2]
    repeated = tokens + [tokens[i] for i in best for _ in range(2)]
    copies = {i: {i, len(tokens) + 2 * n, len(tokens) + 2 * n + 1} for n, i in enumerate(best)}
    topk = select_tokens(pipeline, repeated, question, 6, "topk")
    seal = select_tokens(pipeline, repeated, question, 6, "seal")
    assert len(topk.indices) == len(seal.indices) == 6
    read = {name: [len(set(chosen.indices) & group) for group in copies.values()] for name, chosen in
            (("topk", topk), ("seal", seal))}  # fmt: skip
    assert read["topk"] == [3, 3]  # top-K spends all six reads on two tokens
    assert sum(read["seal"]) < sum(read["topk"]) and max(read["seal"]) < 3  # SEAL reads other tokens too
    assert {t.kind for t in seal.tokens} <= {"scene", "action", "object"}
    assert seal.scores == topk.scores


def test_tokens_need_a_salova_pipeline(text_rag_pipeline, bikes_semantic):
    with pytest.raises(ConfigError, match="SALOVA"):
        encode_tokens(text_rag_pipeline, bikes_semantic)


def test_assistant_selector_from_config_and_per_call(tmp_path, text_video):
    path, video = text_video
    config = AssistantConfig(cache_dir=tmp_path, top_k=3, max_new_tokens=2, selector=SelectorConfig("seal", alpha=0.5))
    assistant = VideoAssistant.from_model("tiny", config)
    assert assistant.selector() == config.selector
    assert assistant.selector("topk") == dataclasses.replace(config.selector, name="topk")
    seal = assistant.ask("Where is the star?", video=path)
    topk = assistant.ask("Where is the star?", video=path, selector="topk")
    index = assistant.index(path)
    scores = assistant.pipeline.scores(index, "Where is the star?")
    best = sorted(range(index.num_segments), key=lambda i: -float(scores[i]))[:3]
    assert [s.index for s in topk.segments] == sorted(best)
    assert [s.score for s in seal.timeline] == [s.score for s in topk.timeline]
    with pytest.raises(ConfigError, match="choose from"):
        assistant.ask("Where is the star?", selector="random")
