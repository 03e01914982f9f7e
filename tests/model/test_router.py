"""SR-Router: any number of segments, cosine x learnable scale, per-segment independence."""

from __future__ import annotations

import pytest
import torch

from salova.model import SegmentEncoding, TextFeatures


def text_features(queries: int, length: int = 6, width: int = 32) -> TextFeatures:
    mask = torch.ones(queries, length, dtype=torch.bool)
    mask[:, length - 2 :] = False  # padded tail
    return TextFeatures(torch.randn(queries, length, width), torch.randn(queries, width), mask)


@pytest.mark.parametrize("num_segments", [1, 2, 2000])
def test_any_number_of_segments_is_scored(tiny_model, num_segments):
    router = tiny_model.router  # 8-row segment-position table
    out = router(torch.randn(num_segments, 32), text_features(3))
    assert out.logits.shape == (3, num_segments)
    assert torch.isfinite(out.logits).all()


def test_score_is_cosine_times_learnable_scale(tiny_model):
    router = tiny_model.router
    with torch.no_grad():
        router.logit_scale.fill_(1.5)
    out = router(torch.randn(5, 32), text_features(2))
    assert out.cosine.abs().max() <= 1.0 + 1e-6
    torch.testing.assert_close(out.logits, out.cosine * torch.tensor(1.5).exp())


def test_padding_of_the_query_does_not_change_scores(tiny_model):
    router = tiny_model.router
    tokens, text = torch.randn(4, 32), text_features(1)
    changed = TextFeatures(text.token_features.clone(), text.pooled, text.mask)
    changed.token_features[:, -2:] = 100.0  # only padded positions change
    torch.testing.assert_close(router(tokens, text).logits, router(tokens, changed).logits)


def test_a_segments_score_does_not_depend_on_other_segments(tiny_model):
    router = tiny_model.router
    tokens, text = torch.randn(6, 32), text_features(2)
    other = tokens.clone()
    other[3:] = torch.randn(3, 32)
    torch.testing.assert_close(router(tokens, text).logits[:, :3], router(other, text).logits[:, :3])


def test_segment_positions_past_the_table_are_stretched(tiny_model):
    router = tiny_model.router
    table = router.segment_position
    fitted = router.segment_positions(5)
    torch.testing.assert_close(fitted, table[:5])
    stretched = router.segment_positions(2000)
    torch.testing.assert_close(stretched[0], table[0])
    torch.testing.assert_close(stretched[-1], table[-1])


def test_score_segments_splits_queries_per_video(tiny_model):
    encodings = SegmentEncoding(
        routing_tokens=torch.randn(5, 32),
        latents=torch.randn(5, 4, 32),
        segments_per_video=torch.tensor([2, 3]),
    )
    ids = torch.randint(0, 250, (3, 7))
    scores = tiny_model.score_segments(encodings, ids, queries_per_video=torch.tensor([1, 2]))
    assert [tuple(s.shape) for s in scores.logits] == [(1, 2), (2, 3)]
    with pytest.raises(ValueError, match=r"queries_per_video \[3\] must give >= 1 query for each of the 2 videos"):
        tiny_model.score_segments(encodings, ids, queries_per_video=torch.tensor([3]))
