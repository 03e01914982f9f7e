"""ST-Connector and dynamic token drop: the released code's defects must not come back."""

from __future__ import annotations

import pytest
import torch

from salova.model import SpatioTemporalConnector, kept_token_counts, tiny_config, token_drop_rate
from salova.model.connector import drop_tokens
from salova.model.layers import lookup_positions, position_coordinates


def make_connector(**overrides) -> SpatioTemporalConnector:
    from salova.model import SalovaForCausalLM

    # Built inside a model so that `_init_weights` gives the tables and latents their values.
    return SalovaForCausalLM(tiny_config(**overrides)).connector


def features(frames: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(frames, 4, 32, generator=generator)


def test_padding_never_changes_a_segments_output():
    connector = make_connector().eval()
    short, long = features(2, seed=1), features(11, seed=2)  # 11 frames also exceeds the 8-row table
    alone = connector(short, torch.tensor([2]))
    batched = connector(torch.cat([short, long]), torch.tensor([2, 11]))
    torch.testing.assert_close(batched.routing_tokens[0], alone.routing_tokens[0])
    torch.testing.assert_close(batched.latents[0], alone.latents[0])


def test_chunking_does_not_change_outputs():
    segments = [features(n, seed=n) for n in (3, 1, 6, 2)]
    counts = torch.tensor([3, 1, 6, 2])
    connector = make_connector(connector_chunk_tokens=10_000).eval()
    assert len(connector.chunk_ranges(counts.tolist())) == 1
    a = connector(torch.cat(segments), counts)
    connector.chunk_tokens = 4  # every segment alone
    assert len(connector.chunk_ranges(counts.tolist())) == 4
    b = connector(torch.cat(segments), counts)
    torch.testing.assert_close(a.latents, b.latents)


def test_eval_is_deterministic_and_never_drops():
    connector = make_connector(connector_max_token_drop=0.7).eval()
    x, counts = torch.cat([features(8, 0), features(3, 1)]), torch.tensor([8, 3])
    first, second = connector(x, counts), connector(x, counts)
    assert torch.equal(first.latents, second.latents)
    assert first.kept_tokens.tolist() == [8 * 4, 3 * 4]
    assert first.drop_rates.tolist() == [0.0, 0.0]


def test_training_drops_tokens_per_segment():
    connector = make_connector(connector_max_token_drop=0.7).train()
    out = connector(torch.cat([features(8, 0), features(2, 1)]), torch.tensor([8, 2]))
    # 8 frames reach the full rate (connector_full_drop_frames=8): 32 tokens, floor(0.7 * 32) = 22 dropped.
    assert out.kept_tokens.tolist() == [10, 8 - 1]
    assert out.latents.shape == (2, 4, 32)
    assert out.latents.requires_grad


def test_drop_can_be_disabled_in_training():
    connector = make_connector(connector_max_token_drop=0.7).train()
    out = connector(features(8, 0), torch.tensor([8]), allow_drop=False)
    assert out.kept_tokens.tolist() == [32]


def test_drop_rate_is_monotone_in_length_and_capped():
    frames = torch.arange(0, 300)
    rates = token_drop_rate(frames, max_rate=0.7, full_rate_frames=125)
    assert rates[0] == 0.0
    assert bool((rates[1:] >= rates[:-1]).all())
    assert rates.max().item() == pytest.approx(0.7)
    assert rates[125:].eq(rates[125]).all()


def test_drop_rate_depends_only_on_the_segments_own_length():
    connector = make_connector(connector_max_token_drop=0.7).train()
    alone = connector(features(2, 0), torch.tensor([2]))
    with_long = connector(torch.cat([features(2, 0), features(8, 1)]), torch.tensor([2, 8]))
    assert alone.kept_tokens[0] == with_long.kept_tokens[0]
    assert alone.drop_rates[0] == with_long.drop_rates[0] < with_long.drop_rates[1]


def test_kept_counts_keep_at_least_one_token():
    kept = kept_token_counts(torch.tensor([1, 10, 100]), torch.tensor([0.99, 0.5, 0.7]))
    assert kept.tolist() == [1, 5, 30]


def test_drop_keeps_tokens_in_their_original_order():
    values = torch.arange(20.0).repeat(3, 1)[..., None]  # token value = its position
    mask = torch.arange(20)[None, :] < torch.tensor([[20], [12], [5]])
    kept, new_mask = drop_tokens(values, mask, torch.tensor([7, 4, 5]))
    assert new_mask.sum(dim=1).tolist() == [7, 4, 5]
    for row, row_mask, valid in zip(kept[..., 0], new_mask, (20, 12, 5), strict=True):
        chosen = row[row_mask]
        assert bool((chosen[1:] > chosen[:-1]).all())  # strictly increasing = original order
        assert bool((chosen < valid).all())  # never a padding position
    assert kept[2, :5, 0].tolist() == [0, 1, 2, 3, 4]  # keep == length keeps everything


def test_temporal_table_is_stretched_past_its_size_never_an_error():
    table = torch.randn(8, 3)
    inside = position_coordinates(torch.arange(5), torch.tensor(5), 8)
    assert inside.tolist() == [0, 1, 2, 3, 4]
    stretched = position_coordinates(torch.arange(29), torch.tensor(29), 8)
    rows = lookup_positions(table, stretched)
    torch.testing.assert_close(rows[0], table[0])
    torch.testing.assert_close(rows[-1], table[-1])
    torch.testing.assert_close(rows[14], (table[3] + table[4]) / 2)  # 14 * 7 / 28 = 3.5
    connector = make_connector().eval()
    out = connector(features(29, 0), torch.tensor([29]))
    assert torch.isfinite(out.latents).all()


def test_rejects_counts_that_do_not_match_the_frames():
    connector = make_connector()
    with pytest.raises(ValueError, match="frames_per_segment must hold one count >= 1"):
        connector(features(5, 0), torch.tensor([2, 2]))
    with pytest.raises(ValueError, match="frames_per_segment must hold one count >= 1"):
        connector(features(5, 0), torch.tensor([5, 0]))
