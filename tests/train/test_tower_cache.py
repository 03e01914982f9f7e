"""A stage with ``tower_cache_mb`` encodes each frame once and trains the same weights."""

from __future__ import annotations

import pytest
from train_helpers import LORA, components, max_difference, salova_config, trained_weights

from salova.errors import ConfigError
from salova.model import VisionTower, tiny_config
from salova.model.feature_cache import frame_keys
from salova.train import config_from_dict, run_stage
from salova.train.loop import keep_tower_features


def test_a_stage_with_the_tower_cache_encodes_each_frame_once_and_trains_the_same_weights(
    synthetic, tmp_path, monkeypatch
):
    encoded: list[bytes] = []
    original = VisionTower._encode

    def counting(self, pixel_values):
        encoded.extend(frame_keys(pixel_values))
        return original(self, pixel_values)

    monkeypatch.setattr(VisionTower, "_encode", counting)
    runs = {}
    for megabytes in (0, 16):
        output = tmp_path / f"cache{megabytes}"
        source = components(synthetic.stage0, synthetic.llm)
        config = salova_config(1.5, output, synthetic.data, source=source, lora=LORA, max_steps=6)
        config["trainable"] = ["connector", "router", "projector", "language_model"]
        config["tower_cache_mb"] = megabytes
        encoded.clear()
        run_stage(config_from_dict(config))
        runs[megabytes] = (list(encoded), trained_weights(output))
    (frames_without, weights_without), (frames_with, weights_with) = runs[0], runs[16]
    # The 4 samples (questions about 2 videos) are read in each of the 6 steps: without the cache the
    # tower encodes their frames 6 times over and more; with it, each distinct frame once.
    assert len(frames_without) >= 6 * len(set(frames_without))
    assert sorted(frames_with) == sorted(set(frames_without))
    assert max_difference(weights_with, weights_without) < 1e-5


def test_the_tower_cache_needs_a_frozen_tower_without_dropout():
    with pytest.raises(ConfigError, match="needs a frozen vision tower"):
        keep_tower_features(VisionTower(tiny_config(freeze_vision_tower=False)), 16)
    tower = VisionTower(tiny_config(freeze_vision_tower=True))
    tower.backbone.config.attention_dropout = 0.1
    with pytest.raises(ConfigError, match=r"without dropout, got \{'attention_dropout': 0.1\}"):
        keep_tower_features(tower, 16)
    tower.backbone.config.attention_dropout = 0.0
    keep_tower_features(tower, 16)
    assert tower.feature_cache.max_bytes == 16 * 2**20
