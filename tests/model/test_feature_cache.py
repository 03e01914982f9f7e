"""The frozen vision tower's feature cache: same features, each frame encoded once, bounded memory."""

from __future__ import annotations

import pytest
import torch

from salova.model import FrameFeatureCache, VisionTower, tiny_config


def counting_tower(**overrides) -> tuple[VisionTower, list[int]]:
    """A tiny frozen tower and the frame counts of its backbone's calls."""
    tower = VisionTower(tiny_config(freeze_vision_tower=True, **overrides)).eval()
    calls: list[int] = []
    tower.backbone.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(kwargs["pixel_values"].shape[0]), with_kwargs=True
    )
    return tower, calls


def frame_bytes(tower: VisionTower) -> int:
    return tower.tokens_per_frame * tower.hidden_size * 4


def test_cached_features_equal_the_towers_and_seen_frames_skip_it():
    tower, calls = counting_tower()
    frames = torch.randn(6, 3, 16, 16)
    expected = tower(frames)
    tower.feature_cache = FrameFeatureCache(2**20)
    torch.testing.assert_close(tower(frames[:4]), expected[:4])
    assert calls[-1] == 4
    calls.clear()
    # Two frames seen and two new, in another order: only the new ones go through the backbone.
    mixed = frames[[5, 1, 4, 0]]
    torch.testing.assert_close(tower(mixed), expected[[5, 1, 4, 0]])
    assert calls == [2]
    assert (tower.feature_cache.hits, tower.feature_cache.misses) == (2, 6)
    calls.clear()
    torch.testing.assert_close(tower(frames), expected)
    assert calls == []


def test_a_frame_repeated_within_a_call_is_encoded_once():
    tower, calls = counting_tower()
    frame = torch.randn(1, 3, 16, 16)
    other = torch.randn(1, 3, 16, 16)
    tower.feature_cache = FrameFeatureCache(2**20)
    features = tower(torch.cat([frame, other, frame, frame]))
    assert calls == [2] and len(tower.feature_cache) == 2
    torch.testing.assert_close(features[0], features[2])
    assert not torch.equal(features[0], features[1])


def test_the_cache_keeps_at_most_its_budget_and_forgets_the_least_recently_used():
    tower, calls = counting_tower()
    frames = torch.randn(3, 3, 16, 16)
    tower.feature_cache = FrameFeatureCache(2 * frame_bytes(tower))
    tower(frames[:2])
    tower(frames[:1])  # frame 0 is now the most recently used
    tower(frames[2:])  # frame 1 makes room for frame 2
    assert len(tower.feature_cache) == 2 and tower.feature_cache.bytes == 2 * frame_bytes(tower)
    calls.clear()
    tower(frames[[0, 2]])
    assert calls == []
    tower(frames[1:2])
    assert calls == [1]


def test_a_budget_below_one_frame_keeps_nothing():
    tower, calls = counting_tower()
    tower.feature_cache = FrameFeatureCache(frame_bytes(tower) - 1)
    frames = torch.randn(2, 3, 16, 16)
    tower(frames)
    tower(frames)
    assert len(tower.feature_cache) == 0 and calls[-2:] == [2, 2]


def test_a_training_tower_refuses_its_cache():
    tower = VisionTower(tiny_config(freeze_vision_tower=False))
    tower.feature_cache = FrameFeatureCache(2**20)
    with pytest.raises(RuntimeError, match="the vision tower trains"):
        tower(torch.randn(1, 3, 16, 16))


def test_the_budget_must_be_positive():
    with pytest.raises(ValueError, match="max_bytes must be > 0"):
        FrameFeatureCache(0)
