"""Vision and text towers: pooling, class-token handling, freezing, long queries."""

from __future__ import annotations

import logging

import pytest
import torch

from salova.model import TextTower, VisionTower, tiny_config


def test_pooling_averages_2x2_cells_in_row_major_order():
    tower = VisionTower(tiny_config())  # 4x4 patch grid
    grid = torch.arange(16.0).reshape(1, 16, 1)  # value = patch index
    pooled = tower.pool(grid).flatten()
    # Cell (0, 0) holds patches 0, 1, 4, 5; cell (0, 1) holds 2, 3, 6, 7; and so on.
    assert pooled.tolist() == [2.5, 4.5, 10.5, 12.5]


def test_pooling_an_odd_grid_averages_the_partial_edge_window():
    tower = VisionTower(tiny_config(towers="siglip"))  # 3x3 patch grid
    grid = torch.arange(9.0).reshape(1, 9, 1)
    pooled = tower.pool(grid).flatten()
    assert pooled.tolist() == [(0 + 1 + 3 + 4) / 4, (2 + 5) / 2, (6 + 7) / 2, 8.0]


@pytest.mark.parametrize("towers", ["clip", "siglip"])
def test_vision_tower_returns_pooled_tokens_of_the_selected_layer(towers):
    config = tiny_config(towers=towers)
    tower = VisionTower(config).eval()
    size = config.vision_config.image_size
    frames = torch.randn(5, 3, size, size)
    features = tower(frames)
    assert features.shape == (5, config.tokens_per_frame, config.vision_config.hidden_size)
    hidden = tower.backbone(pixel_values=frames, output_hidden_states=True).hidden_states[config.vision_feature_layer]
    patches = hidden[:, 1:] if towers == "clip" else hidden  # CLIP's class token is dropped
    torch.testing.assert_close(features, tower.pool(patches))


def test_vision_tower_rejects_frames_of_the_wrong_size():
    tower = VisionTower(tiny_config())
    with pytest.raises(ValueError, match=r"pixel_values must have shape \(frames, 3, 16, 16\)"):
        tower(torch.randn(2, 3, 20, 20))


@pytest.mark.parametrize("frozen", [True, False])
def test_vision_tower_frozen_or_trainable_per_config(frozen):
    config = tiny_config(freeze_vision_tower=frozen)
    tower = VisionTower(config)
    assert all(p.requires_grad is not frozen for p in tower.parameters())
    out = tower(torch.randn(2, 3, 16, 16))
    assert out.requires_grad is not frozen


def test_long_query_is_truncated_with_a_warning_keeping_its_last_token(caplog):
    config = tiny_config()
    tower = TextTower(config).eval()
    context = config.text_tower_max_length
    long_ids = torch.randint(0, 250, (1, 3 * context))
    long_ids[0, -1] = config.text_tower_config.eos_token_id
    short_ids = torch.randint(0, 250, (1, 3 * context))
    mask = torch.ones_like(long_ids)
    mask_short = torch.zeros_like(short_ids)
    mask_short[0, :5] = 1
    with caplog.at_level(logging.WARNING, logger="salova.model.towers"):
        features = tower(torch.cat([long_ids, short_ids]), torch.cat([mask, mask_short]))
    assert "1 query is longer than the text tower's context of 64 tokens" in caplog.text
    assert features.token_features.shape[:2] == (2, context)
    ids, _ = tower.truncate(long_ids, mask)
    assert ids[0, -1] == config.text_tower_config.eos_token_id
    assert torch.equal(ids[0, :-1], long_ids[0, : context - 1])
