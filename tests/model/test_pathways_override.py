"""Per-call FocusFast pathways (the paper's Table 3 ablation: focus only, fast only, both)."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_model, make_processor, random_video

from salova.model import TokenType


def _inputs(model, pathways):
    processor = make_processor(model.config)
    batch = processor([random_video(model.config, [2, 1, 3, 1])], ["what is drawn?"])
    encodings = model.encode_segments(batch["pixel_values"], batch["frames_per_segment"])
    scores = model.score_segments(encodings, batch["query_input_ids"], batch["query_attention_mask"])
    selected = model.select_segments(encodings, scores)
    inputs = model.prepare_llm_inputs(
        batch["input_ids"], batch["attention_mask"], encodings, selected, pathways=pathways
    )
    return batch, inputs


@torch.no_grad()
@pytest.mark.parametrize(
    ("pathways", "fast", "focus"),
    [(["focus"], 0, 2 * 4), (["fast"], 4, 0), (["fast", "focus"], 4, 2 * 4), (None, 4, 2 * 4)],
)
def test_pathways_override_selects_the_blocks_the_llm_reads(pathways, fast, focus):
    model = make_model()  # K = 2, L = 4; config pathways: fast then focus
    _, inputs = _inputs(model, pathways)
    types = inputs.token_types[0]
    assert int((types == TokenType.FAST).sum()) == fast
    assert int((types == TokenType.FOCUS).sum()) == focus
    assert model.config.focusfast_pathways == ["fast", "focus"]  # the override does not touch the config


@torch.no_grad()
def test_pathways_override_orders_the_blocks():
    model = make_model()
    _, inputs = _inputs(model, ["focus", "fast"])
    types = inputs.token_types[0]
    assert int((types == TokenType.FOCUS).nonzero().max()) < int((types == TokenType.FAST).nonzero().min())


@torch.no_grad()
def test_forward_and_generate_pass_the_override_through(monkeypatch):
    model = make_model()
    processor = make_processor(model.config)
    batch = processor([random_video(model.config, [1, 2, 1])], ["what colour is the star?"])
    kwargs = {key: batch[key] for key in ("input_ids", "attention_mask", "pixel_values", "frames_per_segment")}
    kwargs.update(query_input_ids=batch["query_input_ids"], query_attention_mask=batch["query_attention_mask"])
    both = model(**kwargs)
    focus = model(**kwargs, pathways=["focus"])
    assert both.logits.shape[1] - focus.logits.shape[1] == 3  # the three routing tokens are gone
    assert int((focus.token_types == TokenType.FAST).sum()) == 0
    seen = []
    original = model.prepare_llm_inputs

    def spy(*args, **spy_kwargs):
        seen.append(spy_kwargs.get("pathways"))
        return original(*args, **spy_kwargs)

    monkeypatch.setattr(model, "prepare_llm_inputs", spy)
    out = model.generate(**kwargs, max_new_tokens=2, do_sample=False, pathways=["focus"])
    assert seen == [["focus"]]
    assert out.sequences[0, 0] == focus.logits[0, -1].argmax()


@pytest.mark.parametrize("pathways", [[], ["fast", "fast"], ["slow"]])
def test_invalid_pathways_are_rejected(pathways):
    model = make_model()
    with pytest.raises(ValueError, match="pathways must be a non-empty ordering"):
        _inputs(model, pathways)
