"""FocusFast: selection rule and the exact layout of the LLM input."""

from __future__ import annotations

import pytest
import torch
from model_helpers import make_model, make_processor, random_video

from salova.model import IGNORE_INDEX, TokenType, select_focus_segments


def test_selection_takes_top_scores_in_temporal_order():
    scores = torch.tensor([[0.1, 0.9, 0.3, 0.8, 0.0], [0.2, 0.0, 0.7, 0.1, 0.0]])
    # Best score per segment over the queries: [0.2, 0.9, 0.7, 0.8, 0.0] -> top 3 = 1, 3, 2.
    assert select_focus_segments(5, 3, scores=scores).tolist() == [1, 2, 3]


def test_labels_outrank_scores_and_scores_fill_the_rest():
    scores = torch.tensor([[0.9, 0.8, 0.1, 0.2, 0.0]])
    labels = torch.tensor([[0, 0, 1, 0, 1]])
    assert select_focus_segments(5, 2, scores=scores, labels=labels).tolist() == [2, 4]
    assert select_focus_segments(5, 3, scores=scores, labels=labels).tolist() == [0, 2, 4]


def test_fewer_segments_than_k_uses_all_without_routing():
    assert select_focus_segments(2, 5).tolist() == [0, 1]


def test_choosing_without_scores_or_labels_is_an_error():
    with pytest.raises(ValueError, match="needs router scores"):
        select_focus_segments(6, 2)


def layout(model, frames_per_segment, **processor_kwargs):
    processor = make_processor(model.config)
    video = random_video(model.config, frames_per_segment)
    batch = processor([video], ["what happens next?"], **processor_kwargs)
    encodings = model.encode_segments(batch["pixel_values"], batch["frames_per_segment"])
    scores = model.score_segments(encodings, batch["query_input_ids"], batch["query_attention_mask"])
    selected = model.select_segments(encodings, scores)
    inputs = model.prepare_llm_inputs(
        batch["input_ids"],
        batch["attention_mask"],
        encodings,
        selected,
        segment_timestamp_ids=batch.get("segment_timestamp_ids"),
        segment_timestamp_mask=batch.get("segment_timestamp_mask"),
    )
    return processor, batch, encodings, selected, inputs


@torch.no_grad()
def test_llm_gets_exactly_nv_plus_k_times_l_visual_tokens_fast_focus_question():
    model = make_model()  # K = 2, L = 4
    processor, batch, encodings, selected, inputs = layout(model, [2, 1, 3, 1, 2, 4])
    types = inputs.token_types[0]
    visual = (types == TokenType.FAST) | (types == TokenType.FOCUS)
    assert int(visual.sum()) == 6 + 2 * 4
    fast = (types == TokenType.FAST).nonzero().flatten()
    focus = (types == TokenType.FOCUS).nonzero().flatten()
    # One contiguous block: fast tokens, then focus tokens, then the question's text.
    assert fast.tolist() == list(range(int(fast[0]), int(fast[0]) + 6))
    assert focus.tolist() == list(range(int(fast[-1]) + 1, int(fast[-1]) + 1 + 8))
    embeds = inputs.inputs_embeds[0]
    torch.testing.assert_close(embeds[fast], model.projector(encodings.routing_tokens))
    torch.testing.assert_close(embeds[focus], model.projector(encodings.latents[selected[0]]).flatten(0, 1))
    assert selected[0].tolist() == sorted(selected[0].tolist())
    ids = batch["input_ids"][0]
    following = ids[int((ids == processor.video_token_id).nonzero()) + 1 :]
    assert processor.tokenizer.decode(following).startswith("\nwhat happens next?")
    after = inputs.inputs_embeds[0, int(focus[-1]) + 1 :]
    torch.testing.assert_close(after, model.get_input_embeddings()(following))


@torch.no_grad()
def test_pathway_order_is_configurable():
    model = make_model(focusfast_pathways=["focus", "fast"])
    *_, inputs = layout(model, [1, 1, 1])
    types = inputs.token_types[0]
    first_focus = (types == TokenType.FOCUS).nonzero().min()
    last_focus = (types == TokenType.FOCUS).nonzero().max()
    assert last_focus < (types == TokenType.FAST).nonzero().min()
    assert int((types == TokenType.FOCUS).sum()) == 2 * 4 and first_focus > 0


@torch.no_grad()
def test_timestamps_precede_each_focus_segment():
    model = make_model(focusfast_timestamps=True)
    spans = [(0.0, 2.0), (2.0, 3.0), (3.0, 6.5)]
    processor, _, _, selected, inputs = layout(model, [2, 1, 3], timestamps=[spans])
    expected = [TokenType.FAST] * 3
    for segment in selected[0].tolist():
        start, end = spans[segment]
        text = processor.timestamp_template.format(start=start, end=end)
        expected += [TokenType.TIMESTAMP] * len(processor.tokenizer(text, add_special_tokens=False).input_ids)
        expected += [TokenType.FOCUS] * 4
    types = inputs.token_types[0].tolist()
    first = types.index(TokenType.FAST)
    assert types[first : first + len(expected)] == expected
    assert types[first + len(expected)] == TokenType.TEXT


def test_each_prompt_needs_exactly_one_placeholder():
    model = make_model()
    processor = make_processor(model.config)
    batch = processor([random_video(model.config, [1])], ["hi"])
    ids = batch["input_ids"].clone()
    ids[0, 1] = processor.video_token_id  # a second placeholder
    encodings = model.encode_segments(batch["pixel_values"], batch["frames_per_segment"])
    with pytest.raises(ValueError, match="prompt 0 holds 2 placeholder tokens"):
        model.prepare_llm_inputs(ids, batch["attention_mask"], encodings, (torch.tensor([0]),))


@torch.no_grad()
def test_labels_are_ignored_on_visual_and_padding_positions():
    model = make_model()
    processor = make_processor(model.config)
    videos = [random_video(model.config, [1, 2, 1]), random_video(model.config, [2], seed=3)]
    batch = processor(videos, ["a?", "a longer question?"], ["yes", "no"])
    encodings = model.encode_segments(batch["pixel_values"], batch["frames_per_segment"], batch["segments_per_video"])
    labels = [torch.tensor([[1, 0, 1]]), torch.tensor([[1]])]
    selected = model.select_segments(encodings, segment_labels=labels)
    assert [s.tolist() for s in selected] == [[0, 2], [0]]  # teacher forcing from the labels
    inputs = model.prepare_llm_inputs(batch["input_ids"], batch["attention_mask"], encodings, selected, batch["labels"])
    types, llm_labels = inputs.token_types, inputs.labels
    assert bool((llm_labels[types != TokenType.TEXT] == IGNORE_INDEX).all())
    # Each answer keeps its labels: "yes</s>\n" and "no</s>\n" in this byte-level template.
    assert [int((row != IGNORE_INDEX).sum()) for row in llm_labels] == [5, 4]
    # Left padding; positions count real tokens only.
    lengths = inputs.attention_mask.sum(dim=1)
    short, long = int(lengths.argmin()), int(lengths.argmax())
    assert types[short, 0] == TokenType.PAD and types[long, 0] != TokenType.PAD
    first_real = int(inputs.attention_mask[short].argmax())
    assert inputs.position_ids[short, first_real] == 0
    assert inputs.position_ids[short, -1] == int(lengths[short]) - 1
